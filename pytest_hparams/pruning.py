"""Stopping hopeless trials early, on Optuna's own pruners: the pruners a
sweep may name, `TrialPruned`, and `StudyTrial`, one pytest trial's Optuna
trial, which `trial.log` reports to. Each repeat is its own Optuna trial.

The studies themselves (one per pruned or searched sweep, shared through a
journal file, a database or memory) are in `studies.py`. Optuna is imported
here only inside functions, and this module is loaded where a sweep prunes
or searches (and by collection, for `problem`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_hparams.metrics import Metric

PRUNERS = ("median", "halving", "hyperband")
OPTUNA_EXTRA = "pip install 'pytest-hparams[optuna]'"
#: The journal of a local logdir's studies, in its root (TensorBoard reads no
#: file without "tfevents" in its name).
JOURNAL = ".pytest-hparams-optuna.journal"
#: The user attribute that ties an Optuna trial to its pytest item.
NODEID_ATTR = "pytest_nodeid"


class TrialPruned(BaseException):
    """Stops a trial the pruner gave up on. A BaseException, as pytest's own
    `Skipped` is, so a test's `except Exception` does not swallow it."""

    def __init__(self, step: int) -> None:
        super().__init__(f"pruned at step {step}")
        self.step = step


def problem(pruner: object) -> str | None:
    """What is wrong with a `pruner=` value, or None."""
    if pruner is None or pruner in PRUNERS:
        return None
    if isinstance(pruner, str):
        return f"pruner must be one of {', '.join(PRUNERS)} or an optuna pruner (got {pruner!r})"
    if type(pruner).__module__.startswith("optuna.") and hasattr(pruner, "prune"):
        return None
    return (
        f"pruner must be one of {', '.join(PRUNERS)} or an optuna.pruners.BasePruner "
        f"(got {type(pruner).__name__})"
    )


def make_pruner(spec: object) -> Any:
    """Optuna's pruner for a `pruner=` value (its defaults, as Optuna's docs give them)."""
    import optuna

    if spec == "median":
        return optuna.pruners.MedianPruner()
    if spec == "halving":  # asynchronous successive halving
        return optuna.pruners.SuccessiveHalvingPruner()
    if spec == "hyperband":
        return optuna.pruners.HyperbandPruner()
    return spec


class StudyTrial:
    """One pytest trial's Optuna trial: asked when the trial starts, told how
    it ended; `trial.log` reports to it when its sweep prunes.

    Args:
      study: The sweep's study.
      trial: The Optuna trial asked of it (`search.ask` for a search), or
        None to ask one with no parameters.
      prunes: Whether the sweep has a pruner: without one, steps are not
        sent to the storage at all (a search's sampler needs final values only).
    """

    def __init__(
        self, study: Any, nodeid: str, primary: Metric, trial: Any = None, prunes: bool = True
    ) -> None:
        self.study = study
        self.metric = primary.name
        self.group = primary.group
        self.prunes = prunes
        self.trial = study.ask() if trial is None else trial
        # The one attribute resume reads: each is a write to the storage (a
        # synced journal append, an SQLite commit), paid by every trial.
        self.trial.set_user_attr(NODEID_ATTR, nodeid)
        self._told = False
        self._reported: set[int] = set()

    def report(self, step: int, value: float) -> None:
        """Reports the primary metric at a step, when the sweep prunes.

        Raises:
          TrialPruned: If the pruner stops the trial; Optuna is told so.
        """
        # Optuna takes steps from 0 and one value a step; `trial.log` takes
        # any int32 step, and a step again (an epoch's end logged twice):
        # such a report is left out, as a run without a pruner would.
        if not self.prunes or step < 0 or step in self._reported:
            return
        self._reported.add(step)
        self.trial.report(value, step)
        if self.trial.should_prune():
            self.tell_pruned()
            raise TrialPruned(step)

    def tell_pruned(self) -> None:
        from optuna.trial import TrialState

        self._tell(state=TrialState.PRUNED)

    def tell(self, value: float | None) -> None:
        """The trial ended: with the primary metric's final value, or failed (None)."""
        import math

        from optuna.trial import TrialState

        if value is None or not math.isfinite(value):
            self._tell(state=TrialState.FAIL)
        else:
            self._tell(values=value)

    def _tell(self, **outcome: Any) -> None:
        if not self._told:
            self._told = True
            self.study.tell(self.trial, **outcome)
