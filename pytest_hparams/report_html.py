"""The HTML report (`--hparams-html`, `merge --html`, `compare --html`): every
sweep's table and plots in one self-contained file, drawn with Plotly.

Plotly rather than Vega-Lite: Optuna's own `optuna.visualization` draws on
it, so a sweep's users have met its plots; its parallel-coordinates trace is
built in; and its Python package carries plotly.js, so the file inlines it
once and opens from a CI artifact with no network. The figures are plain
dicts in Plotly's schema, rendered without validation: a 1,000-trial sweep
draws in well under a second (docs/guides/reports.md gives the figures).

Pure but for plotly: it returns text; the reporter writes it atomically.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import plotly.io as pio
from plotly.offline import get_plotlyjs

from pytest_hparams import table
from pytest_hparams.export import HTML_START
from pytest_hparams.logdir import Curves
from pytest_hparams.metrics import Metric, parse_tolerance
from pytest_hparams.records import Outcome, SweepDefinition, TrialRecord
from pytest_hparams.repeats import Combination
from pytest_hparams.sweep import Value, format_value
from pytest_hparams.verdicts import Comparison, MetricComparison, Summary, Verdict

#: A sweep draws a legend up to this many trials; past it the hover names them.
LEGEND_UP_TO = 20
_OUTCOME_COLORS = {"ok": "#1f77b4", "pruned": "#9e9e9e", "bad": "#d62728"}
_VERDICT_COLORS: dict[str, str] = {
    Verdict.REGRESSED: "#d62728",
    Verdict.IMPROVED: "#2ca02c",
    Verdict.OK: "#1f77b4",
}
_CONFIG = {"displaylogo": False, "responsive": True}
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; }
h3 { font-size: 1.05em; margin-top: 1.5em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 2px 8px; white-space: nowrap; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.best td { background: #fff8d6; } tr.regressed td { background: #fde2e2; }
tr.improved td { background: #e3f6e3; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr)); gap: 8px; }
.wide { grid-column: 1 / -1; } .note { color: #555; font-size: 0.9em; }
.verdict { font-weight: 600; }
"""


@dataclass
class SweepView:
    """One sweep as the report draws it.

    Attributes:
      table: Its table, every row shown, ranked as the terminal's.
      combos: Its combinations as the gates compared them, when it repeats.
      curves: Each trial's logged curves, by node id.
    """

    definition: SweepDefinition
    records: Sequence[TrialRecord]
    table: table.Table
    combos: Sequence[Combination] | None = None
    curves: Mapping[str, Curves] = field(default_factory=dict)


@dataclass
class Part:
    """A titled run of sweeps: the run itself, or the head and the base of a comparison."""

    heading: str
    sweeps: Sequence[SweepView]


@dataclass(frozen=True)
class Shift:
    """One combination's primary metric on both sides of a comparison."""

    label: str
    base: Summary | None
    head: Summary | None
    verdict: str  # regressed, improved, ok, added, removed...


@dataclass
class Changes:
    """What `compare` found: its table, and the primary metric's shifts."""

    verdict: str
    table: table.Table
    metric: str
    shifts: Sequence[Shift] = ()


def render(title: str, parts: Sequence[Part], changes: Changes | None = None) -> str:
    """The whole page: plotly.js once, then the comparison (if any), then
    each part's sweeps, each with its table and figures."""
    figures = _Figures()
    body: list[str] = [f"<h1>{_e(title)}</h1>"]
    body.append(
        f'<p class="note">Written by pytest-hparams on {time.strftime("%Y-%m-%d %H:%M:%S %Z")}; '
        "it needs no network: every script is in this file.</p>"
    )
    if changes is not None:
        body += _changes(changes, figures)
    for part in parts:
        body += _part(part, figures)
    return "\n".join(
        [
            HTML_START,
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{_e(title)}</title><style>{_STYLE}</style>",
            f'<script type="text/javascript">{get_plotlyjs()}</script>',
            "</head><body>",
            *body,
            "</body></html>",
            "",
        ]
    )


def _part(part: Part, figures: _Figures) -> list[str]:
    """A part's lines: its heading, if it has one, then each of its sweeps."""
    out = [f"<h2>{_e(part.heading)}</h2>"] if part.heading else []
    if not part.sweeps:
        out.append('<p class="note">No sweep ran.</p>')
    for view in part.sweeps:
        out += _sweep(view, figures, nested=bool(part.heading))
    return out


class _Figures:
    """Numbers the page's figures, so that their ids are stable across runs."""

    def __init__(self) -> None:
        self.count = 0

    def div(self, figure: Mapping[str, Any], wide: bool = False) -> str:
        self.count += 1
        inner = pio.to_html(
            dict(figure),
            include_plotlyjs=False,
            full_html=False,
            validate=False,
            div_id=f"figure-{self.count}",
            config=_CONFIG,
        )
        return f'<div class="fig{" wide" if wide else ""}">{inner}</div>'


# --- a sweep ---------------------------------------------------------------------------


def _sweep(view: SweepView, figures: _Figures, nested: bool) -> list[str]:
    level = "h3" if nested else "h2"
    out = [f"<{level}><code>{_e(view.definition.test)}</code></{level}>"]
    out += table.html_lines(view.table)
    primary = _primary(view)
    sections: list[tuple[str, list[str]]] = [
        ("Learning curves", [figures.div(f) for f in curve_figures(view)]),
    ]
    if primary is not None:
        sections += _primary_sections(view, primary, figures)
    return out + _section_lines(sections, nested)


def _section_lines(sections: list[tuple[str, list[str]]], nested: bool) -> list[str]:
    """Each section that has a figure: its heading (a level lower in a
    nested part), then its figures."""
    out = []
    for heading, divs in sections:
        if divs:
            out.append(f"<h4>{_e(heading)}</h4>" if nested else f"<h3>{_e(heading)}</h3>")
            out.append('<div class="figures">' + "".join(divs) + "</div>")
    return out


def _primary_sections(
    view: SweepView, primary: Metric, figures: _Figures
) -> list[tuple[str, list[str]]]:
    """The figures of the primary metric, each under its heading; a heading
    without a figure is left out."""
    parallel = parallel_figure(view, primary)
    sections = [
        (
            "Hparams against " + primary.name,
            [figures.div(parallel, wide=True)] if parallel else [],
        ),
        (
            f"{primary.name} against each hparam",
            [figures.div(f) for f in slice_figures(view, primary)],
        ),
    ]
    if view.combos:
        sections.append(
            (
                f"{primary.name} over seeds: mean ± std of each combination",
                [figures.div(repeats_figure(view.combos, primary), wide=True)],
            )
        )
    against = baseline_figure(view, primary)
    if against is not None:
        sections.append((f"{primary.name} against the baseline", [figures.div(against, wide=True)]))
    return sections


def _primary(view: SweepView) -> Metric | None:
    metrics = table.columns(view.records, view.definition.metrics)
    return metrics[0] if metrics else None


# --- the figures, as dicts in Plotly's schema ------------------------------------------------


def curve_figures(view: SweepView) -> list[dict[str, Any]]:
    """A figure per logged tag (and Keras group): a line per trial; a pruned
    trial's line is grey, dotted, and ends in a red cross at the step it was
    pruned at."""
    out = []
    for (group, tag), lines in _curves_by_tag(view).items():
        if all(len(points) < 2 for _, points in lines):
            continue  # the final values a trial returned: no curve was logged
        traces = [_curve_trace(record, points) for record, points in lines]
        title = f"{tag} ({group})" if group else tag
        layout = _layout(title, "step", tag, legend=len(traces) <= LEGEND_UP_TO)
        out.append({"data": traces, "layout": layout})
    return out


def _curves_by_tag(
    view: SweepView,
) -> dict[tuple[str, str], list[tuple[TrialRecord, dict[int, float]]]]:
    """Each trial's curve, best trial first, by (Keras group, tag); the
    plugin's own tags are left out."""
    by_tag: dict[tuple[str, str], list[tuple[TrialRecord, dict[int, float]]]] = {}
    for record in _ranked(view):
        for group, tags in view.curves.get(record.nodeid, {}).items():
            for tag, points in tags.items():
                if not tag.startswith("pytest.") and points:
                    by_tag.setdefault((group, tag), []).append((record, points))
    return by_tag


def _curve_trace(record: TrialRecord, points: Mapping[int, float]) -> dict[str, Any]:
    steps = sorted(points)
    trace: dict[str, Any] = {
        "type": "scattergl" if len(steps) > 500 else "scatter",
        "mode": "lines",
        "x": steps,
        "y": [_finite(points[s]) for s in steps],
        "name": _label(record),
        "hovertemplate": f"{_label(record)}<br>step %{{x}}: %{{y}}<extra></extra>",
    }
    if record.outcome is Outcome.PRUNED:
        at = record.pruned_at if record.pruned_at is not None else steps[-1]
        trace.update(
            mode="lines+markers",
            name=f"{_label(record)} (pruned at {at})",
            line={"color": _OUTCOME_COLORS["pruned"], "dash": "dot"},
            marker={
                "symbol": "x",
                "color": _OUTCOME_COLORS["bad"],
                "size": [0] * (len(steps) - 1) + [11],
            },
        )
    return trace


def parallel_figure(view: SweepView, primary: Metric) -> dict[str, Any] | None:
    """Parallel coordinates: an axis per hparam, the primary metric last, a
    line per trial with a finite value, coloured by it."""
    records = _with_finite(view, primary.name)
    names = view.definition.hparam_names
    if not records or not names:
        return None
    dimensions = [_dimension(name, [r.key.hparams.get(name) for r in records]) for name in names]
    values = [float(r.metrics[primary.name]) for r in records]
    dimensions.append({"label": f"{primary.name} ({primary.goal})", "values": values})
    trace = {
        "type": "parcoords",
        "dimensions": dimensions,
        "line": {
            "color": values,
            "colorscale": "Viridis",
            "reversescale": primary.goal == "min",
            "showscale": True,
        },
    }
    layout = {"height": 420, "margin": {"l": 70, "r": 70, "t": 50, "b": 30}}
    return {"data": [trace], "layout": layout}


def _with_finite(view: SweepView, metric: str) -> list[TrialRecord]:
    """A sweep's trials with a finite value of `metric`, best first."""
    return [r for r in _ranked(view) if _finite(r.metrics.get(metric)) is not None]


def _dimension(name: str, values: Sequence[Value | None]) -> dict[str, Any]:
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return {"label": name, "values": [float(v) for v in values]}  # type: ignore[arg-type]
    return _category_dimension(name, values)


def _category_dimension(name: str, values: Sequence[Value | None]) -> dict[str, Any]:
    """Categories (and mixed values) get an axis tick each, in first-seen order."""
    texts = [format_value(v) if v is not None else "-" for v in values]
    order = list(dict.fromkeys(texts))
    index = {t: i for i, t in enumerate(order)}
    return {
        "label": name,
        "values": [index[t] for t in texts],
        "tickvals": list(range(len(order))),
        "ticktext": [_e(t) for t in order],
    }


def slice_figures(view: SweepView, primary: Metric) -> list[dict[str, Any]]:
    """The primary metric against each hparam: a point per trial, coloured by
    how it ended (passed, pruned at the value it was pruned on, or failed)."""
    out = []
    for name in view.definition.hparam_names:
        figure = _slice_figure(view, primary, name)
        if figure is not None:
            out.append(figure)
    return out


def _slice_figure(view: SweepView, primary: Metric, name: str) -> dict[str, Any] | None:
    """The primary metric against one hparam, or None when no trial has a
    value of it and a finite primary metric."""
    traces = [
        {
            "type": "scatter",
            "mode": "markers",
            "name": _KIND_NAMES[kind],
            "x": xs,
            "y": ys,
            "text": texts,
            "marker": {"color": _OUTCOME_COLORS[kind], "size": 8, "opacity": 0.75},
            "hovertemplate": "%{text}<br>%{y}<extra></extra>",
        }
        for kind, (xs, ys, texts) in _slice_points(view, primary, name).items()
    ]
    if not traces:
        return None
    layout = _layout(f"{primary.name} by {name}", name, primary.name, legend=True)
    if all(isinstance(x, str) for t in traces for x in t["x"]):
        layout["xaxis"]["type"] = "category"
    return {"data": traces, "layout": layout}


_KIND_NAMES = {"ok": "passed", "pruned": "pruned", "bad": "failed"}  # in a legend


def _slice_points(
    view: SweepView, primary: Metric, name: str
) -> dict[str, tuple[list[Any], list[float], list[str]]]:
    """The trials with a finite primary metric, by how they ended: the
    hparam's values, the metric's, and each trial's label."""
    groups: dict[str, tuple[list[Any], list[float], list[str]]] = {}
    for record in _ranked(view):
        value = _finite(record.metrics.get(primary.name))
        if value is None or name not in record.key.hparams:
            continue
        xs, ys, texts = groups.setdefault(_kind(record.outcome), ([], [], []))
        raw = record.key.hparams[name]
        xs.append(raw if isinstance(raw, (int, float)) else _e(format_value(raw)))
        ys.append(value)
        texts.append(_label(record))
    return groups


def repeats_figure(combos: Sequence[Combination], primary: Metric) -> dict[str, Any]:
    """Each combination's mean with its sample standard deviation over its
    seeds (the table's ±), and every seed's value beside it, best first."""
    ranked = table.rank_combinations(combos, primary)
    labels = [_e(table.cell_text(c.key.where) or c.combo) for c in ranked]
    summaries = [c.summary(primary.name) for c in ranked]
    layout = _layout("", "", primary.name, legend=True)
    layout["xaxis"]["type"] = "category"
    return {
        "data": [_means_trace(labels, summaries), _seeds_trace(labels, summaries)],
        "layout": layout,
    }


def _means_trace(labels: list[str], summaries: list[Summary]) -> dict[str, Any]:
    return {
        "type": "scatter",
        "mode": "markers",
        "name": "mean ± std",
        "x": labels,
        "y": [s.mean if s.n else None for s in summaries],
        "error_y": {"type": "data", "array": [s.std if s.n > 1 else 0 for s in summaries]},
        "marker": {"size": 11, "color": "#1f77b4"},
    }


def _seeds_trace(labels: list[str], summaries: list[Summary]) -> dict[str, Any]:
    return {
        "type": "scatter",
        "mode": "markers",
        "name": "each seed",
        "x": [label for label, s in zip(labels, summaries, strict=True) for _ in s.values],
        "y": [v for s in summaries for v in s.values],
        "marker": {"size": 6, "color": "#ff7f0e", "opacity": 0.6, "symbol": "circle-open"},
    }


def baseline_figure(view: SweepView, primary: Metric) -> dict[str, Any] | None:
    """Each compared trial (or combination) against its baseline value: the
    baseline with its tolerance as a bar on the side that regresses, this
    run's value as a dot coloured by its verdict; regressions first, marked."""
    rows = _compared(view, primary)
    if not rows:
        return None
    rows.sort(key=lambda row: row[1].verdict is not Verdict.REGRESSED)  # stable: rank kept
    return _against_base(rows, primary)


def _compared(
    view: SweepView, primary: Metric
) -> list[tuple[TrialRecord | Combination, Comparison, MetricComparison]]:
    """Each combination (or, without repeats, each trial, best first) that was
    compared on the primary metric, with its comparison and the metric's."""
    items: list[TrialRecord | Combination] = list(view.combos or _ranked(view))
    rows = []
    for item in items:
        comparison = item.comparison
        metric = comparison.metric(primary.name) if comparison else None
        if comparison is None or metric is None:
            continue
        rows.append((item, comparison, metric))
    return rows


def _against_base(
    rows: Sequence[tuple[TrialRecord | Combination, Comparison, MetricComparison]],
    primary: Metric,
) -> dict[str, Any]:
    labels = [_against_label(item, comparison) for item, comparison, _ in rows]
    metrics = [m for _, _, m in rows]
    comparisons = [c for _, c, _ in rows]
    layout = _layout("", primary.name, "", legend=True)
    layout["height"] = min(200 + 22 * len(rows), 4000)
    layout["yaxis"] = {"type": "category", "autorange": "reversed", "automargin": True}
    base = _baseline_trace(labels, metrics, primary.goal)
    return {"data": [base, _run_trace(labels, metrics, comparisons)], "layout": layout}


def _baseline_trace(
    labels: list[str], metrics: list[MetricComparison], goal: str
) -> dict[str, Any]:
    """Each baseline value, its tolerance a bar on the side that regresses."""
    tolerances = [parse_tolerance(m.tolerance or "0").amount(m.baseline) for m in metrics]
    bad_side, good_side = _TOLERANCE_SIDES[goal]
    return {
        "type": "scatter",
        "mode": "markers",
        "name": "baseline, tolerance on the side that regresses",
        "x": [m.baseline for m in metrics],
        "y": labels,
        "error_x": {
            "type": "data",
            "symmetric": False,
            bad_side: tolerances,
            good_side: [0] * len(metrics),
            "color": "#888",
        },
        "marker": {"symbol": "line-ns-open", "size": 14, "color": "#444"},
    }


def _run_trace(
    labels: list[str], metrics: list[MetricComparison], comparisons: list[Comparison]
) -> dict[str, Any]:
    """This run's values, coloured by their verdicts."""
    return {
        "type": "scatter",
        "mode": "markers",
        "name": "this run (red: regressed, green: improved)",
        "x": [_finite(m.value) for m in metrics],
        "y": labels,
        "text": [c.verdict.value for c in comparisons],
        "hovertemplate": "%{y}: %{x} (%{text})<extra></extra>",
        "marker": {
            "size": 10,
            "color": [_VERDICT_COLORS.get(c.verdict, "#1f77b4") for c in comparisons],
        },
    }


#: The error bar's side that regresses, and the other, by the metric's goal.
_TOLERANCE_SIDES = {"max": ("arrayminus", "array"), "min": ("array", "arrayminus")}


def _against_label(item: TrialRecord | Combination, comparison: Comparison) -> str:
    label = _e(table.cell_text(item.key.where) or item.key.group)
    return f"✗ {label}" if comparison.verdict is Verdict.REGRESSED else label


# --- compare ------------------------------------------------------------------------------


def _changes(changes: Changes, figures: _Figures) -> list[str]:
    out = ["<h2>Head against base</h2>"]
    if changes.table.summary != changes.verdict:  # the table's own line says it otherwise
        out.append(f'<p class="verdict">{_e(changes.verdict)}</p>')
    out += table.html_lines(changes.table)
    shifts = [s for s in changes.shifts if s.base or s.head]
    if shifts:
        out.append(f"<h3>{_e(changes.metric)}: base and head, mean ± std</h3>")
        div = figures.div(shift_figure(shifts, changes.metric), wide=True)
        out.append(f'<div class="figures">{div}</div>')
    return out


def shift_figure(shifts: Sequence[Shift], metric: str) -> dict[str, Any]:
    """Each combination's primary metric on the base and on the head, with
    their spread over seeds; a regression is red."""
    labels = [_e(f"✗ {s.label}" if s.verdict == "regressed" else s.label) for s in shifts]

    def side(name: str, summaries: Iterable[Summary | None], colors: Any) -> dict[str, Any]:
        values = list(summaries)
        return {
            "type": "scatter",
            "mode": "markers",
            "name": name,
            "x": [s.mean if s and s.n else None for s in values],
            "y": labels,
            "error_x": {"type": "data", "array": [s.std if s and s.n > 1 else 0 for s in values]},
            "marker": {"size": 10, "color": colors},
        }

    head_colors = [_VERDICT_COLORS.get(s.verdict, "#1f77b4") for s in shifts]
    layout = _layout("", metric, "", legend=True)
    layout["height"] = min(200 + 22 * len(shifts), 4000)
    layout["yaxis"] = {"type": "category", "autorange": "reversed", "automargin": True}
    data = [
        side("base", (s.base for s in shifts), "#888"),
        side("head", (s.head for s in shifts), head_colors),
    ]
    return {"data": data, "layout": layout}


# --- the parts -----------------------------------------------------------------------------


def _ranked(view: SweepView) -> Iterator[TrialRecord]:
    primary = _primary(view)
    return iter(table.rank(view.records, primary))


def _kind(outcome: Outcome) -> str:
    if outcome is Outcome.PRUNED:
        return "pruned"
    return "ok" if outcome.ok else "bad"


def _label(record: TrialRecord) -> str:
    # Plotly reads a trace's name and text as a subset of HTML: a value is data.
    return _e(table.cell_text(record.key.where) or record.nodeid)


def _finite(value: float | None) -> float | None:
    # Plotly reads None as a gap; NaN would be written as the string "nan".
    return value if value is not None and math.isfinite(value) else None


def _layout(title: str, x: str, y: str, legend: bool) -> dict[str, Any]:
    return {
        "title": {"text": _e(title)},
        "height": 360,
        "margin": {"l": 60, "r": 20, "t": 50 if title else 20, "b": 50},
        "xaxis": {"title": {"text": _e(x)}},
        "yaxis": {"title": {"text": _e(y)}},
        "showlegend": legend,
        "hovermode": "closest",
    }


def _e(text: str) -> str:
    return html.escape(text, quote=True)
