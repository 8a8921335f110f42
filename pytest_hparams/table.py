"""The sweep table: pure formatting of trial records into lines of text.

Shared by the terminal summary, the Markdown report and `merge`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_hparams.metrics import Metric
from pytest_hparams.records import Outcome, TrialRecord
from pytest_hparams.repeats import Combination, Summary, combine, repeated
from pytest_hparams.space import Value, format_value

Record = TrialRecord
#: By default a sweep's table shows every row up to this many trials; a larger
#: sweep shows its best DEFAULT_TOP rows and counts the rest.
ALL_ROWS_UP_TO = 20
DEFAULT_TOP = 10
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def columns(records: Sequence[Record], declared: Sequence[Metric]) -> list[Metric]:
    """The declared metrics, then undeclared returned keys in the order first seen."""
    out = list(declared)
    names = {m.name for m in out}
    for record in records:
        for key in record.metrics:
            if key not in names:
                names.add(key)
                out.append(Metric(key))
    return out


def shown_columns(records: Sequence[Record], declared: Sequence[Metric]) -> list[Metric]:
    """The columns of a table: a declared metric no trial returned (one that
    Keras writes, say) gets none, unless it is the primary one."""
    metrics = columns(records, declared)
    return [m for i, m in enumerate(metrics) if i == 0 or any(m.name in r.metrics for r in records)]


def rank(records: Sequence[Record], primary: Metric | None) -> list[Record]:
    """Passed trials best first by the primary metric, then the rest, failures
    last; ties by node id, so the order never depends on the order trials ran."""

    def key(record: Record) -> tuple[int, float, str]:
        if not record.outcome.ok:
            return (3 if record.outcome is Outcome.SKIPPED else 2, 0.0, record.nodeid)
        value = record.metrics.get(primary.name) if primary else None
        if value is None or not math.isfinite(value):
            return (1, 0.0, record.nodeid)
        assert primary is not None
        return (0, -value if primary.goal == "max" else value, record.nodeid)

    return sorted(records, key=key)


def best(ranked: Sequence[Record], primary: Metric | None) -> Record | None:
    """The best passed trial of a ranked list, or None if none has a finite value."""
    if ranked and ranked[0].outcome.ok and primary is not None:
        value = ranked[0].metrics.get(primary.name)
        if value is not None and math.isfinite(value):
            return ranked[0]
    return None


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


def counts(records: Sequence[Record]) -> str:
    tally: dict[Outcome, int] = {}
    for record in records:
        tally[record.outcome] = tally.get(record.outcome, 0) + 1
    parts = [f"{tally[o]} {o.value}" for o in Outcome if o in tally]
    noun = "trial" if len(records) == 1 else "trials"
    return f"{len(records)} {noun}: " + ", ".join(parts)


def format_table(
    records: Sequence[Record],
    hparam_names: Sequence[str],
    declared: Sequence[Metric],
    top: int | None = None,
    combos: Sequence[Combination] | None = None,
) -> list[str]:
    """Formats one sweep's trials as aligned text lines.

    Args:
      records: The sweep's trial records.
      hparam_names: The hparam columns, in declaration order.
      declared: The declared metrics; the first is the primary one.
      top: How many of the best rows to show (0: all). Failed trials beyond
        it are still shown, up to as many again; the rest are counted. None
        shows every row of a sweep of up to `ALL_ROWS_UP_TO` trials, and the
        best `DEFAULT_TOP` of a larger one.

    Returns:
      The lines, without trailing newlines.
    """
    if combos is not None or repeated(records):
        return format_combinations(combos or combine(records), hparam_names, declared, top)
    metrics = shown_columns(records, declared)
    primary = metrics[0] if metrics else None
    ranked = rank(records, primary)
    winner = best(ranked, primary)
    if top is None:
        top = 0 if len(ranked) <= ALL_ROWS_UP_TO else DEFAULT_TOP
    shown = ranked if top <= 0 else ranked[:top] + [r for r in ranked[top:] if r.outcome.bad][:top]
    has_case = any(r.key.case for r in records)
    compared = [r.comparison for r in records if r.comparison]
    with_base = {name for c in compared for name in c["metrics"]}

    header = ["", *hparam_names, *(["case"] if has_case else [])]
    for m in metrics:
        header.append(_metric_title(m, m is primary))
        if m.name in with_base:
            header.append("vs base")
    header += ["duration", "outcome", *(["baseline"] if compared else [])]
    rows = []
    for record in shown:
        row = [
            "*" if record is winner else "",
            *(cell_text(record.key.hparams.get(n, "")) for n in hparam_names),
            *([cell_text(record.key.case)] if has_case else []),
        ]
        for m in metrics:
            row.append(format_value_cell(record.metrics.get(m.name)))
            if m.name in with_base:
                row.append(delta_cell(record.comparison, m.name))
        row += [format_duration(record.duration), record.outcome.value]
        if compared:
            row.append(record.verdict)
        rows.append(row)
    lines = [_align(header, rows), *(_align(row, rows, header) for row in rows)]
    hidden = len(records) - len(shown)
    if hidden:
        lines.append(f"... {hidden} more not shown (--hparams-top 0 shows all)")
    lines.append(counts(records) + _best_sentence(winner, primary))
    return lines


def _align(cells: Sequence[str], rows: Sequence[Sequence[str]], header: Sequence[str] = ()) -> str:
    table = [header or cells, *rows]
    numeric = {0} | {
        i for i in range(1, len(cells)) if rows and all(_is_numeric(row[i]) for row in rows)
    }
    widths = [max(len(str(r[i])) for r in table) for i in range(len(cells))]
    return " ".join(
        str(c).rjust(w) if i in numeric and i > 0 else str(c).ljust(w)
        for i, (c, w) in enumerate(zip(cells, widths, strict=False))
    ).rstrip()


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


def mean_cell(summary: Summary) -> str:
    """`0.912 ± 0.004 (n=3)`; `-` without a value."""
    if summary.n == 0:
        return "-"
    return f"{summary.mean:.4g} ± {summary.std:.2g} (n={summary.n})"


def format_combinations(
    combos: Sequence[Combination],
    hparam_names: Sequence[str],
    declared: Sequence[Metric],
    top: int | None = None,
) -> list[str]:
    """A repeated sweep's table: one row per combination, its metrics as
    mean ± standard deviation over the repeats that passed, ranked by the
    primary metric's mean."""
    records = [r for c in combos for r in c.records]
    metrics = shown_columns(records, declared)
    primary = metrics[0] if metrics else None
    ranked = rank_combinations(combos, primary)
    winner = ranked[0] if ranked and primary and ranked[0].summary(primary.name).n else None
    if top is None:
        top = 0 if len(ranked) <= ALL_ROWS_UP_TO else DEFAULT_TOP
    shown = ranked if top <= 0 else ranked[:top]
    has_case = any(c.key.case for c in combos)
    compared = any(c.verdict for c in combos)
    header = ["", *hparam_names, *(["case"] if has_case else [])]
    header += [_metric_title(m, m is primary) for m in metrics]
    header += ["duration", "outcome", *(["baseline"] if compared else [])]
    rows = []
    for combo in shown:
        row = [
            "*" if combo is winner else "",
            *(cell_text(combo.key.hparams.get(n, "")) for n in hparam_names),
            *([cell_text(combo.key.case)] if has_case else []),
        ]
        row += [mean_cell(combo.summary(m.name)) for m in metrics]
        row += [format_duration(combo.duration), combo.outcomes()]
        if compared:
            row.append(combo.verdict)
        rows.append(row)
    lines = [_align(header, rows), *(_align(row, rows, header) for row in rows)]
    if len(ranked) > len(shown):
        lines.append(f"... {len(ranked) - len(shown)} more not shown (--hparams-top 0 shows all)")
    sentence = ""
    if winner is not None and primary is not None:
        value = mean_cell(winner.summary(primary.name))
        where = winner.combo.removeprefix(winner.key.test)
        sentence = f"; best {primary.name}={value} at {cell_text(where)}"
    noun = "combination" if len(combos) == 1 else "combinations"
    return [*lines, f"{len(combos)} {noun}, {counts(records)}{sentence}"]


def format_best_line(
    test: str,
    records: Sequence[Record],
    declared: Sequence[Metric],
    combos: Sequence[Combination] | None = None,
) -> str:
    """The `-q` form: one line naming the sweep's best trial."""
    if combos is not None or repeated(records):
        return f"{test}: {format_combinations(combos or combine(records), [], declared)[-1]}"
    metrics = columns(records, declared)
    primary = metrics[0] if metrics else None
    winner = best(rank(records, primary), primary)
    return f"{test}: {counts(records)}{_best_sentence(winner, primary)}"


def format_verdict(items: Sequence[Record | Combination], not_run: Sequence[str]) -> str:
    """The sweep's one-line baseline verdict: regressed N, improved N, new N, ok N
    (of its trials, or of its combinations when they repeat)."""
    tally = {"regressed": 0, "improved": 0, "new": 0, "ok": 0}
    for item in items:
        verdict = item.verdict
        if verdict in tally:
            tally[verdict] += 1
    text = "baseline: " + ", ".join(f"{n} {v}" for v, n in tally.items())
    if not_run:
        listed = ", ".join(not_run[:3]) + (", ..." if len(not_run) > 3 else "")
        text += f"; {len(not_run)} not run ({listed})"
    return text


def delta_cell(comparison: Mapping[str, Any] | None, name: str) -> str:
    """The baseline value and the change from it: `0.87 -0.03 worse`, `0.87 same`."""
    if not comparison:
        return ""
    if comparison["verdict"] == "new":
        return "new"
    entry = comparison["metrics"].get(name)
    if entry is None:
        return "-"
    base = format_value_cell(entry["baseline"])
    if entry["delta"] is None:
        return f"{base} worse" if entry["verdict"] == "regressed" else base
    if same(entry["delta"], entry["baseline"]):
        return "same"
    word = {"regressed": " worse", "improved": " better"}.get(entry["verdict"], "")
    return f"{base} {entry['delta']:+.3g}{word}"


def same(delta: float, base: float) -> bool:
    """Whether a change is rounding, not a move: TensorBoard keeps float32,
    so a value read back from a logdir differs from a float64 in the 8th digit."""
    return abs(delta) <= 1e-6 * max(1.0, abs(base))


def cell_text(value: Value) -> str:
    """A value as one printable line: control characters shown as escapes."""
    text = format_value(value)
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def _best_sentence(winner: Record | None, primary: Metric | None) -> str:
    if winner is None or primary is None:
        return ""
    value = format_value_cell(winner.metrics[primary.name])
    return f"; best {primary.name}={value} at [{cell_text(winner.key.params)}]"


def _metric_title(metric: Metric, primary: bool) -> str:
    return f"{metric.name} ({metric.goal})" if primary else metric.name


def _is_numeric(text: str) -> bool:
    try:
        float(text.rstrip("!s"))
    except ValueError:
        return text == "-"
    return True
