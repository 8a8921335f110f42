"""Each pruned or searched sweep's Optuna study, for one pytest process: where
it is stored (a journal file, a database URL, or memory), the checks made
before any trial runs, a starting trial's Optuna trial (a search's hparams
asked), and what `--hparams-resume` reads back from a study.

Optuna is imported (`lazy.optuna`) only where a sweep prunes or searches.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.util
import math
import os
import random
import re
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from pytest_hparams import lazy
from pytest_hparams.lazy import OPTUNA_EXTRA
from pytest_hparams.pruning import (
    JOURNAL,
    NODEID_ATTR,
    OUTCOME_ATTR,
    StudyTrial,
    make_pruner,
)
from pytest_hparams.search import ask, changed_domain, missing_modules, values_of
from pytest_hparams.storage import RemoteStore
from pytest_hparams.sweep import one_line

#: Between a study's sweep and the run whose trials it holds.
RUN_SEPARATOR = " @ "
#: The study's user attribute naming the metric it ranks trials by.
METRIC_ATTR = "pytest_hparams_metric"
_EPOCH = datetime.datetime(1970, 1, 1)
#: The pip package of a database driver SQLAlchemy imports, by module.
DRIVERS = {"psycopg2": "psycopg2-binary", "psycopg": "psycopg[binary]", "pymysql": "pymysql"}
# The fix for a study that holds what Optuna fixes when a study starts, and a
# run cannot change: its direction, and a searched hparam's kind, log scale
# and choices.
_UNCHANGEABLE_FIX = "name another study with --hparams-study, or undo the change"

if TYPE_CHECKING:
    from pytest_hparams.collect import Compiled
    from pytest_hparams.records import TrialKey
    from pytest_hparams.sampling import Search
    from pytest_hparams.settings import Settings


class Studies:
    """This process's studies, one per pruned or searched sweep, made on first use.

    Args:
      sweeps: The runner's compiled sweeps, by node id (filled as collection goes).
      settings: The session's options.
      journal: The journal the xdist controller gave its workers, if any.
    """

    def __init__(
        self, sweeps: Mapping[str, Compiled], settings: Settings, journal: str | None = None
    ) -> None:
        self.sweeps = sweeps
        self.settings = settings
        self.url = settings.storage
        self.journal = journal_of(settings, journal)
        self._storage: Any = None
        self._studies: dict[tuple[str, str], Any] = {}
        self._history: dict[tuple[str, str], list[Any]] = {}

    def pruner(self, test: str) -> object:
        """The pruner of a sweep, or None: its own, else --hparams-pruner's,
        unless --hparams-no-prune (a sweep without metrics has nothing to watch)."""
        compiled = self.sweeps[test]
        if self.settings.no_prune or not compiled.sweep.metrics:
            return None
        return compiled.pruner if compiled.pruner is not None else self.settings.pruner

    def uses(self, test: str) -> bool:
        """Whether a sweep prunes or searches, and so has a study."""
        return self.sweeps[test].search is not None or self.pruner(test) is not None

    def check(self, opens: bool = True, cases: Mapping[str, set[str]] | None = None) -> None:
        """Refuses, before any trial runs, pruning or a search that cannot work
        here. `opens`: also opens each study; --collect-only runs no trial,
        and an editor that lists the tests runs it often, so it leaves no
        journal or database behind.

        Raises:
          pytest.UsageError: Optuna, a sampler's package or a storage every
            machine reaches is missing, or a study cannot be opened.
        """
        searches = [c.search for c in self.sweeps.values() if c.search is not None]
        if searches:
            what, instead = "@hparam_search", ""
        elif any(self.pruner(t) is not None for t in self.sweeps):
            what, instead = "pruning", ", or run every trial to the end with --hparams-no-prune"
        else:
            return
        self._check_installed(searches, what, instead)
        self._check_shared(what)
        if opens:
            self._open_selected(cases)

    @staticmethod
    def _check_installed(searches: list[Search], what: str, instead: str) -> None:
        """Refuses a run whose studies need Optuna, or a sampler's package,
        where it is not installed."""
        if importlib.util.find_spec("optuna") is None:
            raise pytest.UsageError(
                f"{what} needs Optuna; install it with: {OPTUNA_EXTRA}{instead}"
            )
        for search in searches:
            needs = missing_modules(search.sampler)
            if needs:
                raise pytest.UsageError(
                    f"@hparam_search(sampler={search.sampler!r}) needs {', '.join(needs)}; "
                    f"install it with: pip install {' '.join(needs)}, or use sampler='tpe'"
                )

    def _check_shared(self, what: str) -> None:
        """Refuses studies (for `what`) kept on this machine while the logdir
        is remote, where other machines' trials could not reach them."""
        store = self.settings.store
        if isinstance(store, RemoteStore) and self.url is None:
            raise pytest.UsageError(
                f"{what} with a remote logdir ({store.shown}) needs a study every "
                "machine reaches: add --hparams-storage=URL "
                "(postgresql+psycopg2://... or sqlite:///...)"
            )

    def _open_selected(self, cases: Mapping[str, set[str]] | None) -> None:
        """Opens the study of each case of each sweep this run selected: -k
        leaves the others' studies alone."""
        selected = cases if cases is not None else {test: {""} for test in self.sweeps}
        for test, its_cases in selected.items():
            if self.uses(test):
                for case in sorted(its_cases):
                    self._open(test, case)

    def _open(self, test: str, case: str) -> None:
        """Opens a sweep's study, and refuses one this sweep can no longer use."""
        where = shown_url(self.url) if self.url is not None else str(self.journal)
        try:  # now, not in every trial's setup: an unreachable or unreadable study
            study = self.study(test, case)
        except Exception as e:  # whatever the storage raises: a driver's, a parser's
            raise pytest.UsageError(
                f"the Optuna study of {test} cannot be opened from {where} "
                f"({type(e).__name__}: {one_line(str(e), 200)}); {self._open_fix(e)}"
            ) from None
        self._check_ranking(test, study, where)
        self._check_domain(test, study, where)

    def _open_fix(self, error: Exception) -> str:
        """What to do about a study that could not be opened, by its `error`."""
        missing = _missing_module(error)
        if missing is not None:
            # SQLAlchemy picks a URL's default driver (psycopg2 for a bare
            # postgresql://), which may not be the one installed.
            package = DRIVERS.get(missing, missing)
            return (
                f"install its driver (pip install '{package}'), or name the driver you "
                "have in the URL (postgresql+psycopg://... for psycopg 3)"
            )
        if self.url is not None:
            return "check --hparams-storage and its driver"
        return "move it aside to start the study over"

    def _check_ranking(self, test: str, study: Any, where: str) -> None:
        """Refuses a study (in `where`) that ranks trials by another metric,
        or in another direction, than the sweep's primary metric."""
        primary = self.sweeps[test].sweep.metrics[0]
        ranked = str(study.user_attrs.get(METRIC_ATTR, primary.name))
        if ranked != primary.name:
            raise pytest.UsageError(
                f"the Optuna study {study.study_name!r} in {where} ranks trials by {ranked!r}, "
                f"and the sweep's primary metric is now {primary.name!r}; {_UNCHANGEABLE_FIX}"
            )
        if study.direction.name.lower() != ("maximize" if primary.goal == "max" else "minimize"):
            raise pytest.UsageError(
                f"the Optuna study {study.study_name!r} in {where} "
                f"{study.direction.name.lower()}s {ranked!r}, which the sweep now declares "
                f"with goal={primary.goal!r}; {_UNCHANGEABLE_FIX}"
            )

    def _check_domain(self, test: str, study: Any, where: str) -> None:
        """Refuses a search's study (in `where`) that holds a searched hparam
        of another kind, log scale or choices than the sweep's."""
        search = self.sweeps[test].search
        if search is not None:
            changed = changed_domain(study, search)
            if changed:
                raise pytest.UsageError(
                    f"the Optuna study {study.study_name!r} in {where} holds {changed}, "
                    "and a study cannot change it (--hparams-set on a searched hparam does); "
                    f"{_UNCHANGEABLE_FIX}"
                )

    def study(self, test: str, case: str = "") -> Any:
        """The study of a sweep's parametrize case (made or loaded on first use)."""
        study = self._studies.get((test, case))
        if study is None:
            study = self._studies[test, case] = self._create(test, case)
        return study

    def _create(self, test: str, case: str) -> Any:
        """Makes a sweep case's study in the storage, or loads it if it is
        there, with the primary metric it ranks trials by."""
        optuna = lazy.optuna()

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no line per trial
        if self._storage is None:
            self._storage = storage_for(self.url, self.journal)
        primary = self.sweeps[test].sweep.metrics[0]
        pruner = self.pruner(test)
        study = optuna.create_study(
            storage=self._storage,
            study_name=self.name(test, case),
            direction="maximize" if primary.goal == "max" else "minimize",
            pruner=make_pruner(pruner) if pruner is not None else optuna.pruners.NopPruner(),
            load_if_exists=True,
        )
        if METRIC_ATTR not in study.user_attrs:
            study.set_user_attr(METRIC_ATTR, primary.name)
        return study

    def name(self, test: str, case: str) -> str:
        """A study's name: the sweep, its case, and whose trials it holds.

        A run prunes and searches against its own trials only (its xdist
        workers' and its shards'): the study is this run's, named by
        `--hparams-study`, the CI's run id, or the run itself. Resuming
        continues the latest study of the sweep, unless one is named.
        """
        base = study_base(test, case)
        if self.settings.resume and not self.settings.study:
            assert self._storage is not None
            earlier = runs_of(self._storage, {base})
            if earlier:
                return earlier[-1]
        return f"{base}{RUN_SEPARATOR}{self.settings.run}"

    def end_stale(
        self, keys: Iterable[TrialKey], recorded: Mapping[str, Mapping[str, float]]
    ) -> None:
        """Ends the trials a killed run left RUNNING in the studies it resumes:
        COMPLETE with the value its logdir recorded for a trial that finished
        there, else FAIL. Only trials older than this run: its own are running."""
        TrialState = lazy.optuna().trial.TrialState

        for (test, case), nodeids in self._studied_nodeids(keys).items():
            study = self.study(test, case)
            metric = self.sweeps[test].sweep.metrics[0].name
            for t in running(study, nodeids, before=self.settings.began):
                value = recorded.get(t.user_attrs[NODEID_ATTR], {}).get(metric)
                # Another xdist worker of this run may have ended it first.
                with contextlib.suppress(RuntimeError, ValueError):
                    if value is not None and math.isfinite(value):
                        study.tell(t.number, value)
                    else:
                        study.tell(t.number, state=TrialState.FAIL)

    def _studied_nodeids(self, keys: Iterable[TrialKey]) -> dict[tuple[str, str], set[str]]:
        """The node ids of the trials that have a study, by sweep and case."""
        wanted: dict[tuple[str, str], set[str]] = {}
        for key in keys:
            if self.uses(key.test):
                wanted.setdefault((key.test, key.case), set()).add(key.nodeid)
        return wanted

    def runs(self, key: TrialKey) -> list[Any]:
        """A pytest trial's runs (Optuna's FrozenTrials) in every study of
        its sweep's case, oldest first: a search's trial is given the values
        of its latest run (a rerun, --lf, a run after another), and resume
        reads how it ended, whichever run's study holds it."""
        found = [
            t
            for study in self._earlier(key.test, key.case)
            for t in study.get_trials(deepcopy=False)
            if t.user_attrs.get(NODEID_ATTR) == key.nodeid
        ]
        return sorted(found, key=lambda t: t.datetime_start or _EPOCH)

    def _earlier(self, test: str, case: str) -> list[Any]:
        """Every study of a sweep's case in the storage, this run's among them."""
        found = self._history.get((test, case))
        if found is None:
            optuna = lazy.optuna()

            current = self.study(test, case)
            names = runs_of(self._storage, {study_base(test, case)})
            found = [
                optuna.load_study(study_name=n, storage=self._storage)
                for n in names
                if n != current.study_name
            ]
            found = self._history[test, case] = [*found, current]
        return found

    def finished(self, key: TrialKey) -> Any:
        """A pytest trial's latest finished run in its study, or None."""
        finished = [t for t in self.runs(key) if t.state.is_finished()]
        return finished[-1] if finished else None

    def pruned(self, key: TrialKey) -> tuple[TrialKey, int, dict[str, float]] | None:
        """A trial whose latest run was pruned, or None when it was not, or
        its sweep does not prune (`--hparams-resume` keeps a pruned trial
        pruned): its key (a search's with the hparams it was given), the
        step, and the primary metric's last reported value."""
        if self.pruner(key.test) is None:
            return None
        TrialState = lazy.optuna().trial.TrialState

        latest = self.finished(key)
        if latest is None or latest.state != TrialState.PRUNED or latest.last_step is None:
            return None
        if key.number is not None:
            key = key._replace(hparams=values_of(latest.params))
        step = int(latest.last_step)
        primary = self.sweeps[key.test].sweep.metrics[0].name
        return key, step, {primary: float(latest.intermediate_values[step])}

    def completed(self, key: TrialKey) -> tuple[TrialKey, float] | None:
        """A search trial's latest run, if it completed: its key with the
        hparams it was given, and its primary metric's value."""
        TrialState = lazy.optuna().trial.TrialState

        latest = self.finished(key)
        if latest is None or latest.state != TrialState.COMPLETE:
            return None
        return key._replace(hparams=values_of(latest.params)), float(latest.value)

    def unfinished(self, key: TrialKey) -> TrialKey | None:
        """A search trial whose latest run is still RUNNING (its process was
        killed): its key with the values it was asked, or None."""
        TrialState = lazy.optuna().trial.TrialState

        runs = self.runs(key)
        if not runs or runs[-1].state != TrialState.RUNNING or not runs[-1].params:
            return None
        return key._replace(hparams=values_of(runs[-1].params))

    def ask(
        self, key: TrialKey, given: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, Any] | None, StudyTrial | None]:
        """A starting trial's Optuna trial, if its sweep prunes or searches,
        and a search's values, asked of its sampler: `given` (a report's
        best), else the values its latest earlier run was given, where there
        is one; None for a grid's."""
        if not self.uses(key.test):
            return None, None
        compiled = self.sweeps[key.test]
        study = self.study(key.test, key.case)
        primary = compiled.sweep.metrics[0]
        prunes = self.pruner(key.test) is not None
        protected = self.settings.protects(key.group)
        if compiled.search is None:
            return None, StudyTrial(study, key.nodeid, primary, prunes=prunes, protected=protected)
        assert key.number is not None
        if given is None:
            given = self._latest_params(key)
        asked = ask(study, compiled.search, key.number, given)
        trial = StudyTrial(study, key.nodeid, primary, asked, prunes, protected)
        return values_of(asked.params), trial

    def _latest_params(self, key: TrialKey) -> dict[str, Any] | None:
        """The values a search trial's latest run was given, or None if it has none."""
        runs = self.runs(key)
        return runs[-1].params if runs else None


def _missing_module(error: BaseException | None) -> str | None:
    """The top-level module whose absence caused `error` (Optuna wraps the
    driver's ModuleNotFoundError in an ImportError of its own), or None."""
    while error is not None:
        if isinstance(error, ModuleNotFoundError) and error.name:
            return error.name.split(".")[0]
        error = error.__cause__ or error.__context__
    return None


def shown_url(url: str) -> str:
    """A storage URL as messages show it: without its password."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def storage_for(url: str | None, journal: str | None) -> Any:
    """The Optuna storage: a database URL's, else a journal file (locked by
    Optuna's own file lock), else None for memory."""
    if url is not None:
        return database_storage(url)
    if journal is None:
        return None
    storages = lazy.optuna().storages

    os.makedirs(os.path.dirname(journal) or ".", exist_ok=True)  # xdist's temporary one
    lock = storages.journal.JournalFileSymlinkLock(journal)  # the lock Optuna's own writes take
    drop_torn_tail(journal, lock)
    return storages.JournalStorage(storages.journal.JournalFileBackend(journal, lock))


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
    sqlalchemy_exc = lazy.sqlalchemy_exc()
    rdb_storage = lazy.optuna().storages.RDBStorage

    # Not the `random` module's state: pytest-randomly seeds it alike in every
    # xdist worker, and workers waiting alike would collide again.
    jitter = random.SystemRandom()
    for attempt in range(1, attempts):
        try:
            return rdb_storage(url)
        except (sqlalchemy_exc.IntegrityError, sqlalchemy_exc.ProgrammingError):
            time.sleep(jitter.uniform(0.05, 0.1) * attempt)
    return rdb_storage(url)  # the last attempt's error, if any, is the one raised


def study_base(test: str, case: str) -> str:
    """A study's name before the run's: the sweep, and its parametrize case."""
    return f"{test}[{case}]" if case else test


def journal_of(settings: Settings, journal: str | None = None) -> str | None:
    """The studies' journal file: the one given (the xdist controller's),
    else a local logdir's; None with a storage URL (a remote logdir needs one)."""
    if journal is None and settings.store is not None and settings.storage is None:
        return str(settings.store.root / JOURNAL)
    return journal


def runs_of(storage: Any, bases: set[str]) -> list[str]:
    """The names of the studies of these bases (one per run), oldest first."""
    optuna = lazy.optuna()

    found = [
        s
        for s in optuna.get_all_study_summaries(storage, include_best_trial=False)
        if any(s.study_name.startswith(f"{b}{RUN_SEPARATOR}") for b in bases)
    ]
    return [s.study_name for s in sorted(found, key=lambda s: s.datetime_start or _EPOCH)]


def running(
    study: Any, nodeids: set[str], before: float | None = None, since: float | None = None
) -> list[Any]:
    """The RUNNING trials of `nodeids` in a study, begun before or since a time."""
    TrialState = lazy.optuna().trial.TrialState

    out = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        started = t.datetime_start
        if t.user_attrs.get(NODEID_ATTR) not in nodeids or started is None:
            continue
        if _within(started.timestamp(), before, since):
            out.append(t)
    return out


def _within(when: float, before: float | None, since: float | None) -> bool:
    """Whether a time is before `before` and since `since` (None: no bound)."""
    return (before is None or when < before) and (since is None or when >= since)


def end_crashed(
    url: str | None, journal: str | None, bases: set[str], nodeids: set[str], began: float
) -> None:
    """Ends, as FAIL, the Optuna trials that workers killed in this run left
    RUNNING: the runs of `nodeids`, in the studies of `bases` (see
    `study_base`), begun since `began` (a rerun asked a trial of its own)."""
    optuna = lazy.optuna()
    TrialState = lazy.optuna().trial.TrialState

    storage = storage_for(url, journal)
    if storage is None:
        return
    for name in runs_of(storage, bases):
        study = optuna.load_study(study_name=name, storage=storage)
        study_id = storage.get_study_id_from_name(name)
        for t in running(study, nodeids, since=began):
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
            with contextlib.suppress(RuntimeError, ValueError):  # ended meanwhile
                storage.set_trial_user_attr(trial_id, OUTCOME_ATTR, "crashed")
                study.tell(t.number, state=TrialState.FAIL)
