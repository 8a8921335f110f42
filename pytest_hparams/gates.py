"""Every verdict on a run's metrics, in one place: a trial's bounds
(`Metric(min=, max=)`), a trial against its baseline entry, a combination's
repeats against theirs (a one-sided Welch's t-test), and `--hparams-gate best`.

Each comparison is a typed `Comparison`, which the table, the JSON and
Markdown reports, JUnit and `merge` only render. Pure: scipy is imported
(`lazy.scipy_stats`) only when a t-test is needed (both sides hold two or
more repeats).
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_hparams import lazy
from pytest_hparams.metrics import Metric, Tolerance
from pytest_hparams.repeats import Combination, combine
from pytest_hparams.verdicts import Comparison, MetricComparison, Summary, Verdict

#: The tolerance in effect for a metric, or None where none was set (0 applies).
Tolerances = Callable[[Metric], Tolerance | None]
Entry = Mapping[str, Any]  # a baseline file's entry (see baseline.py)


NEW = Comparison(Verdict.NEW)


# --- thresholds ----------------------------------------------------------------


def bounds(metrics: Mapping[str, float], declared: Iterable[Metric]) -> list[str]:
    """One line per declared bound (`Metric(min=..., max=...)`) the trial misses."""
    problems = (_missed_bound(metric, metrics.get(metric.name)) for metric in declared)
    return [problem for problem in problems if problem]


def _missed_bound(metric: Metric, value: float | None) -> str:
    """The bound a metric's value misses, said in a line; "" when it meets them."""
    if metric.min is None and metric.max is None:
        return ""
    if value is None:
        return f"{metric.name} has a bound but the test did not return it"
    if metric.min is not None and not value >= metric.min:  # NaN fails too
        return f"{metric.name} {value:.6g} is below its minimum {metric.min:g}"
    if metric.max is not None and not value <= metric.max:
        return f"{metric.name} {value:.6g} is above its maximum {metric.max:g}"
    return ""


# --- one run against the baseline ---------------------------------------------------


def repeated(entry: Entry | None) -> bool:
    """Whether a baseline entry holds two or more repeats of some metric."""
    stats = (entry or {}).get("stats") or {}
    return any(s.get("n", 0) >= 2 for s in stats.values())


def compare_trial(
    metrics: Mapping[str, float],
    entry: Entry | None,
    declared: Iterable[Metric],
    tolerances: Tolerances,
) -> Comparison:
    """One trial's metrics against its baseline entry (NEW when it has none)."""
    if entry is None:
        return NEW
    by_name = {m.name: m for m in declared}
    out = []
    for name, base in sorted(entry["metrics"].items()):
        metric = by_name.get(name) or Metric(name)
        tol, shown = _tolerance(metric, tolerances)
        value = metrics.get(name)
        verdict, message = _judge_value(metric, value, base, tol, shown)
        out.append(MetricComparison(name, verdict, value, base, str(tol), message))
    return Comparison.of(out)


def _judge_value(
    metric: Metric, value: float | None, base: float, tol: Tolerance, shown: str
) -> tuple[Verdict, str]:
    name = metric.name
    if value is None:
        return Verdict.REGRESSED, f"{name} is missing (baseline {_num(base)})"
    if not math.isfinite(value):
        return Verdict.REGRESSED, f"{name} regressed: {value} (baseline {_num(base)})"
    amount = _amount(tol, base)
    if tol.relative:
        shown = f"{shown} ({_num(amount)})"
    bad = _worse_by(metric.goal, value - base)
    if bad > amount:
        sign, op = _BEYOND[metric.goal]
        return Verdict.REGRESSED, (
            f"{name} regressed: {_num(value)} {sign} baseline {_num(base)} {op} tolerance {shown}"
        )
    return (Verdict.IMPROVED if -bad > amount else Verdict.OK), ""


#: How a regression line puts the value beyond the baseline, by the metric's
#: goal: `value < baseline - tolerance` for "max", `>` and `+` for "min".
_BEYOND = {"max": ("<", "-"), "min": (">", "+")}


def _worse_by(goal: str, delta: float) -> float:
    """How far a change of `delta` goes in the bad direction for the goal
    (negative when it is an improvement)."""
    return -delta if goal == "max" else delta


def _amount(tol: Tolerance, base: float) -> float:
    # Values read back from a logdir went through float32: a difference in
    # the 7th digit is that rounding, never a move.
    return max(tol.amount(base), 1e-6 * max(1.0, abs(base)))


def _tolerance(metric: Metric, tolerances: Tolerances) -> tuple[Tolerance, str]:
    """The tolerance in effect and how a regression line shows it: a default
    of 0 says so, and how to set one (a baseline saved with a tolerance for
    one metric otherwise fails every trial on the others, unexplained)."""
    tol = tolerances(metric)
    if tol is not None:
        return tol, str(tol)
    return Tolerance(0.0), (
        f"0 (none set for {metric.name}: --hparams-tolerance {metric.name}:VALUE, "
        "or --hparams-tolerance 5% for every metric)"
    )


# --- repeats against the baseline ----------------------------------------------------


def welch_p(run: Sequence[float], base: Sequence[float], goal: str) -> float:
    """The one-sided p-value that `run` is worse than `base` in the metric's goal.

    Welch's t-test (scipy's `ttest_ind(equal_var=False)`): repeats of a
    changed model need not share the baseline's variance. Two samples without
    variance are decided exactly: p is 0 if the run is worse, else 1.

    Raises:
      ModuleNotFoundError: If scipy is not installed; the message names the extra.
    """
    worse = "less" if goal == "max" else "greater"
    if statistics.pstdev(run) == 0 and statistics.pstdev(base) == 0:
        return _exact_p(run, base, goal)
    stats = lazy.scipy_stats()
    with warnings.catch_warnings():
        # Near-equal samples make scipy warn of precision loss: the p-value
        # still decides, and a user's `-W error` must not end the run here.
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ttest_ind(run, base, equal_var=False, alternative=worse)
    return float(result.pvalue)


def welch_interval(
    run: Sequence[float], base: Sequence[float], alpha: float
) -> tuple[float, float]:
    """The (1 - 2 alpha) confidence interval of the run's mean minus the
    base's, by Welch's t: each bound is the one-sided bound of `welch_p`'s
    test at `alpha`, so the interval lies wholly on the worse side of 0
    exactly when that test finds the run worse. Two samples without
    variance give the exact difference.

    Raises:
      ModuleNotFoundError: If scipy is not installed; the message names the extra.
    """
    if statistics.pstdev(run) == 0 and statistics.pstdev(base) == 0:
        difference = statistics.fmean(run) - statistics.fmean(base)
        return difference, difference
    stats = lazy.scipy_stats("the Welch interval on repeats")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # as in welch_p
        result = stats.ttest_ind(run, base, equal_var=False)
        low, high = result.confidence_interval(1 - 2 * alpha)
    return float(low), float(high)


def _exact_p(run: Sequence[float], base: Sequence[float], goal: str) -> float:
    """The p-value of two samples without variance: 0 if the run is worse, else 1."""
    difference = statistics.fmean(run) - statistics.fmean(base)
    is_worse = difference < 0 if goal == "max" else difference > 0
    return 0.0 if is_worse else 1.0


def judge_repeats(
    metric: Metric, run: Summary, base: Summary, tol: Tolerance, alpha: float, shown: str = ""
) -> tuple[Verdict, str, float | None]:
    """A metric's verdict over repeats: (verdict, message, p-value).

    With two or more values on both sides, it regressed only if the mean
    moved in the bad direction by more than the tolerance (a change that
    matters) and a one-sided Welch's t-test finds it at `alpha` (a change
    that is not noise). With fewer, the single-value rule decides, on the means.
    """
    shown = shown or str(tol)
    if run.n == 0:
        return Verdict.REGRESSED, f"{metric.name} is missing or not finite in every repeat", None
    if run.n < 2 or base.n < 2:
        return (*_judge_means(metric, run, base, tol, shown), None)
    return _judge_welch(metric, run, base, tol, alpha, shown)


def _judge_means(
    metric: Metric, run: Summary, base: Summary, tol: Tolerance, shown: str
) -> tuple[Verdict, str]:
    """Too few repeats for a t-test: the means against the tolerance alone."""
    amount = _amount(tol, base.mean)
    bad = _worse_by(metric.goal, run.mean - base.mean)
    if bad > amount:
        sides = f"{run.text()} vs baseline {base.text()}"
        return Verdict.REGRESSED, f"{metric.name} regressed: {sides}, beyond tolerance {shown}"
    return (Verdict.IMPROVED if -bad > amount else Verdict.OK), ""


def _judge_welch(
    metric: Metric, run: Summary, base: Summary, tol: Tolerance, alpha: float, shown: str
) -> tuple[Verdict, str, float]:
    """Two or more repeats a side: a move beyond the tolerance counts only
    where a one-sided Welch's t-test finds it at `alpha`, each way."""
    amount = _amount(tol, base.mean)
    bad = _worse_by(metric.goal, run.mean - base.mean)
    p = welch_p(run.values, base.values, metric.goal)
    if bad > amount and p < alpha:
        sides = f"{run.text()} vs baseline {base.text()}"
        return (
            Verdict.REGRESSED,
            f"{metric.name} regressed: {sides}; one-sided Welch's t-test p={p:.3g} < alpha "
            f"{alpha:g}, beyond tolerance {shown}",
            p,
        )
    flipped = _FLIPPED[metric.goal]
    if -bad > amount and welch_p(run.values, base.values, flipped) < alpha:
        return Verdict.IMPROVED, "", p
    return Verdict.OK, "", p


_FLIPPED = {"max": "min", "min": "max"}  # the goal an improvement is tested as


def compare_repeats(
    combination: Combination,
    entry: Entry | None,
    declared: Iterable[Metric],
    tolerances: Tolerances,
    alpha: float,
) -> Comparison | None:
    """A combination's repeats against its baseline entry; None when no
    repeat ran to the end (all skipped, or failed: those fail the run already)."""
    ran = [r for r in combination.records if r.outcome.ok]
    if not ran:
        return None
    if entry is None:
        return NEW
    return _compare_repeated(combination, ran, entry, declared, tolerances, alpha)


def _compare_repeated(
    combination: Combination,
    ran: Sequence[Any],
    entry: Entry,
    declared: Iterable[Metric],
    tolerances: Tolerances,
    alpha: float,
) -> Comparison:
    """Each metric of the baseline entry against the combination's repeats
    (`ran`: those that ran to the end)."""
    by_name = {m.name: m for m in declared}
    stats = entry.get("stats") or {}
    return Comparison.of(
        _compare_repeated_metric(
            by_name.get(name) or Metric(name),
            combination.summary(name),
            _base_summary(stats, name, mean),
            _lost(ran, name),
            tolerances,
            alpha,
        )
        for name, mean in sorted(entry["metrics"].items())
    )


def _base_summary(stats: Mapping[str, Any], name: str, mean: float) -> Summary:
    """A metric's statistics in the baseline; an entry saved from a single
    trial holds only its value."""
    return Summary.from_dict(stats[name]) if name in stats else Summary(1, mean, 0.0, (mean,))


def _lost(ran: Sequence[Any], name: str) -> str:
    """`2 of 5` where some repeats that ran did not return a finite value; "" where all did."""
    lost = sum(1 for r in ran if not math.isfinite(r.metrics.get(name, math.nan)))
    return f"{lost} of {len(ran)}" if lost else ""


def _compare_repeated_metric(
    metric: Metric, run: Summary, base: Summary, lost: str, tolerances: Tolerances, alpha: float
) -> MetricComparison:
    """One metric of a combination's repeats against its baseline statistics."""
    tol, shown = _tolerance(metric, tolerances)
    p = None
    if lost:
        # A repeat that diverged (NaN) or did not return the metric is a
        # regression, as it is for a single trial, not a smaller sample.
        verdict = Verdict.REGRESSED
        message = f"{metric.name} is missing or not finite in {lost} repeats"
    elif run.n == 1 and base.n == 1:  # one value a side: said as for one trial
        verdict, message = _judge_value(metric, run.mean, base.mean, tol, shown)
    else:
        verdict, message, p = judge_repeats(metric, run, base, tol, alpha, shown)
    value = run.mean if run.n else None
    return MetricComparison(metric.name, verdict, value, base.mean, str(tol), message, p, run, base)


# --- the run's verdicts, once every trial is known ----------------------------------------


@dataclass
class Decision:
    """What the gates decided at the end of a run (or of `merge`).

    Attributes:
      combinations: Each repeated sweep's combinations, by sweep, with their
        comparisons set.
      failures: One line per regression that fails the run and no item
        carries (repeats, `--hparams-gate best`).
      notes: Lines that explain what the gate did not judge.
    """

    combinations: dict[str, list[Combination]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def decide(
    sweeps: Mapping[str, Sequence[Any]],
    declared: Mapping[str, Sequence[Metric]],
    entries: Mapping[str, Entry] | None,
    tolerances: Tolerances,
    alpha: float = 0.05,
    gate: str = "each",
    sharded: bool = False,
    reported: Mapping[str, Comparison] | None = None,
    merged: bool = False,
    asked: Collection[str] = (),
) -> Decision:
    """Compares repeated combinations (and, with `--hparams-gate best`, each
    sweep's best) with the baseline, where every repeat is known: on the
    controller under xdist, and in `merge` for shards.

    Args:
      sweeps: Each sweep's trial records, by sweep.
      declared: Each sweep's declared metrics.
      entries: The baseline's entries, or None without a baseline.
      reported: `merge` without a baseline: the verdicts the shards' reports
        gave their combinations (each shard held all repeats of its own).
      merged: Run by `merge` with a baseline: each single trial is compared
        again (in pytest its item was, and failed with its regression).
      asked: The `@hparam_search` sweeps: a trial's entry was recorded with
        other hparams, so only `--hparams-gate best` compares them.
    """
    decision = Decision(_repeated_combinations(sweeps))
    if entries is None:
        _keep_reported(decision, gate, reported or {})
        return decision
    for test, records in sweeps.items():
        note = _not_gated_here(test, gate, sharded, test in asked)
        if note:
            decision.notes.append(note)
            continue
        metrics = list(declared.get(test, ()))
        if gate == "best":
            combos = decision.combinations.get(test) or combine(records)
            decision.failures += _gate_best(
                test, combos, metrics, entries, tolerances, alpha, shown=test not in asked
            )
            continue
        if merged and test not in decision.combinations:
            decision.failures += _compare_trials_again(records, metrics, entries, tolerances)
        combos = decision.combinations.get(test, [])
        decision.failures += _gate_each(combos, metrics, entries, tolerances, alpha)
    return decision


def _repeated_combinations(sweeps: Mapping[str, Sequence[Any]]) -> dict[str, list[Combination]]:
    """The combinations of each sweep that runs repeats, by sweep."""
    return {
        test: combine(records)
        for test, records in sweeps.items()
        if any(r.key.repeat is not None for r in records)
    }


def _not_gated_here(test: str, gate: str, sharded: bool, asked: bool) -> str:
    """Why this run does not gate a sweep against the baseline; "" where it does."""
    if asked and gate != "best":
        return (
            f"{test}: @hparam_search asks each trial's hparams, so the baseline's "
            "entries per trial do not apply; gate it with --hparams-gate best"
        )
    if gate == "best" and sharded:
        return (
            f"{test}: --hparams-gate best is decided over every shard, by "
            "`python -m pytest_hparams merge --gate best --baseline ...`"
        )
    return ""


def _keep_reported(decision: Decision, gate: str, reported: Mapping[str, Comparison]) -> None:
    """No baseline: each combination keeps the verdict its shard's report
    gave it (`merge`); with none reported, `--hparams-gate best` says it
    needs a baseline."""
    if gate == "best" and not reported:
        decision.notes.append(
            "--hparams-gate best compares each sweep's best with the baseline's best: "
            "give the baseline with --hparams-baseline"
        )
    decision.failures += _reported_failures(decision.combinations, reported)


def _reported_failures(
    combinations: Mapping[str, list[Combination]], reported: Mapping[str, Comparison]
) -> list[str]:
    """Gives each combination the verdict its shard's report gave it; returns
    the regressions of those that gate."""
    failures = []
    for combos in combinations.values():
        for combo in combos:
            comparison = reported.get(combo.combo)
            if comparison is not None:
                combo.comparison = comparison
                if comparison.gating:
                    failures += [f"{combo.combo} {m}" for m in comparison.messages]
    return failures


def _compare_trials_again(
    records: Sequence[Any],
    metrics: list[Metric],
    entries: Mapping[str, Entry],
    tolerances: Tolerances,
) -> list[str]:
    """`merge` with a baseline: each single trial that ran to the end, again."""
    failures = []
    for record in records:
        if record.outcome.ok:
            entry = entries.get(record.nodeid)
            record.comparison = compare_trial(record.metrics, entry, metrics, tolerances)
            failures += [f"{record.nodeid} {m}" for m in record.comparison.messages]
    return failures


def _gate_each(
    combos: Sequence[Combination],
    metrics: list[Metric],
    entries: Mapping[str, Entry],
    tolerances: Tolerances,
    alpha: float,
) -> list[str]:
    """Every repeated combination against its entry, by the Welch gate."""
    failures = []
    for combo in combos:
        entry = entries.get(combo.combo)
        if not repeated(entry):
            continue  # n = 1 on a side: each repeat was judged as its own trial
        combo.comparison = compare_repeats(combo, entry, metrics, tolerances, alpha)
        if combo.comparison is not None:
            failures += [f"{combo.combo} {m}" for m in combo.comparison.messages]
    return failures


def _gate_best(
    test: str,
    combos: list[Combination],
    declared: list[Metric],
    entries: Mapping[str, Entry],
    tolerances: Tolerances,
    alpha: float,
    shown: bool = True,
) -> list[str]:
    """`--hparams-gate best`: the sweep's best combination against the
    baseline's best. Every combination's change is shown (`shown`: not a
    search's, whose entries held other hparams); only the best's can fail
    the run."""
    mine = {k: e for k, e in entries.items() if e.get("test") == test}
    if not declared or not mine:
        return []
    primary = declared[0]
    base_key = _baseline_best(mine, primary)
    if base_key is None:
        return [
            f"{test}: --hparams-gate best cannot compare: the baseline holds no "
            f"{primary.name!r}, the primary metric; save a new baseline"
        ]
    if shown:
        _show_changes(combos, mine, declared, tolerances, alpha)
    best = _sweep_best(combos, primary)
    if best is None:
        return _no_finite_best(test, combos, primary, base_key)
    comparison = compare_repeats(best, mine[base_key], declared, tolerances, alpha)
    if comparison is None:
        return []
    return _best_against(test, best, combos, comparison, base_key)


def _best_against(
    test: str,
    best: Combination,
    combos: Sequence[Combination],
    comparison: Comparison,
    base_key: str,
) -> list[str]:
    """Shows the best's comparison with the baseline's best `base_key` (on
    its trials too, without repeats); returns the regressions that fail the run."""
    best.comparison = Comparison(comparison.verdict, comparison.metrics, base_key)
    _show_on_trials(combos)
    return [
        f"{test}: best {best.combo} against the baseline's best {base_key}: {m}"
        for m in comparison.messages
    ]


def _best_first(primary: Metric, mean: float, name: str) -> tuple[float, str]:
    """Sort key: the best mean of the primary metric first, a non-finite one
    last; ties go to the smaller name, on both the sweep's and the baseline's side."""
    sign = 1.0 if primary.goal == "max" else -1.0
    return (-sign * mean if math.isfinite(mean) else math.inf, name)


def _baseline_best(entries: Mapping[str, Entry], primary: Metric) -> str | None:
    """The key of the baseline's best entry; None when no entry holds the primary metric."""
    candidates = [k for k, e in entries.items() if primary.name in e["metrics"]]
    return min(
        candidates,
        key=lambda k: _best_first(primary, entries[k]["metrics"][primary.name], k),
        default=None,
    )


def _sweep_best(combos: Sequence[Combination], primary: Metric) -> Combination | None:
    """The sweep's best combination; None when none has a finite primary metric."""
    best = min(
        combos,
        key=lambda c: _best_first(primary, c.summary(primary.name).mean, c.combo),
        default=None,
    )
    return best if best is not None and best.summary(primary.name).n else None


def _no_finite_best(
    test: str, combos: Sequence[Combination], primary: Metric, base_key: str
) -> list[str]:
    """The failure of a sweep whose trials ran but none returned a finite
    primary metric; none when nothing ran to the end (skipped, pruned, failed)."""
    if not any(r.outcome.ok for c in combos for r in c.records):
        return []
    return [
        f"{test}: --hparams-gate best found no trial with a finite {primary.name!r}, the "
        f"primary metric (the baseline's best is {base_key}): every trial that ran "
        "returned it as NaN, infinite or not at all"
    ]


def _show_on_trials(combos: Sequence[Combination]) -> None:
    """A sweep without repeats: its table shows trials, so each trial shows
    its combination's comparison."""
    for combo in combos:
        if len(combo.records) == 1 and combo.records[0].key.repeat is None:
            combo.records[0].comparison = combo.comparison


def _show_changes(
    combos: Sequence[Combination],
    entries: Mapping[str, Entry],
    declared: list[Metric],
    tolerances: Tolerances,
    alpha: float,
) -> None:
    """Each combination's change against its own entry, shown beside its
    row under `--hparams-gate best`; only the best's verdict is the gate."""
    for combo in combos:
        comparison = compare_repeats(combo, entries.get(combo.combo), declared, tolerances, alpha)
        if comparison is not None and comparison.verdict is not Verdict.NEW:
            combo.comparison = Comparison(
                comparison.verdict, comparison.metrics, comparison.against, gating=False
            )


def _num(value: float, digits: int = 6) -> str:
    return f"{value:.{digits}g}"
