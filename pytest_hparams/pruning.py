"""Stopping hopeless trials early, on Optuna's own pruners: the pruners a
sweep may name, `TrialPruned`, and `StudyTrial`, one pytest trial's Optuna
trial, which `trial.log` reports to. Each repeat is its own Optuna trial.

The studies themselves (one per pruned or searched sweep, shared through a
journal file, a database or memory) are in `studies.py`. Optuna is imported
(`lazy.optuna`) only when a pruner is made or a trial told how it ended.
"""

from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING, Any

import pytest

from pytest_hparams import lazy

if TYPE_CHECKING:
    from pytest_hparams.metrics import Metric

PRUNERS = ("median", "halving", "hyperband")
#: The journal of a local logdir's studies, in its root (TensorBoard reads no
#: file without "tfevents" in its name).
JOURNAL = ".pytest-hparams-optuna.journal"
#: Optuna's lock beside a journal file (`JournalFileSymlinkLock`): a symlink.
JOURNAL_LOCK_SUFFIX = ".lock"
#: The user attribute that ties an Optuna trial to its pytest item.
NODEID_ATTR = "pytest_nodeid"
#: The user attribute that says how a trial the study holds as FAIL ended in
#: pytest: failed, error, skipped, xfailed, interrupted...
OUTCOME_ATTR = "pytest_outcome"


class TrialPruned(pytest.skip.Exception):  # type: ignore[misc,name-defined]
    """Stops a trial the pruner gave up on. pytest's own skip underneath:
    a BaseException, so a test's `except Exception` does not swallow it, and
    raised from a fixture (a warm-up epoch logged in its setup) it skips the
    test as pytest's fixtures expect, tearing the others down."""

    def __init__(self, step: int, again: bool = False) -> None:
        note = " (trial.log was called again after the prune)" if again else ""
        super().__init__(f"pruned at step {step}{note}")
        self.step = step


def is_optuna_prune(error: BaseException) -> bool:
    """Whether a test raised Optuna's own `optuna.TrialPruned`."""
    optuna = sys.modules.get("optuna")  # never imported for a test that did not
    return optuna is not None and isinstance(error, optuna.TrialPruned)


def problem(pruner: object) -> str | None:
    """What is wrong with a `pruner=` value, or None."""
    if pruner is None or pruner in PRUNERS:
        return None
    if isinstance(pruner, str):
        return f"pruner must be one of {', '.join(PRUNERS)} or an optuna pruner (got {pruner!r})"
    optuna = sys.modules.get("optuna")  # loaded: the test file built the pruner with it
    if optuna is not None and isinstance(pruner, optuna.pruners.BasePruner):
        return None
    return (
        f"pruner must be one of {', '.join(PRUNERS)} or an optuna.pruners.BasePruner "
        f"(got {type(pruner).__name__})"
    )


def make_pruner(spec: object) -> Any:
    """Optuna's pruner for a `pruner=` value (its defaults, as Optuna's docs give them)."""
    optuna = lazy.optuna()

    if spec == "median":
        return optuna.pruners.MedianPruner()
    if spec == "halving":  # asynchronous successive halving
        return optuna.pruners.SuccessiveHalvingPruner()
    if spec == "hyperband":
        return optuna.pruners.HyperbandPruner()
    return spec


class StudyTrial:
    """One pytest trial's Optuna trial: asked when the trial first reports
    (a search's, when it starts), told once how the trial ended, as pytest
    and the table say it; `trial.log` reports to it when its sweep prunes.

    Args:
      study: The sweep's study.
      trial: The Optuna trial asked of it (`search.ask` for a search), or
        None to ask one with no parameters when it is first needed: a trial
        skipped before it reported leaves nothing in the study.
      prunes: Whether the sweep has a pruner: without one, steps are not
        sent to the storage at all (a search's sampler needs final values only).
      protected: The trial reports its steps, so that the pruner judges
        the others by its curve, but is never stopped (a baseline's trial).
    """

    def __init__(
        self,
        study: Any,
        nodeid: str,
        primary: Metric,
        trial: Any = None,
        prunes: bool = True,
        protected: bool = False,
    ) -> None:
        self.study = study
        self.nodeid = nodeid
        self.metric = primary.name
        self.group = primary.group
        self.prunes = prunes
        self.protected = protected
        self._trial = trial
        if trial is not None:
            trial.set_user_attr(NODEID_ATTR, nodeid)
        self._told = False
        # Its test returned or raised: a value logged from then on (a
        # fixture's teardown) is reported, but nothing is left to stop.
        self.called = False
        self._reported: set[int] = set()
        self._pruned: TrialPruned | None = None  # raised by report(), kept to find its catcher
        # Set when the storage refused a write (a full disk): the trial goes
        # on unpruned, and the runner warns once with the reason.
        self.lost: OSError | None = None

    @property
    def reported(self) -> bool:
        """Whether the pruner was told the primary metric at some step."""
        return bool(self._reported)

    @property
    def trial(self) -> Any:
        if self._trial is None:
            self._trial = self.study.ask()
            # The one attribute resume reads: each is a write to the storage (a
            # synced journal append, an SQLite commit), paid by every trial.
            self._trial.set_user_attr(NODEID_ATTR, self.nodeid)
        return self._trial

    def report(self, step: int, value: float) -> None:
        """Reports the primary metric at a step, when the sweep prunes.

        Raises:
          TrialPruned: If the pruner stops the trial, or stopped it before.
        """
        self.check_pruned()
        # Optuna takes steps from 0 and one value a step; `trial.log` takes
        # any int32 step, and a step again (an epoch's end logged twice):
        # such a report is left out, as a run without a pruner would.
        if not self.prunes or step < 0 or step in self._reported or self.lost is not None:
            return
        self._reported.add(step)
        if self._told_to_stop(step, value):
            self._pruned = TrialPruned(step)
            raise self._pruned

    def _told_to_stop(self, step: int, value: float) -> bool:
        """Reports the value at `step` to the study; whether its pruner stops
        the trial (never when the storage failed: the trial goes on unpruned)."""
        try:
            trial = self.trial
            trial.report(value, step)
            return not (self.protected or self.called) and trial.should_prune()
        except OSError as e:
            self.lost = e
            return False

    def check_pruned(self) -> None:
        """Raises TrialPruned again when the trial was pruned and the test
        caught it: nothing is logged past its prune."""
        if self._pruned is not None and not self.called:
            raise TrialPruned(self._pruned.step, again=True)

    def swallowed(self) -> tuple[int, str] | None:
        """A prune the test caught and went on from: its step, and the
        `file:line` where the test caught it (the frame its traceback starts in)."""
        pruned, self._pruned = self._pruned, None
        if pruned is None:
            return None
        tb = pruned.__traceback__
        where = "?" if tb is None else f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
        pruned.__traceback__ = None  # its frames are the test's: let them go
        return pruned.step, where

    def end(self, outcome: str, pruned: bool, value: float | None) -> None:
        """Tells the study, once, how the trial ended: PRUNED, COMPLETE with
        a finite `value`, else FAIL with pytest's `outcome` in a user
        attribute (Optuna has no state for a skipped or failed test)."""
        if self._told or self.lost is not None:
            return
        self._told = True
        try:
            self._end(outcome, pruned, value)
        except OSError as e:
            self.lost = e

    def _end(self, outcome: str, pruned: bool, value: float | None) -> None:
        TrialState = lazy.optuna().trial.TrialState

        if pruned:
            self.study.tell(self.trial, state=TrialState.PRUNED)
        elif value is not None and math.isfinite(value):
            self.study.tell(self.trial, values=value)
        elif self._trial is not None:  # a trial that asked nothing leaves nothing
            self._trial.set_user_attr(OUTCOME_ATTR, outcome)
            self.study.tell(self._trial, state=TrialState.FAIL)
