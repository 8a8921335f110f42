"""`python -m pytest_hparams merge`: one report and one table from CI shards.

Each shard of a CI matrix (`--hparams-shard K/N`) writes its own
`--hparams-json` report; this joins them into the same `Reporter` that pytest
uses, prints its tables, and can write the merged JSON, the Markdown summary,
the HTML report and a baseline.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_hparams import baseline, export
from pytest_hparams.errors import BaselineError
from pytest_hparams.options import alpha_spec, gate_spec, non_negative_int, tolerance_spec
from pytest_hparams.records import SweepDefinition, TrialRecord
from pytest_hparams.reporter import Reporter
from pytest_hparams.settings import Settings, check_output, missing_plotly
from pytest_hparams.verdicts import Comparison


class MergeError(ValueError):
    """A report cannot be merged; the message names the file and why."""


def load_reports(paths: Sequence[Path], reporter: Reporter) -> list[str]:
    """Adds every trial of `--hparams-json` files to `reporter`; returns
    what the reports say is missing from them: a run cut short, or the
    shards of a matrix that no report holds.

    Raises:
      MergeError: If a file is not such a report, or two files hold the same
        trial (shards that did not partition the sweep).
    """
    seen: dict[str, Path] = {}
    not_run: set[str] = set()
    missing: list[str] = []
    shards: dict[int, set[int]] = {}  # N: the K of each report of an N-shard matrix
    for path in paths:
        report = _read_report(path)
        if report.interrupted:
            missing.append(f"{path}: its run was interrupted, so its sweeps are incomplete")
        if report.shard is not None:
            shards.setdefault(report.shard[1], set()).add(report.shard[0])
        not_run |= report.not_run
        reporter.reported.update(report.reported)
        _add_sweeps(reporter, path, report, seen)
    # Entries one shard did not run were most likely run by another.
    reporter.baseline_not_run = not_run
    return missing + _missing_shards(shards)


def _add_sweeps(reporter: Reporter, path: Path, report: _Report, seen: dict[str, Path]) -> None:
    """Adds a report's sweeps and their trials, with the curves they logged."""
    for definition, records in report.sweeps:
        _add_sweep(reporter, path, definition)
        for record in records:
            _add_record(reporter, path, record, report.curves, seen)


def _add_sweep(reporter: Reporter, path: Path, definition: SweepDefinition) -> None:
    """Adds a report's sweep, which must be the one earlier reports hold."""
    known = reporter.definitions.get(definition.test)
    if known is not None and known != definition:
        raise MergeError(
            f"{path}: its sweep {definition.test} is not the one in the reports before "
            "it (other hparams, domains or metrics): merge the shards of one run"
        )
    reporter.add_definition(definition)


def _add_record(
    reporter: Reporter,
    path: Path,
    record: TrialRecord,
    curves: dict[str, Any],
    seen: dict[str, Path],
) -> None:
    """Adds a report's trial, with its curves, unless an earlier report holds it."""
    if record.nodeid in seen:
        raise MergeError(
            f"{record.nodeid} is in both {seen[record.nodeid]} and {path}: the "
            "shards ran it twice, so they did not split the same sweep; run every "
            "shard with the same tests, options and plugins"
        )
    seen[record.nodeid] = path
    reporter.add(record)
    if record.nodeid in curves:
        reporter.loaded_curves[record.nodeid] = curves[record.nodeid]


def _missing_shards(shards: dict[int, set[int]]) -> list[str]:
    """A line per matrix of N shards whose reports do not hold every K."""
    missing = []
    for total, ks in sorted(shards.items()):
        absent = sorted(set(range(1, total + 1)) - ks)
        if absent:
            which = ", ".join(str(k) for k in absent)
            missing.append(
                f"shard{'s' if len(absent) > 1 else ''} {which} of {total} "
                "not among the reports: their trials are not in this table"
            )
    return missing


@dataclass
class _Report:
    """What one `--hparams-json` file holds, read and checked."""

    sweeps: list[tuple[SweepDefinition, list[TrialRecord]]]
    curves: dict[str, Any]  # by node id
    reported: dict[str, Comparison]  # each combination's verdict, by its name
    not_run: set[str]  # the baseline's entries that did not run
    shard: tuple[int, int] | None  # its (K, N) of --hparams-shard
    interrupted: bool  # its run was cut short


def _shard(value: Any) -> tuple[int, int] | None:
    """A report's `"shard": [K, N]`, or None (no shard, or a report before it)."""
    if value is None:
        return None
    k, n = value
    return int(k), int(n)


def _read_report(path: Path) -> _Report:
    data = _read_json_report(path)
    try:
        return _Report(
            sweeps=[
                (
                    SweepDefinition.from_dict(sweep["definition"]),
                    [TrialRecord.from_dict(t) for t in sweep["trials"]],
                )
                for sweep in data["sweeps"]
            ],
            curves=_curves(data["sweeps"]),
            reported=_reported(data["sweeps"]),
            not_run={str(n) for n in data.get("baseline_not_run", [])},
            shard=_shard(data.get("shard")),
            interrupted=bool(data.get("interrupted", False)),
        )
    # OverflowError: an integer beyond float64, such as 10**400 written out.
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:
        raise MergeError(
            f"{path}: a malformed pytest-hparams report ({type(e).__name__}: {e}); "
            "give the files that --hparams-json wrote"
        ) from None


def _read_json_report(path: Path) -> dict[str, Any]:
    """A file's JSON, which must be a report of this version."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise MergeError(f"{path}: cannot be read as JSON ({e})") from None
    if not isinstance(data, dict) or data.get("format") != "pytest-hparams-report":
        raise MergeError(f"{path}: not a pytest-hparams JSON report (--hparams-json)")
    if data.get("version") != export.JSON_VERSION:
        raise MergeError(
            f"{path}: report version {data.get('version')!r} is not {export.JSON_VERSION}; "
            "write the shards' reports with this version of pytest-hparams"
        )
    return data


def _curves(sweeps: list[dict[str, Any]]) -> dict[str, Any]:
    """The curves of the trials that logged some, by node id."""
    return {
        str(t["nodeid"]): export.read_curves(t)
        for sweep in sweeps
        for t in sweep["trials"]
        if t.get("curves")
    }


def _reported(sweeps: list[dict[str, Any]]) -> dict[str, Comparison]:
    """The verdicts the report gave its combinations, by combination."""
    return {
        str(combo["combo"]): Comparison.from_dict(combo["baseline"])
        for sweep in sweeps
        for combo in sweep.get("combinations") or []
        if combo.get("baseline")
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        _check_outputs(args)
        reporter = Reporter(_settings(args), merged=True)
        missing = load_reports(args.reports, reporter)
        reporter.decide_gate()
    # ModuleNotFoundError: the gate on repeats without scipy.
    except (MergeError, ModuleNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    reporter.write_reports()
    for text, markup in reporter.lines():
        print(f"== {text} ==" if markup.get("sep") else text)
    for text in missing:
        print(f"merge: {text}")
    return _exit_code(reporter, missing)


def _exit_code(reporter: Reporter, missing: list[str]) -> int:
    """1 when a report or shard is missing, a report could not be written, the
    gate failed or a trial did; else 0."""
    decision = reporter.decision
    gate_failed = decision is not None and bool(decision.failures)
    failed = missing or not reporter.ok or gate_failed
    return 1 if failed or any(r.outcome.bad for r in reporter.all_records) else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_hparams merge",
        description="Merge the --hparams-json reports of CI shards into one report and table.",
    )
    parser.add_argument("reports", nargs="+", type=Path, help="--hparams-json files of the shards")
    parser.add_argument("-o", "--output", type=Path, help="write the merged JSON report here")
    parser.add_argument("--markdown", type=Path, help="write the Markdown summary here")
    parser.add_argument(
        "--html",
        type=Path,
        help="write the HTML report (tables and plots) here; needs pytest-hparams[report]",
    )
    parser.add_argument("--save-baseline", type=Path, help="write (or update) a baseline file")
    parser.add_argument(
        "--top",
        type=non_negative_int,
        default=None,
        help="rows per sweep; 0 shows all (default: as pytest)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="gate the merged repeats on this baseline, as pytest's --hparams-baseline does "
        "(needed for --gate best, or when a combination's repeats ran in several reports)",
    )
    parser.add_argument(
        "--tolerance", type=tolerance_spec, action="append", default=[], help="as pytest's"
    )
    parser.add_argument("--alpha", type=alpha_spec, default=0.05, help="as pytest's")
    parser.add_argument("--gate", type=gate_spec, default="each", help="as pytest's")
    return parser


def _check_outputs(args: argparse.Namespace) -> None:
    """Each output its own writable file, never an input, and a report only
    over a blank file or a report of its own kind: pytest's checks.

    Raises:
      MergeError: Naming the file and the fix.
    """
    outputs = {
        "-o": args.output,
        "--markdown": args.markdown,
        "--html": args.html,
        "--save-baseline": args.save_baseline,
    }
    _check_distinct(outputs.values())
    if args.html is not None and (why := missing_plotly("--html")):
        raise MergeError(why)
    for source, path in outputs.items():
        if path is not None:
            _check_writable(path, source)
    _check_reports_replaceable(args)


def _check_reports_replaceable(args: argparse.Namespace) -> None:
    """Checks that each report asked for replaces neither an input nor a file
    of another kind.

    Raises:
      MergeError: Naming the file and the fix.
    """
    inputs = {p.resolve() for p in (*args.reports, args.baseline) if p is not None}
    for path, kind in ((args.output, "json"), (args.markdown, "markdown"), (args.html, "html")):
        if path is not None:
            _check_replaceable(path, kind, inputs)


def _check_distinct(outputs: Iterable[Path | None]) -> None:
    given = [p.resolve() for p in outputs if p is not None]
    if len(set(given)) < len(given):
        raise MergeError(
            "-o, --markdown, --html and --save-baseline name one file; give each its own"
        )


def _check_writable(path: Path, source: str) -> None:
    """pytest's check of an output path: not a directory, a FIFO, or in a
    missing or read-only folder."""
    try:
        check_output(path, source)
    except pytest.UsageError as e:
        raise MergeError(str(e)) from None


def _check_replaceable(path: Path, kind: str, inputs: set[Path]) -> None:
    """A report may replace neither an input nor a file of another kind."""
    if path.resolve() in inputs:
        raise MergeError(f"{path} is also an input; write the merge to a file of its own")
    if why := export.foreign(path, kind):
        raise MergeError(f"{path} {why}; write the merge to a file of its own")


def _settings(args: argparse.Namespace) -> Settings:
    """The merge's settings, with the baseline it gates on and the one it saves, read."""
    entries = _gated_baseline(args.baseline)
    saved = _saved_baseline(args.save_baseline)
    return Settings(
        top=args.top,
        baseline=entries,
        save_baseline=args.save_baseline,
        saved=saved,
        json_path=args.output,
        markdown_path=args.markdown,
        html_path=args.html,
        alpha=args.alpha,
        gate=args.gate,
        tolerances=(dict(args.tolerance),),
    )


def _gated_baseline(path: Path | None) -> dict[str, baseline.Entry] | None:
    """The entries of the baseline the merge gates on (None: no gate on one).

    Raises:
      MergeError: If it cannot be read.
    """
    if path is None:
        return None
    try:
        return baseline.load(path)
    except BaselineError as e:
        raise MergeError(f"{path} {e}") from None


def _saved_baseline(path: Path | None) -> dict[str, baseline.Entry]:
    """The entries already in the baseline the merge saves to, which it
    updates ({} for none, or a file not yet written).

    Raises:
      MergeError: If it cannot be read.
    """
    if path is None or not path.is_file():
        return {}
    try:
        return baseline.load(path, blank_ok=True)
    except BaselineError as e:
        raise MergeError(f"{path} {e}; nothing written") from None
