"""Reports for CI systems: every trial as JSON, and the tables as Markdown."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_hparams import report
from pytest_hparams.atomic import write_atomically
from pytest_hparams.metrics import Metric
from pytest_hparams.space import format_value

JSON_VERSION = 1

Records = Mapping[str, Sequence[Mapping[str, Any]]]


def json_report(
    records: Records, definitions: Mapping[str, Mapping[str, Any]], not_run: Sequence[str]
) -> str:
    """Every trial of every sweep: test, id, hparams, metrics, outcome, duration, baseline."""
    sweeps = []
    for test, trials in records.items():
        definition = definitions[test]
        sweeps.append(
            {
                "test": test,
                "hparams": [h["name"] for h in definition["hparams"]],
                "metrics": definition["metrics"],
                "trials": [
                    {
                        "nodeid": t["nodeid"],
                        "id": t["id"],
                        "hparams": t["hparams"],
                        "metrics": {k: _json_number(v) for k, v in t["metrics"].items()},
                        "outcome": t["outcome"],
                        "duration": round(t["duration"], 6),
                        "baseline": t.get("baseline"),
                    }
                    for t in report.rank(trials, _primary(trials, definition))
                ],
            }
        )
    data = {
        "format": "pytest-hparams-report",
        "version": JSON_VERSION,
        "sweeps": sweeps,
        "baseline_not_run": list(not_run),
    }
    return json.dumps(data, indent=2, allow_nan=False) + "\n"


def _json_number(value: float) -> float | str:
    # JSON has no NaN or infinity; spell them out rather than emit invalid JSON.
    return value if math.isfinite(value) else str(value)


def _primary(trials: Sequence[Mapping[str, Any]], definition: Mapping[str, Any]) -> Metric | None:
    metrics = report.columns(trials, [Metric.from_dict(m) for m in definition["metrics"]])
    return metrics[0] if metrics else None


def markdown_report(
    records: Records, definitions: Mapping[str, Mapping[str, Any]], not_run: Sequence[str]
) -> str:
    """The sweep tables as GitHub-flavoured Markdown, best trial first, regressions marked."""
    out = []
    for test, trials in records.items():
        definition = definitions[test]
        declared = [Metric.from_dict(m) for m in definition["metrics"]]
        metrics = report.shown_columns(trials, declared)
        primary = metrics[0] if metrics else None
        names = [h["name"] for h in definition["hparams"]]
        ranked = report.rank(trials, primary)
        winner = report.best(ranked, primary)
        compared = any(t.get("baseline") for t in trials)
        out.append(f"### `{test}`\n")
        summary = report.counts(trials)
        if winner is not None and metrics:
            value = report.format_value_cell(winner["metrics"][metrics[0].name])
            summary += f"; best {metrics[0].name} = {value}"
        out.append(summary + "\n")
        header = [
            "",
            *names,
            *(m.name for m in metrics),
            "outcome",
            *(["baseline"] if compared else []),
        ]
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "|".join(["---"] * len(header)) + "|")
        for t in ranked:
            base = t.get("baseline") or {}
            mark = "🏆" if t is winner else "❌" if base.get("verdict") == "regressed" else ""
            cells = [mark, *(_md(format_value(t["hparams"][n])) for n in names)]
            for m in metrics:
                cell = report.format_value_cell(t["metrics"].get(m.name))
                delta = report.delta_cell(base or None, m.name) if base else ""
                if delta == "same":
                    cell += " (same)"
                elif delta and delta != "new":
                    cell += f" (vs {delta})"
                cells.append(cell)
            cells.append(t["outcome"])
            if compared:
                verdict = base.get("verdict", "")
                cells.append(f"**{verdict}**" if verdict == "regressed" else verdict)
            out.append("| " + " | ".join(cells) + " |")
        if compared:
            out.append(
                "\n"
                + report.format_verdict(
                    trials, [n[len(test) :] for n in not_run if n.startswith(test + "[")]
                )
            )
        out.append("")
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def write(path: Path, text: str) -> None:
    write_atomically(path, text.encode("utf-8"))
