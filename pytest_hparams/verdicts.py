"""What the gates decide, as typed records: a metric over repeats
(`Summary`), one metric against its baseline (`MetricComparison`), a trial's
or combination's verdict (`Verdict`, `Comparison`). `gates.py` makes them;
the table, the JSON and Markdown reports, JUnit and `merge` only read them.
"""

from __future__ import annotations

import enum
import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple


class Summary(NamedTuple):
    """One metric over a combination's repeats (or a single value, n=1)."""

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
        try:
            mean = statistics.fmean(finite)
            std = statistics.stdev(finite) if len(finite) > 1 else 0.0
        except OverflowError:  # values near the float limit overflow their sum
            scale = max(abs(v) for v in finite)
            scaled = [v / scale for v in finite]
            mean = statistics.fmean(scaled) * scale
            std = statistics.stdev(scaled) * scale if len(finite) > 1 else 0.0
        return cls(len(finite), mean, std, finite)

    def text(self, std_digits: int = 4) -> str:
        """`0.912 ± 0.004 (n=3)`; `0.912 (n=1)`, as one value has no spread."""
        if self.n == 1:
            return f"{self.mean:.4g} (n=1)"
        return f"{self.mean:.4g} ± {self.std:.{std_digits}g} (n={self.n})"

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


class Verdict(enum.StrEnum):
    """A comparison's outcome: the worst of its metrics' (regressed wins)."""

    NEW = "new"  # the baseline has no entry for it
    PRUNED = "pruned"  # its trial (every repeat) was pruned: not judged
    OK = "ok"
    IMPROVED = "improved"
    REGRESSED = "regressed"


@dataclass(frozen=True, slots=True)
class MetricComparison:
    """One metric against its baseline value.

    Attributes:
      value: The run's value (its mean over repeats); None when missing.
      baseline: The baseline's value (its mean over repeats).
      tolerance: The tolerance in effect, as written (`0.02`, `5%`).
      message: The line that explains a regression, else "".
      p: The Welch's t-test p-value, when one was computed.
      run, base: Both sides over repeats; None for a single value.
    """

    name: str
    verdict: Verdict
    value: float | None
    baseline: float
    tolerance: str
    message: str = ""
    p: float | None = None
    run: Summary | None = None
    base: Summary | None = None

    @property
    def delta(self) -> float | None:
        if self.value is None or not math.isfinite(self.value):
            return None
        return self.value - self.baseline

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "value": self.value,
            "baseline": self.baseline,
            "delta": self.delta,
            "tolerance": self.tolerance,
            "p": self.p,
            "run": self.run.to_dict() if self.run else None,
            "base": self.base.to_dict() if self.base else None,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> MetricComparison:
        def summary(raw: Any) -> Summary | None:
            return Summary.from_dict(raw) if raw else None

        value = data.get("value")
        return cls(
            name,
            Verdict(data["verdict"]),
            None if value is None else float(value),
            float(data["baseline"]),
            str(data.get("tolerance", "")),
            str(data.get("message") or ""),
            None if data.get("p") is None else float(data["p"]),
            summary(data.get("run")),
            summary(data.get("base")),
        )


@dataclass(frozen=True, slots=True)
class Comparison:
    """A trial's or a combination's metrics against the baseline.

    Attributes:
      against: The baseline entry compared with, when it is not the row's own
        (`--hparams-gate best`: the baseline's best).
      gating: Whether a regression here fails the run; under
        `--hparams-gate best` only the best's comparison gates, the others
        are shown.
    """

    verdict: Verdict
    metrics: tuple[MetricComparison, ...] = ()
    against: str | None = None
    gating: bool = True

    @classmethod
    def of(cls, metrics: Iterable[MetricComparison], against: str | None = None) -> Comparison:
        metrics = tuple(metrics)
        verdicts = {m.verdict for m in metrics}
        for verdict in (Verdict.REGRESSED, Verdict.IMPROVED):
            if verdict in verdicts:
                return cls(verdict, metrics, against)
        return cls(Verdict.OK, metrics, against)

    @property
    def messages(self) -> list[str]:
        return [m.message for m in self.metrics if m.message]

    def metric(self, name: str) -> MetricComparison | None:
        return next((m for m in self.metrics if m.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "against": self.against,
            "gating": self.gating,
            "metrics": {m.name: m.to_dict() for m in self.metrics},
            "messages": self.messages,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Comparison:
        """Reads `to_dict()`'s form back (a shard's report, in `merge`).

        Raises:
          KeyError, TypeError, ValueError: If `data` is not of that form.
        """
        metrics = tuple(
            MetricComparison.from_dict(str(name), m) for name, m in dict(data["metrics"]).items()
        )
        against = data.get("against")
        return cls(
            Verdict(data["verdict"]),
            metrics,
            None if against is None else str(against),
            bool(data.get("gating", True)),
        )
