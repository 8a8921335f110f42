"""Reports for CI systems: every trial as JSON, and the tables as Markdown."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_hparams import table
from pytest_hparams.atomic import write_atomically
from pytest_hparams.metrics import Metric
from pytest_hparams.records import TrialRecord

if TYPE_CHECKING:
    from pytest_hparams.repeats import Combination
    from pytest_hparams.reporter import Reporter

JSON_VERSION = 2


def json_report(reporter: Reporter, not_run: Sequence[str]) -> str:
    """Every trial of every sweep: its key, hparams, metrics, outcome, duration, baseline."""
    sweeps = []
    for test, trials in reporter.sweeps():
        definition = reporter.definitions[test]
        sweeps.append(
            {
                "test": test,
                "hparams": definition["hparams"],
                "metrics": definition["metrics"],
                "trials": [
                    {
                        **t.to_dict(),
                        "metrics": {k: _json_number(v) for k, v in t.metrics.items()},
                        "duration": round(t.duration, 6),
                        "baseline": _json_safe(t.comparison),
                    }
                    for t in table.rank(trials, _primary(trials, definition))
                ],
            }
        )
    for sweep in sweeps:
        combos = reporter.combinations.get(sweep["test"])
        if combos:
            sweep["combinations"] = [_combination(c) for c in combos]
    data = {
        "format": "pytest-hparams-report",
        "version": JSON_VERSION,
        "sweeps": sweeps,
        "baseline_not_run": list(not_run),
    }
    return json.dumps(data, indent=2, allow_nan=False) + "\n"


def _combination(combo: Combination) -> dict[str, Any]:
    """A repeated combination: its repeats' n, mean and std per metric."""
    key = combo.key
    return {
        "combo": combo.combo,
        "hparams": dict(key.hparams),
        "case": key.case,
        "repeats": len(combo.records),
        "outcomes": combo.outcomes(),
        "metrics": {
            name: {"n": s.n, "mean": _json_number(s.mean), "std": _json_number(s.std)}
            for name, s in combo.summaries().items()
        },
        "baseline": _json_safe(combo.comparison),
    }


def _json_number(value: float) -> float | str:
    # JSON has no NaN or infinity; spell them out rather than emit invalid JSON.
    return value if math.isfinite(value) else str(value)


def _json_safe(data: Any) -> Any:
    """`data` with every non-finite float spelled out (a comparison holds the
    NaN a regressed trial returned)."""
    if isinstance(data, float):
        return _json_number(data)
    if isinstance(data, dict):
        return {k: _json_safe(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_json_safe(v) for v in data]
    return data


def _primary(trials: Sequence[TrialRecord], definition: Mapping[str, Any]) -> Metric | None:
    metrics = table.columns(trials, [Metric.from_dict(m) for m in definition["metrics"]])
    return metrics[0] if metrics else None


def markdown_report(reporter: Reporter, not_run: Sequence[str]) -> str:
    """The sweep tables as GitHub-flavoured Markdown, best trial first, regressions marked."""
    out = []
    for test, trials in reporter.sweeps():
        definition = reporter.definitions[test]
        declared = [Metric.from_dict(m) for m in definition["metrics"]]
        combos = reporter.combinations.get(test)
        if combos:
            names = [h["name"] for h in definition["hparams"]]
            out += _markdown_combinations(test, combos, names, declared)
            continue
        metrics = table.shown_columns(trials, declared)
        primary = metrics[0] if metrics else None
        names = [h["name"] for h in definition["hparams"]]
        ranked = table.rank(trials, primary)
        winner = table.best(ranked, primary)
        compared = any(t.comparison for t in trials)
        out.append(f"### `{_md(test)}`\n")
        summary = table.counts(trials)
        if winner is not None and metrics:
            value = table.format_value_cell(winner.metrics[metrics[0].name])
            summary += f"; best {metrics[0].name} = {value} at `{_md(winner.key.params)}`"
        out.append(summary + "\n")
        has_case = any(t.key.case for t in trials)
        header = [
            "",
            *names,
            *(["case"] if has_case else []),
            *(m.name for m in metrics),
            "outcome",
            *(["baseline"] if compared else []),
        ]
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "|".join(["---"] * len(header)) + "|")
        for t in ranked:
            base = t.comparison or {}
            mark = "🏆" if t is winner else "❌" if t.verdict == "regressed" else ""
            cells = [mark, *(_md(table.cell_text(t.key.hparams.get(n, ""))) for n in names)]
            if has_case:
                cells.append(_md(table.cell_text(t.key.case)))
            for m in metrics:
                cell = table.format_value_cell(t.metrics.get(m.name))
                delta = table.delta_cell(base or None, m.name) if base else ""
                if delta == "same":
                    cell += " (same)"
                elif delta and delta != "new":
                    cell += f" (vs {delta})"
                cells.append(cell)
            cells.append(t.outcome.value)
            if compared:
                verdict = t.verdict
                cells.append(f"**{verdict}**" if verdict == "regressed" else verdict)
            out.append("| " + " | ".join(cells) + " |")
        if compared:
            out.append(
                "\n"
                + table.format_verdict(
                    trials, [n[len(test) :] for n in not_run if n.startswith(test + "[")]
                )
            )
        out.append("")
    return "\n".join(out) + "\n"


def _markdown_combinations(
    test: str, combos: Sequence[Combination], names: Sequence[str], declared: Sequence[Metric]
) -> list[str]:
    """A repeated sweep: one row per combination, mean ± std over its repeats."""
    records = [r for c in combos for r in c.records]
    metrics = table.shown_columns(records, declared)
    primary = metrics[0] if metrics else None
    ranked = table.rank_combinations(combos, primary)
    compared = any(c.comparison for c in combos)
    has_case = any(c.key.case for c in combos)
    header = [
        "",
        *names,
        *(["case"] if has_case else []),
        *(m.name for m in metrics),
        "outcome",
        *(["baseline"] if compared else []),
    ]
    out = [f"### `{_md(test)}`\n", f"{len(combos)} combinations, {table.counts(records)}\n"]
    out.append("| " + " | ".join(header) + " |")
    out.append("|" + "|".join(["---"] * len(header)) + "|")
    for i, combo in enumerate(ranked):
        mark = "🏆" if i == 0 and primary else "❌" if combo.verdict == "regressed" else ""
        cells = [mark, *(_md(table.cell_text(combo.key.hparams.get(n, ""))) for n in names)]
        if has_case:
            cells.append(_md(table.cell_text(combo.key.case)))
        cells += [table.mean_cell(combo.summary(m.name)) for m in metrics]
        cells.append(combo.outcomes())
        if compared:
            verdict = combo.verdict
            cells.append(f"**{verdict}**" if verdict == "regressed" else verdict)
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    return out


def _md(text: str) -> str:
    # A value is data, never markup: HTML is escaped, and a pipe or a line
    # break would end the row.
    return html.escape(text, quote=False).replace("|", "\\|").replace("`", "\\`")


def write(path: Path, text: str) -> str:
    """Replaces `path` with `text` whole; returns "" (nothing to add to the report line)."""
    write_atomically(path, text.encode("utf-8"))
    return ""
