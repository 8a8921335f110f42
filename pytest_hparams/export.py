"""Reports for CI systems: every trial as JSON, and the tables as Markdown."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pytest_hparams import table
from pytest_hparams.files import write_atomically
from pytest_hparams.records import SweepDefinition, TrialRecord
from pytest_hparams.repeats import Combination

if TYPE_CHECKING:  # settings.py checks report paths here: the logdir's readers load later
    from pytest_hparams.logdir import Curves

JSON_VERSION = 3
#: One sweep's part of a report: its definition, its records and, when it
#: repeats, its combinations as the gates compared them.
Sweep = tuple[SweepDefinition, Sequence[TrialRecord], Sequence[Combination] | None]


def json_report(
    sweeps: Sequence[Sweep],
    not_run: Sequence[str],
    gate_failures: Sequence[str] = (),
    curves: Mapping[str, Curves] | None = None,
    shard: tuple[int, int] | None = None,
    interrupted: bool = False,
) -> str:
    """Every trial of every sweep: its key, hparams, metrics, outcome, duration,
    baseline; and the gates' run-level verdict (repeats' test, gate best),
    which no trial of pytest's, nor JUnit XML, carries.

    A trial whose curves were logged (`curves`, by node id) carries them under
    "curves": group, tag, then `[step, value]` pairs. Readers of version 3
    that do not know the field pass over it; `merge` and `compare` draw it.

    JSON has no NaN or infinity: such a metric is written as the string
    "nan", "inf" or "-inf". `shard` (K, N) and `interrupted` (the run was
    cut short: its sweeps are incomplete) tell `merge` what is missing.
    """
    data = {
        "format": "pytest-hparams-report",
        "version": JSON_VERSION,
        "sweeps": [_sweep(*sweep, curves or {}) for sweep in sweeps],
        "baseline_not_run": list(not_run),
        "gate": {"passed": not gate_failures, "failures": list(gate_failures)},
        "shard": list(shard) if shard else None,
        "interrupted": interrupted,
    }
    return json.dumps(data, indent=2, allow_nan=False) + "\n"


def _sweep(
    definition: SweepDefinition,
    records: Sequence[TrialRecord],
    combos: Sequence[Combination] | None,
    curves: Mapping[str, Curves],
) -> dict[str, Any]:
    """One sweep's part of the report: its trials, and its combinations when
    it repeats, each ranked as its table ranks them."""
    metrics = table.columns(records, definition.metrics)
    primary = metrics[0] if metrics else None
    data = definition.to_dict()
    sweep: dict[str, Any] = {
        "test": definition.test,
        "hparams": data["hparams"],
        "metrics": data["metrics"],
        "definition": data,
        "trials": [
            _json_safe(_trial(t, curves.get(t.nodeid))) for t in table.rank(records, primary)
        ],
    }
    if combos:
        # Ranked as the table ranks them: arrival order is xdist's.
        ranked = table.rank_combinations(combos, primary)
        sweep["combinations"] = [_combination(c) for c in ranked]
    return sweep


def _trial(record: TrialRecord, curves: Curves | None) -> dict[str, Any]:
    out = {**record.to_dict(), "duration": round(record.duration, 6)}
    if curves:
        out["curves"] = {
            group: {
                tag: [[step, v] for step, v in sorted(points.items())]
                for tag, points in tags.items()
            }
            for group, tags in curves.items()
        }
    return out


def read_curves(trial: Mapping[str, Any]) -> Curves:
    """A JSON report's trial's curves, as `json_report` wrote them ({} if none).

    Raises:
      TypeError, ValueError: If the field is not of that form.
    """
    raw = trial.get("curves") or {}
    return {
        str(group): {
            str(tag): {int(s): float(v) for s, v in points} for tag, points in tags.items()
        }
        for group, tags in dict(raw).items()
    }


def _combination(combo: Combination) -> Any:
    """A repeated combination: its repeats' n, mean and std per metric."""
    key = combo.key
    return _json_safe(
        {
            "combo": combo.combo,
            "hparams": dict(key.hparams),
            "case": key.case,
            "repeats": len(combo.records),
            "outcomes": combo.outcomes(),
            "metrics": {
                name: {"n": s.n, "mean": s.mean, "std": s.std}
                for name, s in combo.summaries().items()
            },
            "baseline": combo.comparison.to_dict() if combo.comparison else None,
        }
    )


def _json_safe(data: Any) -> Any:
    """`data` with every non-finite float spelled out (a comparison holds the
    NaN a regressed trial returned)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else str(data)
    if isinstance(data, dict):
        return {k: _json_safe(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_json_safe(v) for v in data]
    return data


#: How every JSON report begins (`json_report` writes "format" first).
JSON_START = '{\n  "format": "pytest-hparams-report"'
#: How every Markdown summary begins: a sweep's heading, its node id (or,
#: from a run in which no sweep ran, the link to the HTML report alone).
MARKDOWN_START = re.compile(r"### `[^`\n]*::|Plots of every sweep: \[")
#: How every HTML report begins (report_html.py writes it).
HTML_START = "<!DOCTYPE html>\n<!-- pytest-hparams report -->"
#: The kinds of report `foreign` tells apart, as its messages name them.
KINDS = {"json": "JSON report", "markdown": "Markdown summary", "html": "HTML report"}


def foreign(path: Path, kind: str = "json") -> str:
    """Why a report of `kind` ("json", "markdown" or "html") may not be
    written over what `path` holds, or "" when it may: it holds nothing, a
    blank file, or a report of the same kind that this plugin wrote."""
    if _replaceable(path, kind):
        return ""
    return f"holds something other than a pytest-hparams {KINDS[kind]}"


def _replaceable(path: Path, kind: str) -> bool:
    if not path.exists():
        return True
    if not path.is_file():  # a FIFO would block the read below
        return False
    try:
        with path.open("rb") as f:
            start = f.read(256).decode("utf-8", errors="replace")
    except OSError:  # unreadable: whether it can be written is checked apart
        return True
    if not start.strip():
        return _blank(path)
    return _OURS[kind](path, start)


def _blank(path: Path) -> bool:
    """Whether a file blank so far is blank throughout, not a file of the user's."""
    try:
        return not path.read_bytes().strip()
    except OSError:
        return True


def _ours_json(path: Path, start: str) -> bool:
    if start.startswith(JSON_START):
        return True
    try:  # a report reformatted (json.tool, jq): read it whole
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == "pytest-hparams-report"


def _ours_markdown(path: Path, start: str) -> bool:
    # Its first heading names a test: "### `test_x.py::test_fit`".
    return MARKDOWN_START.match(start.lstrip()) is not None


def _ours_html(path: Path, start: str) -> bool:
    return start.startswith(HTML_START)


#: Whether a file, given its first 256 bytes, is a report of a kind that this plugin wrote.
_OURS: dict[str, Callable[[Path, str], bool]] = {
    "json": _ours_json,
    "markdown": _ours_markdown,
    "html": _ours_html,
}


def markdown_report(tables: Sequence[table.Table], html_link: str = "") -> str:
    """The sweep tables as GitHub-flavoured Markdown, best first, regressions
    marked; then, when the HTML report is written too, a link to it
    (`html_link`, relative to the Markdown's folder). The link comes last: a
    summary begins with its first sweep's heading, by which a rerun knows it."""
    lines = [line for t in tables for line in table.markdown_lines(t)]
    if html_link and lines:
        name = html_link.rsplit("/", 1)[-1]
        lines += [f"Plots of every sweep: [{table.md_text(name)}]({quote(html_link)})", ""]
    return "\n".join(lines) + "\n"


def write(path: Path, text: str) -> str:
    """Replaces `path` with `text` whole; returns "" (nothing to add to the report line)."""
    write_atomically(path, text.encode("utf-8"))
    return ""
