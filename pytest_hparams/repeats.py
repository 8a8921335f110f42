"""Repeats: a sweep's trials grouped by combination (`Combination`), each
metric summarised over the repeats that passed. Pure; the gate on repeats is
in gates.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from pytest_hparams.records import Outcome, TrialKey, TrialRecord
from pytest_hparams.verdicts import Comparison, Summary, Verdict


@dataclass
class Combination:
    """The repeats of one combination of a sweep (or one trial, n=1)."""

    combo: str
    records: list[TrialRecord] = field(default_factory=list)
    comparison: Comparison | None = None  # the gate's verdict, when compared

    @property
    def key(self) -> TrialKey:
        return self.records[0].key

    def summary(self, name: str) -> Summary:
        """A metric over the repeats that passed (or were resumed)."""
        return Summary.of(
            r.metrics[name] for r in self.records if r.outcome.ok and name in r.metrics
        )

    def lost(self, name: str) -> int:
        """How many repeats that passed returned the metric as NaN or infinite:
        left out of the summary, but shown (TensorBoard's mean takes them)."""
        return sum(
            1
            for r in self.records
            if r.outcome.ok and name in r.metrics and not math.isfinite(r.metrics[name])
        )

    def summaries(self) -> dict[str, Summary]:
        names = dict.fromkeys(n for r in self.records for n in r.metrics)
        return {n: self.summary(n) for n in names}

    def outcomes(self) -> str:
        """`3/3 passed`, `2/3 passed, 1 failed`, or `3 resumed` when none ran."""
        n = len(self.records)
        tally: dict[Outcome, int] = {}
        for record in self.records:
            tally[record.outcome] = tally.get(record.outcome, 0) + 1
        passed = tally.pop(Outcome.PASSED, 0)
        if not passed and len(tally) == 1:  # all resumed, say: not "0/5 passed"
            ((outcome, count),) = tally.items()
            return f"{count} {outcome.value}"
        parts = [f"{passed}/{n} passed", *(f"{c} {o.value}" for o, c in tally.items())]
        return ", ".join(parts)

    @property
    def duration(self) -> float:
        return sum(r.duration for r in self.records)

    @property
    def verdict(self) -> Verdict | None:
        """The gate's verdict on the combination or, when its repeats were
        judged one by one (a baseline of single values), the worst of theirs."""
        if self.comparison:
            return self.comparison.verdict
        verdicts = {r.verdict for r in self.records}
        order = (Verdict.REGRESSED, Verdict.IMPROVED, Verdict.OK, Verdict.NEW)
        return next((v for v in order if v in verdicts), None)


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
