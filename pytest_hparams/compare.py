"""`python -m pytest_hparams compare BASE.json HEAD.json`: a pull request's
sweep (HEAD) against the main branch's last one (BASE), per combination.

The base's records become baseline entries as `--hparams-save-baseline`
would write them, and the head is judged on them by the gates' own
functions at the same tolerance options: a single trial by its tolerance,
repeats by the Welch's t-test of the baseline gate, with its interval. Exit
1 when a metric regressed beyond tolerance, 0 otherwise, 2 on bad input.
"""

from __future__ import annotations

import argparse
import enum
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytest_hparams import baseline, export, gates, table
from pytest_hparams.merge import MergeError, load_reports
from pytest_hparams.metrics import Metric
from pytest_hparams.options import alpha_spec, tolerance_spec
from pytest_hparams.records import Outcome, SweepDefinition, TrialRecord
from pytest_hparams.repeats import Combination, combine
from pytest_hparams.reporter import Reporter
from pytest_hparams.settings import Settings, check_output, missing_plotly
from pytest_hparams.verdicts import Comparison, MetricComparison, Summary, Verdict

#: How the comparison's Markdown begins, by which a rerun knows it may replace it.
MARKDOWN_TITLE = "### pytest-hparams: head against base"


class Status(enum.StrEnum):
    """What became of a combination between the base and the head, worst first."""

    REGRESSED = "regressed"
    FAILED = "failed"  # no repeat or trial of the head ran to the end, and no metric to judge
    IMPROVED = "improved"
    ADDED = "added"
    REMOVED = "removed"
    NEW = "new"  # on both sides, but the base holds no value to compare with
    PRUNED = "pruned"
    OK = "ok"


@dataclass
class Change:
    """One combination (or single trial) on both sides.

    Attributes:
      intervals: By metric, the Welch interval of head minus base, where
        both sides hold two or more repeats.
    """

    sweep: str
    combo: str
    where: str
    status: Status
    head: Combination | None = None
    base: Combination | None = None
    comparison: Comparison | None = None
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass
class Result:
    changes: list[Change]
    primary: dict[str, Metric]  # each sweep's primary metric
    alpha: float = 0.05

    @property
    def regressed(self) -> list[Change]:
        return [c for c in self.changes if c.status is Status.REGRESSED]

    def verdict(self) -> str:
        """One line: whether the head regressed, and the tally."""
        tally = Counter(c.status for c in self.changes)
        counts = ", ".join(f"{tally[s]} {s.value}" for s in Status if tally[s])
        total = f"{len(self.changes)} combinations" if self.changes else "no combination"
        if tally[Status.REGRESSED]:
            return f"❌ {tally[Status.REGRESSED]} regressed beyond tolerance: {counts}"
        return f"✅ no regression beyond tolerance in {total}" + (f": {counts}" if counts else "")


def compare(base: Reporter, head: Reporter, tolerances: gates.Tolerances, alpha: float) -> Result:
    """Judges every combination of the head on the base's records.

    Raises:
      ModuleNotFoundError: If both sides repeat and scipy is not installed.
    """
    base_records = base.all_records
    for record in base_records:
        record.comparison = None  # the base's own verdicts do not keep its values out
    entries, _ = baseline.updated({}, base_records)
    base_groups = _groups(base)
    changes = _head_changes(head, entries, base_groups, tolerances, alpha)
    changes += [
        Change(combo.key.test, group, table.cell_text(combo.key.where), Status.REMOVED, base=combo)
        for group, combo in base_groups.items()
    ]
    order = list(Status)
    changes.sort(key=lambda c: (order.index(c.status), c.sweep, c.combo))
    return Result(changes, _primary_metrics(head, base, base_groups.values()), alpha)


def _head_changes(
    head: Reporter,
    entries: Mapping[str, baseline.Entry],
    base_groups: dict[str, Combination],
    tolerances: gates.Tolerances,
    alpha: float,
) -> list[Change]:
    """Each combination of the head, judged on the base's `entries`, with its
    base combination taken out of `base_groups` (what is left was removed)."""
    changes: list[Change] = []
    for test, by_id in head.records.items():
        definition = head.definitions[test]
        for combo in combine(by_id.values()):
            change = _judge(combo, entries.get(combo.combo), definition, tolerances, alpha)
            change.base = base_groups.pop(combo.combo, None)
            if change.base is None:
                change.status = Status.ADDED
            changes.append(change)
    return changes


def _primary_metrics(
    head: Reporter, base: Reporter, removed: Iterable[Combination]
) -> dict[str, Metric]:
    """Each sweep's primary metric, the first of its table's columns: as the
    head's trials give it, or, for a sweep the head does not give one, as
    its removed combinations do."""
    sides: list[tuple[str, Sequence[TrialRecord], Mapping[str, SweepDefinition]]] = [
        (test, list(by_id.values()), head.definitions) for test, by_id in head.records.items()
    ]
    sides += [(combo.key.test, combo.records, base.definitions) for combo in removed]
    primary: dict[str, Metric] = {}
    for test, records, definitions in sides:
        if test not in primary:
            columns = table.columns(records, definitions[test].metrics)
            if columns:
                primary[test] = columns[0]
    return primary


def _groups(side: Reporter) -> dict[str, Combination]:
    # Repeats grouped by combination; a single trial is a combination of its own.
    return {c.combo: c for by_id in side.records.values() for c in combine(by_id.values())}


def _judge(
    combo: Combination,
    entry: baseline.Entry | None,
    definition: SweepDefinition,
    tolerances: gates.Tolerances,
    alpha: float,
) -> Change:
    key = combo.key
    change = Change(key.test, combo.combo, table.cell_text(key.where), Status.OK, head=combo)
    metrics = list(definition.metrics)
    if key.repeat is not None:
        comparison = gates.compare_repeats(combo, entry, metrics, tolerances, alpha)
    else:
        (record,) = combo.records
        if record.outcome in _UNJUDGED:
            change.status = _UNJUDGED[record.outcome]
            return change
        # A trial that failed is judged on what it returned: a metric it
        # never returned is missing, a regression.
        comparison = gates.compare_trial(record.metrics, entry, metrics, tolerances)
    if comparison is None:
        pruned = all(r.outcome is Outcome.PRUNED for r in combo.records)
        change.status = Status.PRUNED if pruned else Status.FAILED
        return change
    change.comparison = comparison
    change.status = _STATUS.get(comparison.verdict, Status.OK)
    change.intervals = _intervals(comparison, alpha)
    return change


#: A single trial's status where it returned nothing to judge.
_UNJUDGED = {Outcome.PRUNED: Status.PRUNED, Outcome.SKIPPED: Status.NEW}
#: A combination's status by its verdict (any other verdict is OK).
_STATUS = {
    Verdict.REGRESSED: Status.REGRESSED,
    Verdict.IMPROVED: Status.IMPROVED,
    Verdict.NEW: Status.NEW,
}


def _intervals(comparison: Comparison, alpha: float) -> dict[str, tuple[float, float]]:
    """By metric, the Welch interval of head minus base, where both sides
    hold two or more repeats."""
    return {
        m.name: gates.welch_interval(m.run.values, m.base.values, alpha)
        for m in comparison.metrics
        if m.run is not None and m.base is not None and m.run.n > 1 and m.base.n > 1
    }


# --- rendering -----------------------------------------------------------------------------

HEADER = ["", "sweep", "combination", "verdict", "metric", "base", "head", "change", "tolerance"]


def _welch_header(alpha: float) -> list[str]:
    # The interval whose bounds are the gate's one-sided test at alpha.
    return [f"Welch {1 - 2 * alpha:.0%} interval", "p"]


def rows(result: Result, changes: Sequence[Change]) -> list[list[str]]:
    """A row per combination and metric, the primary first: its verdict, both
    sides, the change, and, over repeats, the Welch interval of the change
    and the test's p-value; a regressed metric's row is marked."""
    welch = any(c.intervals for c in result.changes)
    return [
        row
        for change in changes
        for row in _change_rows(change, result.primary.get(change.sweep), welch)
    ]


def _change_rows(change: Change, primary: Metric | None, welch: bool) -> list[list[str]]:
    """One combination's rows: a row per metric judged, or, with none, one
    row of both sides' primary metric."""
    mark = "✗" if change.status is Status.REGRESSED else ""
    head = [mark, change.sweep, change.where or change.combo, change.status.value]
    metrics = _primary_first(change.comparison, primary)
    if not metrics:
        return [_sides_row(change, head, primary, welch)]
    return [
        _metric_row(change, metric, head[1:3] if i == 0 else ["", ""], welch)
        for i, metric in enumerate(metrics)
    ]


def _sides_row(change: Change, head: list[str], primary: Metric | None, welch: bool) -> list[str]:
    """The row, after its `head` cells, of a combination no metric was judged
    on: both sides' primary metric, blank Welch cells where the table has them."""
    cells = _sides(change, primary.name if primary else "")
    return [*head, *cells, *(["", ""] if welch else [])]


def _primary_first(comparison: Comparison | None, primary: Metric | None) -> list[MetricComparison]:
    """The metrics a comparison judged, the primary first."""
    if comparison is None:
        return []
    return sorted(comparison.metrics, key=lambda m: primary is None or m.name != primary.name)


def _metric_row(
    change: Change, metric: MetricComparison, where: list[str], welch: bool
) -> list[str]:
    """A metric's row, marked by its own verdict: a combination regresses by
    any one of them."""
    mark = "✗" if metric.verdict is Verdict.REGRESSED else ""
    cells = [mark, *where, metric.verdict.value, *_metric_cells(metric)]
    return cells + (_welch_cells(change.intervals.get(metric.name), metric.p) if welch else [])


def _welch_cells(interval: tuple[float, float] | None, p: float | None) -> list[str]:
    """The Welch interval and p-value cells, blank where the test did not run."""
    return [
        f"[{interval[0]:+.3g}, {interval[1]:+.3g}]" if interval else "",
        f"{p:.3g}" if p is not None else "",
    ]


def _metric_cells(metric: MetricComparison) -> list[str]:
    base = _summary(metric.base) if metric.base else table.format_value_cell(metric.baseline)
    head = _summary(metric.run) if metric.run else table.format_value_cell(metric.value)
    delta = metric.delta
    change = "-" if delta is None else f"{delta:+.4g}"
    return [metric.name, base, head, change, metric.tolerance]


def _sides(change: Change, name: str) -> list[str]:
    def side(combo: Combination | None) -> str:
        if combo is None:
            return "-"
        summary = combo.summary(name)
        if not summary.n:
            return combo.outcomes()
        return (
            _summary(summary) if len(combo.records) > 1 else table.format_value_cell(summary.mean)
        )

    return [name or "-", side(change.base), side(change.head), "", ""]


def _summary(summary: Summary) -> str:
    return table.mean_cell(summary)


def text_lines(result: Result, base: Path, head: Path) -> list[str]:
    """The terminal's account: a verdict, then a row per combination and metric."""
    model = table_model(result, result.changes, f"{base} -> {head}")
    return [line for line, _ in table.text_lines(model)]


def table_model(result: Result, changes: Sequence[Change], title: str) -> table.Table:
    """The changes as the sweep tables' model, for text, Markdown and HTML."""
    welch = any(c.intervals for c in result.changes)
    model = table.Table(title, [*HEADER, *(_welch_header(result.alpha) if welch else [])])
    for row in rows(result, changes):
        model.rows.append(row)
        model.marks.append("regressed" if row[0] == "✗" else "")
    model.summary = result.verdict()
    return model


def markdown(result: Result) -> str:
    """A PR comment or job summary: the verdict, the regressions, the rest collapsed."""
    out = [MARKDOWN_TITLE, "", f"**{result.verdict()}**", ""]
    regressed = result.regressed
    rest = [c for c in result.changes if c.status is not Status.REGRESSED]
    if regressed:
        out += ["#### Regressions", "", *_markdown_table(result, regressed), ""]
    if rest:
        out += [
            "<details>",
            f"<summary>{len(rest)} other combination{'s' if len(rest) > 1 else ''}</summary>",
            "",
            *_markdown_table(result, rest),
            "",
            "</details>",
            "",
        ]
    return "\n".join(out)


def _markdown_table(result: Result, changes: Sequence[Change]) -> list[str]:
    model = table_model(result, changes, "")
    lines = ["| " + " | ".join(table.md_text(h) for h in model.header) + " |"]
    lines.append("|" + "|".join("---" for _ in model.header) + "|")
    for row in model.rows:
        cells = [table.md_text(c) for c in row]
        cells[0] = "❌" if row[0] == "✗" else ""
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _drawn(combo: Combination | None, name: str) -> Summary | None:
    """What the figure draws of one side, as the text tells it: a single
    trial's value whatever its outcome (a failed one is judged on what it
    returned), else the mean of the repeats that passed."""
    if combo is None:
        return None
    if len(combo.records) == 1 and combo.records[0].key.repeat is None:
        value = combo.records[0].metrics.get(name)
        return Summary.of([] if value is None else [value])
    return combo.summary(name)


def html(result: Result, base: Reporter, head: Reporter, names: tuple[str, str]) -> str:
    from pytest_hparams import report_html  # plotly: only where a report is drawn

    shifts = []
    for change in result.changes:
        metric = result.primary.get(change.sweep)
        if metric is None:
            continue
        shifts.append(
            report_html.Shift(
                f"{change.where or change.combo} · {change.sweep}",
                _drawn(change.base, metric.name),
                _drawn(change.head, metric.name),
                change.status.value,
            )
        )
    metric_names = sorted({m.name for m in result.primary.values()})
    changes = report_html.Changes(
        result.verdict(),
        table_model(result, result.changes, ""),
        ", ".join(metric_names) or "the primary metric",
        shifts,
    )
    return report_html.render(
        f"pytest-hparams: {names[1]} against {names[0]}",
        [
            report_html.Part(f"Head: {names[1]}", head.views()),
            report_html.Part(f"Base: {names[0]}", base.views()),
        ],
        changes,
    )


# --- the command ---------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    """The command's arguments."""
    parser = argparse.ArgumentParser(
        prog="python -m pytest_hparams compare",
        description="Compare a sweep's --hparams-json report (HEAD) with another (BASE), "
        "per combination; exit 1 when a metric regressed beyond tolerance.",
    )
    parser.add_argument("base", type=Path, help="the base's --hparams-json report (main's)")
    parser.add_argument("head", type=Path, help="the head's --hparams-json report (the PR's)")
    parser.add_argument("--markdown", type=Path, help="write the PR comment's Markdown here")
    parser.add_argument(
        "--html",
        type=Path,
        help="write the HTML report of both sides here (pytest-hparams[report])",
    )
    parser.add_argument(
        "--tolerance", type=tolerance_spec, action="append", default=[], help="as pytest's"
    )
    parser.add_argument("--alpha", type=alpha_spec, default=0.05, help="as pytest's")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if (why := _check_outputs(args)) is not None:
        print(f"error: {why}", file=sys.stderr)
        return 2
    settings = Settings(alpha=args.alpha, tolerances=(dict(args.tolerance),))
    try:
        sides = [_read_side(path, settings) for path in (args.base, args.head)]
        result = compare(sides[0], sides[1], settings.tolerance, args.alpha)
    except (MergeError, ModuleNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for line in text_lines(result, args.base, args.head):
        print(line)
    try:
        _write_reports(args, result, sides[0], sides[1])
    except OSError as e:
        print(f"error: could not write a report ({type(e).__name__}: {e})", file=sys.stderr)
        return 2
    return 1 if result.regressed else 0


def _read_side(path: Path, settings: Settings) -> Reporter:
    """One side's records, as merge reads a report, with its gates decided."""
    side = Reporter(settings, merged=True)
    load_reports([path], side)
    side.decide_gate()
    return side


def _write_reports(
    args: argparse.Namespace, result: Result, base: Reporter, head: Reporter
) -> None:
    """Writes the Markdown and HTML reports that were asked for, and says where."""
    if args.markdown is not None:
        export.write(args.markdown, markdown(result))
        print(f"markdown summary: {args.markdown}")
    if args.html is not None:
        names = (args.base.name, args.head.name)
        export.write(args.html, html(result, base, head, names))
        print(f"html report: {args.html}")


def _check_outputs(args: argparse.Namespace) -> str | None:
    """Why an output cannot be written, before anything is read; None when all can."""
    inputs = {args.base.resolve(), args.head.resolve()}
    outputs = [(args.markdown, "--markdown", "markdown"), (args.html, "--html", "html")]
    if _one_file([args.markdown, args.html]):
        return "--markdown and --html name one file; give each its own"
    if args.html is not None and (why := missing_plotly("--html")):
        return why
    for path, source, kind in outputs:
        if path is not None and (problem := _output_problem(path, source, kind, inputs)):
            return problem
    return None


def _one_file(paths: list[Path | None]) -> bool:
    """Whether two of the outputs given (None: not asked) name one file."""
    given = [p.resolve() for p in paths if p is not None]
    return len(set(given)) < len(given)


def _output_problem(path: Path, source: str, kind: str, inputs: set[Path]) -> str | None:
    """Why one output cannot be written to `path`; None when it can."""
    if path.resolve() in inputs:
        return f"{path} is also an input; write the {source[2:]} to a file of its own"
    try:
        check_output(path, source)
    except pytest.UsageError as e:
        return str(e)
    return _foreign_output(path, kind)


def _foreign_output(path: Path, kind: str) -> str | None:
    """Why `path` holds what a `kind` output may not replace; None when it may."""
    # The Markdown is a comment's body, never a sweep's summary: only an
    # empty file or one this command wrote may be replaced.
    if kind == "markdown" and path.exists() and not _ours(path):
        return f"{path} holds something other than a comparison; give a path of its own"
    if kind == "html" and (why := export.foreign(path, "html")):
        return f"{path} {why}; give a path of its own"
    return None


def _ours(path: Path) -> bool:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return not text.strip() or text.startswith(MARKDOWN_TITLE)
