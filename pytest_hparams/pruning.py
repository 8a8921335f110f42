"""Optuna studies: stopping hopeless trials early on Optuna's own pruners,
and the study behind `@hparam_search` (`search.py` asks its hparams).

Each pruned or searched sweep is one Optuna study, named by the sweep's node
id, and each trial of it (each repeat too) one Optuna trial: `trial.log`
reports the sweep's primary metric, and the pruner, seeing every other
trial's curve in the same storage, says whether to stop. The storage is a
journal file in a local logdir, an Optuna storage URL (`--hparams-storage`),
or memory.

Optuna is imported here and in `search.py` only, and these modules only
where a sweep prunes or searches.
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


def shown_url(url: str) -> str:
    """A storage URL as messages show it: without its password."""
    import re

    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def storage_for(url: str | None, journal: str | None) -> Any:
    """The Optuna storage: a database URL's, else a journal file (locked by
    Optuna's own file lock), else None for memory."""
    if url is not None:
        return database_storage(url)
    if journal is None:
        return None
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

    os.makedirs(os.path.dirname(journal) or ".", exist_ok=True)  # xdist's temporary one
    lock = JournalFileSymlinkLock(journal)  # the lock Optuna's own writes take
    drop_torn_tail(journal, lock)
    return JournalStorage(JournalFileBackend(journal, lock))


def drop_torn_tail(journal: str, lock: Any) -> None:
    """Cuts a journal's last line when a killed writer left it unfinished.

    Optuna appends each record whole, under its lock, and skips an
    unfinished last line while reading; but the next record appended after
    one would join it into a line no reader can parse, and every later run
    of the study would fail. Under the same lock no write is in progress, so
    a tail without its newline is a write that never finished.
    """
    try:
        size = os.path.getsize(journal)
    except FileNotFoundError:
        return
    if size == 0:
        return
    lock.acquire()
    try:
        with open(journal, "rb+") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) == b"\n":
                return
            f.seek(0)
            end = f.read().rfind(b"\n") + 1  # 0: the only line is torn
            f.truncate(end)
    finally:
        lock.release()


def database_storage(url: str, attempts: int = 8) -> Any:
    """Optuna's storage at a database URL.

    Optuna creates its tables when it first connects. On PostgreSQL, processes
    doing so at once (xdist workers, or a CI matrix's shards, on a fresh
    database) collide in the system catalog, and all but one get an
    IntegrityError; creating them again once the first is done changes
    nothing, so a process that lost tries again, after a random wait.
    """
    import random
    import time

    import sqlalchemy.exc
    from optuna.storages import RDBStorage

    # Not the `random` module's state: pytest-randomly seeds it alike in every
    # xdist worker, and workers waiting alike would collide again.
    jitter = random.SystemRandom()
    for attempt in range(1, attempts):
        try:
            return RDBStorage(url)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            time.sleep(jitter.uniform(0.05, 0.1) * attempt)
    return RDBStorage(url)  # the last attempt's error, if any, is the one raised


class Studies:
    """This process's studies, one per pruned or searched sweep, made on first use.

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
        """The sweep's study; `pruner` None for a search that does not prune."""
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
                pruner=make_pruner(pruner) if pruner is not None else optuna.pruners.NopPruner(),
                load_if_exists=True,
            )
        return study

    def runs(self, study: Any, nodeid: str) -> list[Any]:
        """A pytest trial's runs in the study (Optuna's FrozenTrials), oldest first."""
        return [
            t for t in study.get_trials(deepcopy=False) if t.user_attrs.get(NODEID_ATTR) == nodeid
        ]

    def finished(self, study: Any, nodeid: str) -> Any:
        """A pytest trial's latest finished run in the study, or None."""
        finished = [t for t in self.runs(study, nodeid) if t.state.is_finished()]
        return finished[-1] if finished else None

    def pruned_step(self, test: str, primary: Metric, pruner: object, nodeid: str) -> int | None:
        """The step at which a trial's latest run in the study was pruned, or
        None when it was not (`--hparams-resume` keeps a pruned trial pruned)."""
        from optuna.trial import TrialState

        latest = self.finished(self.study(test, primary, pruner), nodeid)
        if latest is None or latest.state != TrialState.PRUNED or latest.last_step is None:
            return None
        return int(latest.last_step)


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
        self.trial.set_user_attr(NODEID_ATTR, nodeid)
        self.trial.set_user_attr("pid", os.getpid())
        self._told = False

    def report(self, step: int, value: float) -> None:
        """Reports the primary metric at a step, when the sweep prunes.

        Raises:
          TrialPruned: If the pruner stops the trial; Optuna is told so.
        """
        if not self.prunes:
            return
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
