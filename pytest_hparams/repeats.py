"""Repeats: a combination's trials summarised (n, mean, std), and the
baseline gate that knows the noise: a one-sided Welch's t-test.

Pure but for scipy, which is imported only when a test is needed: when the
run and the baseline both hold two or more repeats of a combination.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from pytest_hparams.metrics import Metric, Tolerance
from pytest_hparams.records import Outcome, TrialRecord

STATS_EXTRA = "pip install 'pytest-hparams[stats]'"


class Summary(NamedTuple):
    """One metric over a combination's repeats."""

    n: int
    mean: float
    std: float  # the sample standard deviation; 0 for n < 2
    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Iterable[float]) -> Summary:
        # Sorted: repeats arrive in any order (xdist), and the summary must not.
        finite = tuple(sorted(v for v in values if math.isfinite(v)))
        if not finite:
            return cls(0, math.nan, math.nan, ())
        # Imported here: the table imports this module in every run, repeats or not.
        import statistics

        std = statistics.stdev(finite) if len(finite) > 1 else 0.0
        return cls(len(finite), statistics.fmean(finite), std, finite)

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "mean": self.mean, "std": self.std, "values": list(self.values)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Summary:
        return cls(
            int(data["n"]),
            float(data["mean"]),
            float(data["std"]),
            tuple(float(v) for v in data["values"]),
        )


@dataclass
class Combination:
    """The repeats of one combination of a sweep."""

    combo: str
    records: list[TrialRecord] = field(default_factory=list)
    comparison: dict[str, Any] | None = None  # the gate's verdict, when compared

    @property
    def key(self) -> Any:
        return self.records[0].key

    def summary(self, name: str) -> Summary:
        """A metric over the repeats that passed (or were resumed)."""
        return Summary.of(
            r.metrics[name] for r in self.records if r.outcome.ok and name in r.metrics
        )

    def summaries(self) -> dict[str, Summary]:
        names = dict.fromkeys(n for r in self.records for n in r.metrics)
        return {n: self.summary(n) for n in names}

    def outcomes(self) -> str:
        """`3/3 passed`, or `2/3 passed, 1 failed`."""
        n = len(self.records)
        tally: dict[Outcome, int] = {}
        for record in self.records:
            tally[record.outcome] = tally.get(record.outcome, 0) + 1
        passed = tally.pop(Outcome.PASSED, 0)
        parts = [f"{passed}/{n} passed", *(f"{c} {o.value}" for o, c in tally.items())]
        return ", ".join(parts)

    @property
    def duration(self) -> float:
        return sum(r.duration for r in self.records)

    @property
    def verdict(self) -> str:
        """The gate's verdict on the combination or, when its repeats were
        judged one by one (a baseline of single values), the worst of theirs."""
        if self.comparison:
            return str(self.comparison["verdict"])
        verdicts = {r.verdict for r in self.records}
        return next((v for v in ("regressed", "improved", "ok", "new") if v in verdicts), "")


def combine(records: Iterable[TrialRecord]) -> list[Combination]:
    """The records grouped by combination, in the order first seen."""
    out: dict[str, Combination] = {}
    for record in records:
        combo = record.key.group
        out.setdefault(combo, Combination(combo)).records.append(record)
    return list(out.values())


def repeated(records: Iterable[TrialRecord]) -> bool:
    """Whether a sweep's trials are repeats (they ran with `repeats=` > 1)."""
    return any(r.key.repeat is not None for r in records)


def welch_p(run: Sequence[float], base: Sequence[float], goal: str) -> float:
    """The one-sided p-value that `run` is worse than `base` in the metric's goal.

    Welch's t-test (scipy's `ttest_ind(equal_var=False)`): repeats of a
    changed model need not share the baseline's variance. Two samples without
    variance are decided exactly: p is 0 if the run is worse, else 1.

    Raises:
      ModuleNotFoundError: If scipy is not installed; the message names the extra.
    """
    import statistics

    worse = "less" if goal == "max" else "greater"
    if statistics.pstdev(run) == 0 and statistics.pstdev(base) == 0:
        difference = statistics.fmean(run) - statistics.fmean(base)
        is_worse = difference < 0 if goal == "max" else difference > 0
        return 0.0 if is_worse else 1.0
    try:
        from scipy import stats
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            f"the baseline gate on repeats needs scipy; install it with: {STATS_EXTRA}"
        ) from None
    result = stats.ttest_ind(run, base, equal_var=False, alternative=worse)
    return float(result.pvalue)


def judge(
    metric: Metric, run: Summary, base: Summary, tolerance: Tolerance, alpha: float
) -> tuple[str, str, float | None]:
    """A metric's verdict over repeats: (verdict, message, p-value).

    With two or more values on both sides, it regressed only if the mean
    moved in the bad direction by more than the tolerance (a change that
    matters) and a one-sided Welch's t-test finds it at `alpha` (a change
    that is not noise). With fewer, the single-value rule of `baseline.py`
    decides, on the means.
    """
    name = metric.name
    if run.n == 0:
        return "regressed", f"{name} is missing or not finite in every repeat", None
    amount = max(tolerance.amount(base.mean), 1e-6 * max(1.0, abs(base.mean)))
    delta = run.mean - base.mean
    bad = -delta if metric.goal == "max" else delta
    shown = f"{_describe(run)} vs baseline {_describe(base)}"
    if run.n < 2 or base.n < 2:
        if bad > amount:
            return "regressed", f"{name} regressed: {shown}, beyond tolerance {tolerance}", None
        return ("improved" if -bad > amount else "ok"), "", None
    p = welch_p(run.values, base.values, metric.goal)
    if bad > amount and p < alpha:
        return (
            "regressed",
            f"{name} regressed: {shown}; one-sided Welch's t-test p={p:.3g} < alpha {alpha:g}, "
            f"beyond tolerance {tolerance}",
            p,
        )
    if -bad > amount and welch_p(run.values, base.values, _flip(metric.goal)) < alpha:
        return "improved", "", p
    return "ok", "", p


def compare(
    combination: Combination,
    entry: Mapping[str, Any] | None,
    declared: Sequence[Metric],
    tolerance: Any,
    alpha: float,
) -> dict[str, Any] | None:
    """Compares a combination's repeats with its baseline entry.

    Returns:
      {"verdict": "new" | "ok" | "improved" | "regressed",
       "metrics": {name: {"run", "baseline", "p", "tolerance", "verdict"}},
       "messages": [one line per regressed metric]},
      or None when no repeat ran to the end (all skipped, or failed: the
      failed items already fail the run).
    """
    ran = [r for r in combination.records if r.outcome.ok]
    if not ran:
        return None
    if entry is None:
        return {"verdict": "new", "metrics": {}, "messages": []}
    by_name = {m.name: m for m in declared}
    stats = entry.get("stats") or {}
    out: dict[str, Any] = {}
    messages = []
    for name, mean in sorted(entry["metrics"].items()):
        metric = by_name.get(name) or Metric(name)
        base = Summary.from_dict(stats[name]) if name in stats else Summary(1, mean, 0.0, (mean,))
        run = combination.summary(name)
        tol = tolerance(metric)
        lost = sum(1 for r in ran if not math.isfinite(r.metrics.get(name, math.nan)))
        if lost:
            # A repeat that diverged (NaN) or did not return the metric is a
            # regression, as it is for a single trial, not a smaller sample.
            verdict, p = "regressed", None
            message = f"{name} is missing or not finite in {lost} of {len(ran)} repeats"
        else:
            verdict, message, p = judge(metric, run, base, tol, alpha)
        out[name] = {
            "run": run.to_dict(),
            "baseline": base.to_dict(),
            "p": p,
            "tolerance": str(tol),
            "verdict": verdict,
        }
        if message:
            messages.append(message)
    from pytest_hparams.baseline import comparison

    return comparison(out, messages)


def _flip(goal: str) -> str:
    return "min" if goal == "max" else "max"


def _describe(summary: Summary) -> str:
    return f"{_num(summary.mean)} ± {_num(summary.std)} (n={summary.n})"


def _num(value: float) -> str:
    return f"{value:.4g}"
