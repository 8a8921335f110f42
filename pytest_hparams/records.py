"""Typed trial records: who a trial is (`TrialKey`), how it ended (`Outcome`)
and what the reporting process keeps of it (`TrialRecord`).

A record becomes a plain dict only where it leaves the process: on the
teardown report that xdist carries to the controller, and in the JSON
report. Everything between works on these types.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from pytest import TestReport

    from pytest_hparams.space import Value


class TrialKey(NamedTuple):
    """A swept item's identity, computed once at collection from public pytest API.

    Attributes:
      nodeid: `item.nodeid`: unique in the session and stable across runs; the
        key of records, baselines and `--hparams-resume`.
      test: The swept function's node id (the sweep): `item.parent.nodeid`
        and `item.originalname`.
      params: pytest's id of the item's parameters (`item.callspec.id`),
        which names the trial's run directory.
      hparams: The trial's swept values, from `item.callspec.params`.
      case: The item's other parameters (`@pytest.mark.parametrize`, or a
        plugin's such as pytest-repeat), as `name=value` text for the table.
      repeat: Which repeat of its combination the trial is (`repeats=`), or
        None when combinations run once.
      combo: The combination the trial belongs to: its node id when
        combinations run once, else the same without the repeat. Its
        repeats share one TensorBoard session group and one baseline entry.
    """

    nodeid: str
    test: str
    params: str
    hparams: Mapping[str, Value]
    case: str = ""
    repeat: int | None = None
    combo: str = ""

    @property
    def group(self) -> str:
        """The combination's name: `combo`, or the node id for a key made without one."""
        return self.combo or self.nodeid

    @property
    def label(self) -> str:
        """The trial's session group name: TensorBoard's "Trial ID" column.

        The values come first, because the dashboard's column is narrow and
        cuts the rest; the node id after them keeps the name unique in any
        logdir, across sweeps and `parametrize` cases.
        """
        from pytest_hparams.space import format_value

        values = ", ".join(format_value(v) for v in self.hparams.values())
        return f"{values} · {self.group}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodeid": self.nodeid,
            "test": self.test,
            "params": self.params,
            "hparams": dict(self.hparams),
            "case": self.case,
            "repeat": self.repeat,
            "combo": self.group,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialKey:
        return cls(
            data["nodeid"],
            data["test"],
            data["params"],
            dict(data["hparams"]),
            data["case"],
            data.get("repeat"),
            data.get("combo") or data["nodeid"],
        )


class Outcome(enum.StrEnum):
    """How a trial ended, as its table row, JSON entry and merge exit code say."""

    PASSED = "passed"
    FAILED = "failed"  # the test body failed (an assert, a bound, a regression)
    ERROR = "error"  # a fixture failed around it
    XFAILED = "xfailed"  # failed, and marked xfail: pytest's own word
    XPASSED = "xpassed"
    SKIPPED = "skipped"  # skipped by a mark or by pytest.skip() in the body
    RESUMED = "resumed"  # skipped by --hparams-resume; its recorded metrics stand
    CRASHED = "crashed"  # its xdist worker died

    @property
    def ok(self) -> bool:
        """Whether the trial's metrics count: it ran to the end and passed."""
        return self in (Outcome.PASSED, Outcome.RESUMED, Outcome.XPASSED)

    @property
    def bad(self) -> bool:
        """Whether the trial fails a merged run (`python -m pytest_hparams merge`)."""
        return self in (Outcome.FAILED, Outcome.ERROR, Outcome.CRASHED)


def outcome_of(reports: Mapping[str, TestReport]) -> Outcome | None:
    """A trial's outcome from its phase reports; None when it had no call
    phase and nothing failed or skipped (pytest's `--setup-only`)."""
    call = reports.get("call")
    if call is not None:  # `outcome`, not the properties: read for every trial
        if hasattr(call, "wasxfail"):  # set by pytest's xfail handling
            return Outcome.XFAILED if call.outcome == "skipped" else Outcome.XPASSED
        if call.outcome == "failed":
            return Outcome.FAILED
    outcomes = {r.outcome for r in reports.values()}
    if "failed" in outcomes:
        return Outcome.ERROR
    if "skipped" in outcomes:
        return Outcome.SKIPPED
    if call is None:
        return None
    return Outcome.PASSED


@dataclass(slots=True)
class TrialRecord:
    """One trial as the reporting process keeps it.

    Attributes:
      key: The trial's identity.
      outcome: How it ended.
      metrics: What it returned, as floats.
      duration: Seconds over setup, call and teardown.
      comparison: `baseline.compare()`'s verdict, when a baseline was given.
    """

    key: TrialKey
    outcome: Outcome
    metrics: dict[str, float] = field(default_factory=dict)
    duration: float = 0.0
    comparison: dict[str, Any] | None = None

    @property
    def nodeid(self) -> str:
        return self.key.nodeid

    @property
    def test(self) -> str:
        return self.key.test

    @property
    def verdict(self) -> str:
        return str((self.comparison or {}).get("verdict", ""))

    def crashed(self) -> TrialRecord:
        return replace(self, outcome=Outcome.CRASHED, metrics={}, duration=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.key.to_dict(),
            "outcome": self.outcome.value,
            "metrics": dict(self.metrics),
            "duration": self.duration,
            "baseline": self.comparison,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialRecord:
        return cls(
            TrialKey.from_dict(data),
            Outcome(data["outcome"]),
            {k: float(v) for k, v in data["metrics"].items()},
            float(data.get("duration", 0.0)),
            data.get("baseline"),
        )
