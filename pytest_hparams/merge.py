"""`python -m pytest_hparams merge`: one report and one table from CI shards.

Each shard of a CI matrix (`--hparams-shard K/N`) writes its own
`--hparams-json` report; this joins them, prints the tables as pytest would,
and can write the merged JSON, the Markdown summary and a baseline.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_hparams import baseline, export, report
from pytest_hparams.metrics import Metric

Loaded = tuple[dict[str, list[dict[str, Any]]], dict[str, dict[str, Any]], list[str]]


def load_reports(paths: Sequence[Path]) -> Loaded:
    """Records and definitions by test, from `--hparams-json` files.

    Raises:
      ValueError: If a file is not such a report; the message names it.
    """
    records: dict[str, dict[str, dict[str, Any]]] = {}
    definitions: dict[str, dict[str, Any]] = {}
    not_run: set[str] = set()
    ran: set[str] = set()
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ValueError(f"{path}: cannot be read as JSON ({e})") from None
        if not isinstance(data, dict) or data.get("format") != "pytest-hparams-report":
            raise ValueError(f"{path}: not a pytest-hparams JSON report (--hparams-json)")
        if data.get("version") != export.JSON_VERSION:
            raise ValueError(
                f"{path}: report version {data.get('version')!r} is not {export.JSON_VERSION}"
            )
        not_run.update(data.get("baseline_not_run", []))
        for sweep in data["sweeps"]:
            test = sweep["test"]
            definitions.setdefault(
                test,
                {
                    "hparams": [{"name": n} for n in sweep["hparams"]],
                    "metrics": sweep["metrics"],
                },
            )
            for trial in sweep["trials"]:
                metrics = {k: float(v) for k, v in trial["metrics"].items()}
                # A trial in two shards: the later file wins.
                records.setdefault(test, {})[trial["nodeid"]] = {
                    **trial,
                    "test": test,
                    "metrics": metrics,
                }
                ran.add(trial["nodeid"])
    merged = {test: list(by_id.values()) for test, by_id in records.items()}
    # An entry one shard did not run was most likely run by another.
    return merged, definitions, sorted(not_run - ran)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_hparams merge",
        description="Merge the --hparams-json reports of CI shards into one report and table.",
    )
    parser.add_argument("reports", nargs="+", type=Path, help="--hparams-json files of the shards")
    parser.add_argument("-o", "--output", type=Path, help="write the merged JSON report here")
    parser.add_argument("--markdown", type=Path, help="write the Markdown summary here")
    parser.add_argument("--save-baseline", type=Path, help="write (or update) a baseline file")
    parser.add_argument("--top", type=int, default=10, help="rows per sweep; 0 shows all")
    args = parser.parse_args(argv)

    try:
        records, definitions, not_run = load_reports(args.reports)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for test, trials in records.items():
        definition = definitions[test]
        metrics = [Metric.from_dict(m) for m in definition["metrics"]]
        print(f"== hparams: {test} ==")
        names = [h["name"] for h in definition["hparams"]]
        for line in report.format_table(trials, names, metrics, args.top):
            print(line)
        if any(t.get("baseline") for t in trials):
            missing = [n[len(test) :] for n in not_run if n.startswith(test + "[")]
            print(report.format_verdict(trials, missing))
    if args.output:
        export.write(args.output, export.json_report(records, definitions, not_run))
    if args.markdown:
        export.write(args.markdown, export.markdown_report(records, definitions, not_run))
    if args.save_baseline:
        try:
            existing = baseline.load(args.save_baseline) if args.save_baseline.exists() else {}
        except baseline.BaselineError as e:
            print(f"error: {args.save_baseline} {e}; nothing written", file=sys.stderr)
            return 2
        entries = baseline.updated(existing, [t for ts in records.values() for t in ts])
        baseline.save(args.save_baseline, entries)
        print(f"baseline saved: {args.save_baseline} ({len(entries)} trials)")
    bad = [
        t for ts in records.values() for t in ts if t["outcome"] in ("failed", "error", "crashed")
    ]
    return 1 if bad else 0
