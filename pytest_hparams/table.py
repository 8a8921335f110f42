"""The sweep table: one model (`Table`) built from a sweep's records, and
rendered as aligned text (the terminal, `merge`), as Markdown (the
`--hparams-markdown` summary) or as HTML (the HTML report, pytest-html's). Pure.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from pytest_hparams.metrics import Metric
from pytest_hparams.records import Outcome, SweepDefinition, TrialRecord
from pytest_hparams.repeats import Combination, combine, repeated
from pytest_hparams.sweep import Value, format_value
from pytest_hparams.verdicts import Comparison, MetricComparison, Summary, Verdict

#: By default a sweep's table shows every row up to this many trials; a larger
#: sweep shows its best DEFAULT_TOP rows and counts the rest.
ALL_ROWS_UP_TO = 20
DEFAULT_TOP = 10
_T = TypeVar("_T")
# C0 and C1 controls, and the bidirectional formatting characters, which
# would reorder the rest of a terminal line (a value is data, never layout).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


@dataclass
class Table:
    """One sweep's table, before it is rendered.

    Attributes:
      rows: The cells of each shown row, best first.
      marks: Each row's mark: "best", "regressed", "improved" or "".
      numeric: The columns aligned to the right.
      hidden: How many rows are not shown (`--hparams-top`).
      summary: The counts and the best trial, one line.
      verdict: The baseline's verdict on the sweep, one line, when gated.
    """

    test: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    marks: list[str] = field(default_factory=list)
    numeric: set[int] = field(default_factory=set)
    hidden: int = 0
    summary: str = ""
    verdict: str = ""


@dataclass(frozen=True)
class _Columns:
    """What a sweep's rows hold, decided once from all its records."""

    names: Sequence[str]
    has_case: bool
    metrics: list[Metric]
    with_base: set[str]  # the metrics with a "vs base" column
    comparisons: list[Comparison]

    @property
    def primary(self) -> Metric | None:
        return self.metrics[0] if self.metrics else None

    def header(self) -> list[str]:
        header = ["", *self.names, *(["case"] if self.has_case else []), *self._metric_headers()]
        return [*header, "duration", "outcome", *(["baseline"] if self.comparisons else [])]

    def _metric_headers(self) -> list[str]:
        """Each metric's heading (the primary's with its goal), and "vs base"
        after those with a column of their change."""
        header = []
        for m in self.metrics:
            header.append(f"{m.name} ({m.goal})" if m is self.primary else m.name)
            if m.name in self.with_base:
                header.append("vs base")
        return header

    def key_cells(self, hparams: Mapping[str, Value], case: str) -> list[str]:
        cells = ["", *(cell_text(hparams.get(n, "")) for n in self.names)]
        return [*cells, cell_text(case)] if self.has_case else cells


def build(
    definition: SweepDefinition,
    records: Sequence[TrialRecord],
    top: int | None = None,
    combos: Sequence[Combination] | None = None,
    gated: bool = False,
    not_run: Sequence[str] = (),
) -> Table:
    """The table of one sweep: a row per trial, or per combination when it repeats.

    Args:
      top: How many of the best rows to show (0: all). Failed trials beyond
        it are still shown, up to as many again; the rest are counted. None
        shows every row of a sweep of up to `ALL_ROWS_UP_TO` rows, and the
        best `DEFAULT_TOP` of a larger one.
      combos: The combinations the gates compared, when the sweep repeats.
      gated: Whether a baseline was given: the verdict line is added.
      not_run: The baseline's entries of this sweep that did not run.
    """
    if combos is None and repeated(records):
        combos = combine(records)
    items, records = _items(records, combos)
    columns = _columns(definition, records, items, per_metric_base=combos is None)
    table = Table(definition.test, columns.header())
    if combos is not None:
        _fill_with_combinations(table, columns, combos, top)
    else:
        _fill_with_trials(table, columns, records, top)
    table.numeric = _numeric_columns(table)
    if gated:
        table.verdict = _gated_verdict(definition, items, columns.comparisons, not_run)
    return table


def _items(
    records: Sequence[TrialRecord], combos: Sequence[Combination] | None
) -> tuple[list[TrialRecord] | list[Combination], Sequence[TrialRecord]]:
    """What the table's rows show, its combinations or else its trials, and
    every trial among them."""
    if combos is not None:
        return list(combos), [r for c in combos for r in c.records]
    return list(records), records


def _gated_verdict(
    definition: SweepDefinition,
    items: Sequence[TrialRecord] | Sequence[Combination],
    comparisons: list[Comparison],
    not_run: Sequence[str],
) -> str:
    """The verdict line of a sweep run with a baseline."""
    if not definition.asked:
        return format_verdict(items, not_run)
    # A search's trials are compared only as its best (--hparams-gate best):
    # per-trial entries held other hparams, and a note says so.
    return format_verdict(items, ()) if comparisons else ""


def _columns(
    definition: SweepDefinition,
    records: Sequence[TrialRecord],
    items: Sequence[TrialRecord | Combination],
    per_metric_base: bool,
) -> _Columns:
    comparisons = [c for c in (_comparison(i) for i in items) if c is not None]
    with_base = {m.name for c in comparisons for m in c.metrics} if per_metric_base else set()
    return _Columns(
        names=definition.hparam_names,
        has_case=any(r.key.case for r in records),
        metrics=shown_columns(records, definition.metrics),
        with_base=with_base,
        comparisons=comparisons,
    )


def _numeric_columns(table: Table) -> set[int]:
    """The columns to align right: those whose every shown cell is a number."""
    if not table.rows:
        return set()
    return {i for i in range(1, len(table.header)) if all(_is_numeric(r[i]) for r in table.rows)}


def _fill_with_combinations(
    table: Table, columns: _Columns, combos: Sequence[Combination], top: int | None
) -> None:
    """A row per combination: each metric's mean over its repeats."""
    primary = columns.primary
    ranked = rank_combinations(combos, primary)
    winner = ranked[0] if ranked and _has(ranked[0], primary) else None
    bad = [c for c in ranked if c.verdict is Verdict.REGRESSED or _any_bad(c.records)]
    shown = _top(ranked, top, bad)
    for combo in shown:
        row = _combination_row(columns, combo)
        _add(table, row, combo.comparison, columns.comparisons, combo is winner, combo.verdict)
    table.hidden = len(ranked) - len(shown)
    table.summary = _combinations_summary(combos, winner, primary)


def _combination_row(columns: _Columns, combo: Combination) -> list[str]:
    """A combination's cells up to its verdict: its values, each metric's mean, its outcomes."""
    row = columns.key_cells(combo.key.hparams, combo.key.case)
    row += [_mean_with_lost(combo, m.name) for m in columns.metrics]
    return [*row, format_duration(combo.duration), combo.outcomes()]


def _combinations_summary(
    combos: Sequence[Combination], winner: Combination | None, primary: Metric | None
) -> str:
    """The summary line: how many combinations, their trials' outcomes, and the best."""
    best = ""
    if winner is not None and primary is not None:
        value = mean_cell(winner.summary(primary.name))
        best = f"; best {primary.name}={value} at {cell_text(winner.key.where)}"
    noun = "combination" if len(combos) == 1 else "combinations"
    records = [r for c in combos for r in c.records]
    return f"{len(combos)} {noun}, {counts(records)}{best}"


def _mean_with_lost(combo: Combination, name: str) -> str:
    """A metric's mean over the repeats, and how many of them lost it (NaN)."""
    lost = combo.lost(name)
    cell = mean_cell(combo.summary(name))
    return f"{cell} +{lost} nan!" if lost else cell


def _fill_with_trials(
    table: Table, columns: _Columns, records: Sequence[TrialRecord], top: int | None
) -> None:
    """A row per trial, with its change against the baseline per metric."""
    ranked = rank(records, columns.primary)
    winner = best_of(ranked, columns.primary)
    shown = _top(ranked, top, [r for r in ranked if r.outcome.bad])
    for record in shown:
        row = _trial_row(columns, record)
        _add(table, row, record.comparison, columns.comparisons, record is winner, record.verdict)
    table.hidden = len(records) - len(shown)
    table.summary = counts(records) + _best_sentence(winner, columns.primary)


def _trial_row(columns: _Columns, record: TrialRecord) -> list[str]:
    """A trial's cells up to its verdict: its values, each metric with its
    change where shown, its duration and outcome."""
    row = columns.key_cells(record.key.hparams, record.key.case)
    for m in columns.metrics:
        row.append(format_value_cell(record.metrics.get(m.name)))
        if m.name in columns.with_base:
            row.append(delta_cell(record.comparison, m.name))
    return [*row, format_duration(record.duration), _outcome_cell(record)]


def _outcome_cell(record: TrialRecord) -> str:
    if record.outcome is Outcome.PRUNED and record.pruned_at is not None:
        return f"pruned at {record.pruned_at}"
    return record.outcome.value


def _any_bad(records: Sequence[TrialRecord]) -> bool:
    return any(r.outcome.bad for r in records)


def _comparison(item: TrialRecord | Combination) -> Comparison | None:
    return item.comparison


def _has(combo: Combination, primary: Metric | None) -> bool:
    return primary is not None and combo.summary(primary.name).n > 0


def _top(ranked: list[_T], top: int | None, bad: list[_T]) -> list[_T]:
    if top is None:
        top = 0 if len(ranked) <= ALL_ROWS_UP_TO else DEFAULT_TOP
    if top <= 0:
        return ranked
    shown = ranked[:top]
    return shown + [r for r in bad if r not in shown][:top]


def _add(
    table: Table,
    row: list[str],
    comparison: Comparison | None,
    comparisons: list[Comparison],
    winner: bool,
    verdict: Verdict | None,
) -> None:
    if comparisons:
        row.append(_verdict_cell(comparison, verdict))
    if winner:
        row[0] = "*"
    table.rows.append(row)
    mark = "best" if winner else ""
    if verdict in (Verdict.REGRESSED, Verdict.IMPROVED):
        mark = verdict.value
    table.marks.append(mark)


def _verdict_cell(comparison: Comparison | None, verdict: Verdict | None) -> str:
    if verdict is None:
        return ""
    if comparison is not None and comparison.against is not None:
        return f"{verdict.value} vs best"
    if comparison is not None and not comparison.gating:
        return f"{verdict.value} (shown)"
    return verdict.value


# --- rendering ------------------------------------------------------------------------


def text_lines(table: Table, top_option: str = "--hparams-top") -> list[tuple[str, str]]:
    """The table as aligned lines of text, each with its row's mark;
    `top_option`: the option that shows every row, as the command reading them spells it."""
    widths = [max(len(r[i]) for r in [table.header, *table.rows]) for i in range(len(table.header))]

    def line(cells: Sequence[str]) -> str:
        return " ".join(
            c.rjust(w) if i in table.numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [(line(table.header), "")]
    out += [(line(row), mark) for row, mark in zip(table.rows, table.marks, strict=True)]
    if table.hidden:
        out.append((f"... {table.hidden} more not shown ({top_option} 0 shows all)", ""))
    out.append((table.summary, ""))
    if table.verdict:
        out.append((table.verdict, ""))
    return out


def markdown_lines(table: Table, top_option: str = "--hparams-top") -> list[str]:
    """The table as GitHub-flavoured Markdown: the best row 🏆, regressions ❌."""
    out = [f"### `{md_text(table.test)}`", "", md_text(table.summary), "", *_markdown_head(table)]
    gated = table.header[-1] == "baseline"
    out += [
        _markdown_row(row, mark, gated) for row, mark in zip(table.rows, table.marks, strict=True)
    ]
    if table.hidden:
        out.append(f"\n{table.hidden} more not shown ({top_option} 0 shows all)")
    if table.verdict:
        out += ["", md_text(table.verdict)]
    out.append("")
    return out


def _markdown_head(table: Table) -> list[str]:
    """The Markdown table's header row and its delimiter row, numbers right-aligned."""
    return [
        "| " + " | ".join(md_text(h) for h in table.header) + " |",
        "|"
        + "|".join("---:" if i in table.numeric else "---" for i in range(len(table.header)))
        + "|",
    ]


def _markdown_row(row: list[str], mark: str, gated: bool) -> str:
    """One row in Markdown: the best row keeps its 🏆 when it improved; a
    regression's ❌ comes first, and its verdict is bold."""
    cells = [md_text(c) for c in row]
    cells[0] = "❌" if mark == "regressed" else "🏆" if row[0] == "*" else ""
    if mark == "regressed" and gated:
        cells[-1] = f"**{cells[-1]}**"
    return "| " + " | ".join(cells) + " |"


def html_lines(model: Table) -> list[str]:
    """A table model as an HTML table, its rows marked as the terminal marks them."""
    head = "".join(f"<th>{_html(h)}</th>" for h in model.header)
    rows = [
        f'<tr class="{mark}">{_html_cells(row, model.numeric)}</tr>'
        for row, mark in zip(model.rows, model.marks, strict=True)
    ]
    out = [f'<p class="note">{_html(model.summary)}</p>']
    out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
    if model.hidden:
        out.append(f'<p class="note">{model.hidden} more not shown</p>')
    if model.verdict:
        out.append(f'<p class="verdict">{_html(model.verdict)}</p>')
    return out


def _html_cells(row: list[str], numeric: set[int]) -> str:
    return "".join(
        f'<td class="num">{_html(c)}</td>' if i in numeric else f"<td>{_html(c)}</td>"
        for i, c in enumerate(row)
    )


def _html(text: str) -> str:
    return html.escape(text, quote=True)


def md_text(text: str) -> str:
    """`text` as one Markdown table cell or line."""
    # A value is data, never markup: HTML is escaped, and a pipe or a line
    # break would end the row.
    return html.escape(text, quote=False).replace("|", "\\|").replace("`", "\\`")


# --- the parts ----------------------------------------------------------------------------


def columns(records: Sequence[TrialRecord], declared: Sequence[Metric]) -> list[Metric]:
    """The declared metrics, then undeclared returned keys in the order first seen."""
    out = list(declared)
    names = {m.name for m in out}
    for record in records:
        for key in record.metrics:
            if key not in names:
                names.add(key)
                out.append(Metric(key))
    return out


def shown_columns(records: Sequence[TrialRecord], declared: Sequence[Metric]) -> list[Metric]:
    """The columns of a table: a declared metric no trial returned (one that
    Keras writes, say) gets none, unless it is the primary one."""
    metrics = columns(records, declared)
    return [m for i, m in enumerate(metrics) if i == 0 or any(m.name in r.metrics for r in records)]


def rank(records: Sequence[TrialRecord], primary: Metric | None) -> list[TrialRecord]:
    """Passed trials best first by the primary metric, then the rest, failures
    last; ties by hparam values, so the order never depends on the order trials ran."""

    def key(record: TrialRecord) -> tuple[int, float, tuple[tuple[int, float, str], ...], str]:
        # Ties by the hparams' values, numbers as numbers (hidden:32 before
        # hidden:128), then by node id.
        values = tuple(
            (0, float(v), "") if isinstance(v, (int, float)) else (1, 0.0, str(v))
            for v in record.key.hparams.values()
        )
        if not record.outcome.ok:
            group = 3 if record.outcome is Outcome.SKIPPED else 2
            return (group, 0.0, values, record.nodeid)
        value = record.metrics.get(primary.name) if primary else None
        if value is None or not math.isfinite(value):
            return (1, 0.0, values, record.nodeid)
        assert primary is not None
        return (0, -value if primary.goal == "max" else value, values, record.nodeid)

    return sorted(records, key=key)


def best_of(ranked: Sequence[TrialRecord], primary: Metric | None) -> TrialRecord | None:
    """The best passed trial of a ranked list, or None if none has a finite value."""
    if ranked and ranked[0].outcome.ok and primary is not None:
        value = ranked[0].metrics.get(primary.name)
        if value is not None and math.isfinite(value):
            return ranked[0]
    return None


def rank_combinations(combos: Sequence[Combination], primary: Metric | None) -> list[Combination]:
    """Combinations best first by the primary metric's mean over their
    passed repeats; ties by name; those with no passed repeat last."""

    def key(combo: Combination) -> tuple[int, float, str]:
        mean = combo.summary(primary.name).mean if primary else math.nan
        if not math.isfinite(mean):
            return (1, 0.0, combo.combo)
        assert primary is not None
        return (0, -mean if primary.goal == "max" else mean, combo.combo)

    return sorted(combos, key=key)


def format_value_cell(value: float | None) -> str:
    if value is None:
        return "-"
    if not math.isfinite(value):
        return f"{value}!"  # nan!, inf!, -inf!: flagged, never ranked best
    return f"{value:.4g}"


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s"


def mean_cell(summary: Summary) -> str:
    """`0.912 ± 0.004 (n=3)`; `-` without a value."""
    return "-" if summary.n == 0 else summary.text(std_digits=2)


def counts(records: Sequence[TrialRecord]) -> str:
    tally: dict[Outcome, int] = {}
    for record in records:
        tally[record.outcome] = tally.get(record.outcome, 0) + 1
    parts = [f"{tally[o]} {o.value}" for o in Outcome if o in tally]
    noun = "trial" if len(records) == 1 else "trials"
    return f"{len(records)} {noun}: " + ", ".join(parts)


def format_verdict(
    items: Sequence[TrialRecord] | Sequence[Combination], not_run: Sequence[str]
) -> str:
    """The sweep's one-line baseline verdict: regressed N, improved N, new N, ok N
    (of its trials, or of its combinations when they repeat).

    Under `--hparams-gate best` the best's verdict against the baseline's best
    comes first; the others' are counted apart, as they are shown, not gated.
    """
    gated, shown, best = _count_verdicts(items)
    text = "baseline: " + _tally(gated) if best is None else _best_verdict(*best, shown)
    if not_run:
        listed = ", ".join(not_run[:3]) + (", ..." if len(not_run) > 3 else "")
        text += f"; {len(not_run)} not run ({listed})"
    return text


def _count_verdicts(
    items: Sequence[TrialRecord] | Sequence[Combination],
) -> tuple[dict[Verdict, int], dict[Verdict, int], tuple[str, Comparison] | None]:
    """The gated verdicts counted, the shown ones counted apart, and under
    `--hparams-gate best` where the best is and its comparison."""
    gated = {v: 0 for v in _TALLIED}
    shown = dict(gated)
    best = None
    for item in items:
        comparison = item.comparison
        if comparison is not None and comparison.against is not None:
            best = (item.key.where, comparison)
        elif item.verdict is not None:
            (gated if comparison is None or comparison.gating else shown)[item.verdict] += 1
    return gated, shown, best


#: The verdicts a sweep's line counts, in its order.
_TALLIED = (Verdict.REGRESSED, Verdict.IMPROVED, Verdict.NEW, Verdict.OK, Verdict.PRUNED)


def _best_verdict(where: str, comparison: Comparison, shown: dict[Verdict, int]) -> str:
    """`--hparams-gate best`: the best's verdict against the baseline's best,
    then the others' shown against their own entries."""
    text = f"baseline (gate best): the best, {where}, {comparison.verdict.value} against "
    text += f"the baseline's best {comparison.against}"
    if any(shown.values()):
        text += "; the others against their own entries (shown, not gated): "
        text += _tally(shown)
    return text


def _tally(tally: dict[Verdict, int]) -> str:
    # "N pruned" only where a trial was: most sweeps prune nothing.
    return ", ".join(f"{n} {v.value}" for v, n in tally.items() if n or v is not Verdict.PRUNED)


def delta_cell(comparison: Comparison | None, name: str) -> str:
    """The baseline value and the change from it: `0.87 -0.03 worse`, `0.87 same`."""
    if comparison is None:
        return ""
    if comparison.verdict is Verdict.NEW:
        return "new"
    metric = comparison.metric(name)
    return "-" if metric is None else _change_cell(metric)


def _change_cell(metric: MetricComparison) -> str:
    """A compared metric's baseline value and its change: `0.87 -0.03 worse`, `0.87 same`."""
    base = format_value_cell(metric.baseline)
    delta = metric.delta
    if delta is None:
        return f"{base} worse" if metric.verdict is Verdict.REGRESSED else base
    if same(delta, metric.baseline):
        return "same"
    word = {Verdict.REGRESSED: " worse", Verdict.IMPROVED: " better"}.get(metric.verdict, "")
    return f"{base} {delta:+.3g}{word}"


def same(delta: float, base: float) -> bool:
    """Whether a change is rounding, not a move: TensorBoard keeps float32,
    so a value read back from a logdir differs from a float64 in the 8th digit."""
    return abs(delta) <= 1e-6 * max(1.0, abs(base))


def cell_text(value: Value) -> str:
    """A value as one printable line: control characters shown as escapes."""
    text = format_value(value)
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def _best_sentence(winner: TrialRecord | None, primary: Metric | None) -> str:
    if winner is None or primary is None:
        return ""
    value = format_value_cell(winner.metrics[primary.name])
    return f"; best {primary.name}={value} at {cell_text(winner.key.where)}"


def _is_numeric(text: str) -> bool:
    try:
        float(text.rstrip("!s"))
    except ValueError:
        return text == "-"
    return True
