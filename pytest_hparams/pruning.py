"""Stopping hopeless trials early, on Optuna's own pruners.

Each pruned sweep is one Optuna study, named by the sweep's node id, and each
trial of it (each repeat too) one Optuna trial: `trial.log` reports the
sweep's primary metric, and the pruner, seeing every other trial's curve in
the same storage, says whether to stop. The storage is a journal file in a
local logdir, an Optuna storage URL (`--hparams-storage`), or memory.

Optuna is imported here only, and this module only where a sweep prunes.
"""

from __future__ import annotations

import os
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


def storage_for(url: str | None, journal: str | None) -> Any:
    """The Optuna storage: a URL as Optuna takes it, else a journal file
    (locked by Optuna's own file lock), else None for memory."""
    if url is not None:
        return url
    if journal is None:
        return None
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    os.makedirs(os.path.dirname(journal) or ".", exist_ok=True)  # xdist's temporary one
    return JournalStorage(JournalFileBackend(journal))


class Studies:
    """This process's studies, one per pruned sweep, made on first use.

    Args:
      url: `--hparams-storage`, when given.
      journal: The journal file's path otherwise (a local logdir's, or a
        temporary one shared by xdist workers); None keeps studies in memory.
    """

    def __init__(self, url: str | None = None, journal: str | None = None) -> None:
        self.url = url
        self.journal = journal
        self._storage: Any = None
        self._studies: dict[str, Any] = {}

    def study(self, test: str, primary: Metric, pruner: object) -> Any:
        study = self._studies.get(test)
        if study is None:
            import optuna

            optuna.logging.set_verbosity(optuna.logging.WARNING)  # no line per trial
            if self._storage is None:
                self._storage = storage_for(self.url, self.journal)
            study = self._studies[test] = optuna.create_study(
                storage=self._storage,
                study_name=test,
                direction="maximize" if primary.goal == "max" else "minimize",
                pruner=make_pruner(pruner),
                load_if_exists=True,
            )
        return study

    def pruned_step(self, test: str, primary: Metric, pruner: object, nodeid: str) -> int | None:
        """The step at which a trial's latest run in the study was pruned, or
        None when it was not (`--hparams-resume` keeps a pruned trial pruned)."""
        from optuna.trial import TrialState

        study = self.study(test, primary, pruner)
        runs = [
            t for t in study.get_trials(deepcopy=False) if t.user_attrs.get(NODEID_ATTR) == nodeid
        ]
        finished = [t for t in runs if t.state.is_finished()]
        if not finished or finished[-1].state != TrialState.PRUNED:
            return None
        step = finished[-1].last_step
        return None if step is None else int(step)


class Pruning:
    """One pytest trial's Optuna trial: asked when the trial starts, told how it ended."""

    def __init__(self, study: Any, nodeid: str, primary: Metric) -> None:
        self.study = study
        self.metric = primary.name
        self.group = primary.group
        self.trial = study.ask()
        # The one attribute resume reads: each is a write to the storage (a
        # synced journal append, an SQLite commit), paid by every trial.
        self.trial.set_user_attr(NODEID_ATTR, nodeid)
        self._told = False

    def report(self, step: int, value: float) -> None:
        """Reports the primary metric at a step.

        Raises:
          TrialPruned: If the pruner stops the trial; Optuna is told so.
        """
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
