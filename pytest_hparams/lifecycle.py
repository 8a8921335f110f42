"""One trial's state in the process that runs it, from collection to its
record: `TrialState`, with its lifecycle as the `Phase` enum, the way Optuna
keeps one `FrozenTrial` with a `TrialState`.

The runner keeps one `TrialState` per swept item and nothing else keyed by
node id: the trial's key (never rewritten), a search's asked values, the
running `Trial`, its phase reports, where its pruner stopped it and what
`--hparams-resume` recorded of it all live here, and its outcome is decided
here once, from its phase reports, when its teardown ends.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pytest_hparams.records import PRUNED_ATTR, Outcome
from pytest_hparams.sweep import Value

if TYPE_CHECKING:
    import pytest

    from pytest_hparams.records import TrialKey
    from pytest_hparams.trial import Trial


class Phase(enum.Enum):
    """Where a trial is in its lifecycle, in the process that runs it."""

    COLLECTED = "collected"  # an item of a sweep, not started
    RESUMED = "resumed"  # --hparams-resume skips it: its recorded metrics stand
    RUNNING = "running"  # its setup began (a search's values were asked then)
    PRUNED = "pruned"  # its pruner stopped it, or the test raised optuna.TrialPruned
    FINISHED = "finished"  # its teardown ended: its record is made


@dataclass(slots=True)
class TrialState:
    """A swept item's trial, as the runner holds it.

    Attributes:
      key: The item's identity, computed once at collection.
      asked: A search's values, once its study gave them (or the values
        --hparams-resume found for it); None for a grid's trial.
      trial: The `Trial` behind the fixture, from its first use to its end.
      reports: The phase reports of its latest run (a rerun starts anew).
      pruned_at: The step at which it was pruned.
      recorded: The metrics --hparams-resume keeps for it.
      runs: How many times its setup began (pytest-rerunfailures reruns it).
    """

    key: TrialKey
    phase: Phase = Phase.COLLECTED
    asked: Mapping[str, Value] | None = None
    trial: Trial | None = None
    reports: dict[str, pytest.TestReport] = field(default_factory=dict)
    pruned_at: int | None = None
    recorded: dict[str, float] | None = None
    runs: int = 0
    decided: Outcome | None = None  # how its latest run ended, once its teardown is done

    @property
    def hparams(self) -> Mapping[str, Value]:
        """The trial's values: a search's as asked, a grid's as collected."""
        return self.key.hparams if self.asked is None else self.asked

    @property
    def record_key(self) -> TrialKey:
        """The key its record carries: with a search's asked values."""
        return self.key if self.asked is None else self.key._replace(hparams=dict(self.asked))

    def resume(
        self, hparams: Mapping[str, Value], metrics: dict[str, float], pruned_at: int | None
    ) -> None:
        """--hparams-resume keeps what the trial recorded: it will not run."""
        if self.key.number is not None:
            self.asked = hparams  # the values its search gave it
        self.recorded = metrics
        self.pruned_at = pruned_at
        self.phase = Phase.RESUMED

    def begin(self) -> None:
        """A run of the item begins (its setup report came): a rerun forgets the last."""
        self.reports = {}
        self.runs += 1
        self.decided = None
        if self.phase is not Phase.RESUMED:
            self.phase = Phase.RUNNING
            self.pruned_at = None

    def outcome(self) -> Outcome | None:
        """How the trial ended, decided once from its phase reports; None
        when no test body ran and nothing failed or skipped (--setup-only)."""
        call = self.reports.get("call")
        body = _body_outcome(call)
        if body is not None:
            return body
        if any(hasattr(r, "wasxfail") for r in self.reports.values()):
            return Outcome.XFAILED  # pytest.xfail() in a fixture: pytest's XFAIL
        phases = self._phases_outcome()
        if phases is not None:
            return phases
        return None if call is None else Outcome.PASSED

    def _phases_outcome(self) -> Outcome | None:
        """ERROR, PRUNED, RESUMED or SKIPPED, as the reports of all its phases
        say, in that order of precedence; None when they say none of these."""
        seen = {r.outcome for r in self.reports.values()}
        # A fixture's error is an error everywhere, a pruned trial's too.
        if "failed" in seen:
            return Outcome.ERROR
        if self._was_pruned():
            return Outcome.PRUNED
        if "skipped" in seen:
            return Outcome.RESUMED if self.phase is Phase.RESUMED else Outcome.SKIPPED
        return None

    def _was_pruned(self) -> bool:
        """Whether its pruner stopped it: here, or where a report came from."""
        return self.pruned_at is not None or any(
            hasattr(r, PRUNED_ATTR) for r in self.reports.values()
        )


def _body_outcome(call: pytest.TestReport | None) -> Outcome | None:
    """XFAILED or XPASSED for an xfail-marked test body, FAILED for a failed
    one; None for any other (or none)."""
    if call is None:
        return None
    if hasattr(call, "wasxfail"):  # set by pytest's xfail handling
        return Outcome.XFAILED if call.outcome == "skipped" else Outcome.XPASSED
    return Outcome.FAILED if call.outcome == "failed" else None
