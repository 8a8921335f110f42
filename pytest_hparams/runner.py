"""The trial lifecycle in one pytest process (the only one, or an xdist
worker): collecting sweeps into items, which items are trials, running their
function, writing their TensorBoard runs, and the record each trial's
teardown report carries. The plugin's hooks (`plugin.Hooks`) call the
`TrialRunner`'s methods of the same names.

Everything done with the records afterwards (the experiment config, baselines,
reports, the table) happens in `reporter.py`, in the reporting process only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Generator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_hparams import MARK, collect, preflight
from pytest_hparams.errors import OverrideError, warn_at
from pytest_hparams.lifecycle import Phase, TrialState
from pytest_hparams.logdir import safe_name, test_dir
from pytest_hparams.options import DIST_INPUT
from pytest_hparams.progress import LiveLine
from pytest_hparams.pruning import StudyTrial, TrialPruned, is_optuna_prune
from pytest_hparams.records import (
    PRUNED_ATTR,
    RECORD_ATTR,
    STARTED_ATTR,
    TRIALS_OUTPUT,
    USAGE_ERROR_OUTPUT,
    Outcome,
    Started,
    TrialKey,
    TrialRecord,
)
from pytest_hparams.studies import Studies
from pytest_hparams.sweep import PRUNED_METRIC
from pytest_hparams.trial import Baseline, Trial, judge
from pytest_hparams.verdicts import Comparison, Verdict

if TYPE_CHECKING:
    from pytest_hparams.collect import Compiled
    from pytest_hparams.settings import Settings
    from pytest_hparams.storage import LocalStore


#: Why a sweep cannot run under xdist's --dist each (one line, with the fix).
DIST_EACH = (
    "--dist each runs every trial on every worker, and pytest-hparams records each "
    "trial once; run sweeps with --dist load (-n N alone), and repeat them with "
    "--hparams-repeats=N"
)


class TrialRunner:
    """Made for the session in every process that runs a sweep.

    Attributes:
      worker: Whether this process is an xdist worker, whose reports travel.
      sweeps: Each swept function's compiled sweep, by its node id.
      trials: Each swept item's `TrialState`, by node id, set once collection ends.
      problems: Usage errors found while collecting, raised once it ends.
    """

    def __init__(
        self, settings: Settings, worker: bool = False, journal: str | None = None
    ) -> None:
        self.settings = settings
        self.worker = worker  # an xdist worker: its reports go to another process
        # The pruners' journal: a local logdir's, or the one the xdist
        # controller gave its workers; None keeps studies in memory.
        self.journal = journal
        self._studies: Studies | None = None
        self.optuna = False  # some sweep prunes or searches: set once collection ends
        # Test bodies run: not under --setup-only or --setup-plan, where a
        # trial neither opens a session nor asks its study (which would hold
        # a failed trial each).
        self._runs = True
        self._asks = False
        self.sweeps: dict[str, Compiled] = {}
        # Every swept item's one state object, by node id, set once collection ends.
        self.trials: dict[str, TrialState] = {}
        self.problems: list[str] = []
        self._announced: set[str] = set()  # sweeps whose definition a report carried
        self._test_dirs: dict[str, str] = {}  # each sweep's folder in a local logdir
        self._unheard: set[str] = set()  # pruned sweeps warned that never reported the metric
        self.live: LiveLine | None = None  # the running trial's line on a terminal
        self._tmp_path_factory: pytest.TempPathFactory | None = None

    @property
    def store(self) -> LocalStore | None:
        return self.settings.store

    def pytest_enter_pdb(self) -> None:
        if self.live is not None:
            self.live.clear()  # the debugger shares the terminal: the trial shows no more

    # --- collection ------------------------------------------------------------

    def pytest_ignore_collect(self, collection_path: Path) -> bool | None:
        # A logdir inside the project holds a directory per trial; walking them
        # for test files made every later run slower, by the size of the logdir.
        if self.store is not None and collection_path == self.store.root:
            return True
        return None

    @staticmethod
    def check_testcase(collector: pytest.Collector, cls: type) -> None:
        # pytest runs a unittest.TestCase's methods itself, never through
        # parametrize: a sweep on one would run once, unswept.
        collect.refuse_unittest(collector, cls)

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if metafunc.definition.get_closest_marker(MARK) is None:
            return
        settings = self.settings
        try:
            compiled = collect.parametrize(metafunc, settings.overrides, settings.repeats)
            self.sweeps[compiled.definition.test] = compiled
        except OverrideError as e:
            self.problems.append(f"--hparams-set: {e}")

    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        if (self.sweeps or self.problems) and not self._prepared(config, items):
            return
        # With nothing swept no item is a trial, and the list is empty: the
        # controller learns that a crashed test was no trial.
        if self.worker:
            config.workeroutput[TRIALS_OUTPUT] = self.collected(items)  # type: ignore[attr-defined]

    def _prepared(self, config: pytest.Config, items: list[pytest.Item]) -> bool:
        """Makes each swept item's state, refuses what collection found
        wrong, selects the items and skips the resumed trials; False when an
        xdist worker refused the run."""
        # Each swept item's identity, once: the runner finds it by node id.
        self.trials = {n: TrialState(k) for n, k in collect.keys_of(items, self.sweeps).items()}
        # --collect-only runs no trial: an editor lists the tests often, and
        # each listing would add to the studies and the logdir.
        listing = bool(config.getoption("collectonly", False))
        self._runs = not config.getoption("setuponly", False)  # --setup-plan sets it too
        if not self._checked(config, items, opens_studies=self._runs and not listing):
            return False
        self._asks = self.optuna and self._runs
        if self.settings.resume and not listing:
            self._resume(items)
        return True

    def _checked(
        self, config: pytest.Config, items: list[pytest.Item], opens_studies: bool
    ) -> bool:
        """Refuses what collection found wrong, then applies shards and
        only-best; False when an xdist worker refused the run."""
        try:
            if getattr(config, "workerinput", {}).get(DIST_INPUT) == "each":
                raise pytest.UsageError(DIST_EACH)
            self.check_collected(opens_studies)
            self._select(config, items)
        except pytest.UsageError as e:
            if not self.worker:
                raise
            # On an xdist worker a UsageError is an INTERNALERROR: the worker runs
            # nothing and hands the message to the controller, which exits with it.
            config.workeroutput[USAGE_ERROR_OUTPUT] = str(e)  # type: ignore[attr-defined]
            config.hook.pytest_deselected(items=list(items))
            items.clear()
            return False
        return True

    def _select(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        """Applies shards and only-best to the collected items."""
        settings = self.settings
        if settings.only_best is not None:
            self._only_best(config, items, settings.only_best)
        if settings.shard is not None:
            self._shard(config, items, *settings.shard)

    def _only_best(self, config: pytest.Config, items: list[pytest.Item], path: Path) -> None:
        """Keeps each sweep's best trial recorded at `path`, deselecting the rest."""
        keep, drop, given = collect.only_best(items, path, self.goals())
        for nodeid, hparams in given.items():
            state = self.trials.get(nodeid)
            if state is not None and state.key.number is not None and hparams:
                state.asked = hparams  # a search's best trains the values it was given
        config.hook.pytest_deselected(items=drop)
        items[:] = keep

    def _shard(
        self, config: pytest.Config, items: list[pytest.Item], index: int, count: int
    ) -> None:
        """Keeps this shard's items, deselecting the other shards'."""
        keys = {n: state.key for n, state in self.trials.items()}
        keep, drop = collect.shard(items, keys, index, count)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep

    def check_collected(self, opens_studies: bool = True) -> None:
        """Refuses, before anything runs, what collection found wrong;
        `opens_studies`: also opens each study, which --collect-only does not."""
        if self.problems:
            raise pytest.UsageError(self.problems[0])
        if not self.sweeps:
            return
        preflight.check(self.sweeps, self.settings)
        # Decided once: a run whose sweeps neither prune nor search loads no Optuna code.
        self.optuna = self._uses_optuna()
        if self.optuna:
            self._check_studies(opens_studies)

    def _uses_optuna(self) -> bool:
        """Whether some collected sweep prunes or searches."""
        settings = self.settings
        return any(c.search or c.pruner for c in self.sweeps.values()) or (
            settings.pruner is not None and not settings.no_prune
        )

    def _check_studies(self, opens_studies: bool) -> None:
        """Says in each sweep's definition whether it prunes, and checks
        each study against the cases collected for it."""
        for test, compiled in self.sweeps.items():
            prunes = self.studies.pruner(test) is not None
            definition = dataclasses.replace(compiled.definition, prunes=prunes)
            self.sweeps[test] = compiled._replace(definition=definition)
        cases: dict[str, set[str]] = {}
        for state in self.trials.values():
            cases.setdefault(state.key.test, set()).add(state.key.case)
        self.studies.check(opens_studies, cases)

    @property
    def studies(self) -> Studies:
        """The Optuna studies of the sweeps that prune or search (made on first use)."""
        if self._studies is None:
            self._studies = Studies(self.sweeps, self.settings, self.journal)
        return self._studies

    def goals(self) -> dict[str, tuple[str, str]]:
        """Each collected sweep's primary metric and its goal."""
        return {
            test: (c.sweep.metrics[0].name, c.sweep.metrics[0].goal)
            for test, c in self.sweeps.items()
            if c.sweep.metrics
        }

    # --- one trial ---------------------------------------------------------------

    # Not tryfirst: after pytest's skip marks (a resumed trial asks nothing),
    # before fixtures, which may read trial.hparams.
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        state = self.trials.get(item.nodeid)
        if state is not None:
            # The trial starts, fixtures and all: a search's asks for its
            # hparams now (a failure to reach the study is this item's setup
            # error; the setup report then carries them, so a crashed
            # worker's trial shows its values), and its session is opened.
            trial = self.trial_of(state)
            if self._runs:
                trial.open()

    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool | None:
        state = self.trials.get(pyfuncitem.nodeid)
        if state is None:
            return None
        if self.live is not None:
            self.live.begin(pyfuncitem.name)
            self.trial_of(state).live = self.live
        try:
            self.call(pyfuncitem, state)
        finally:
            self._called(state)
        # Handled: pytest's own pyfunc_call would warn that the test returned a value.
        return True

    def _called(self, state: TrialState) -> None:
        """Clears the live line once the test returned or raised, and tells
        the trial's study that its teardown cannot be pruned."""
        if self.live is not None:
            self.live.clear()
        if state.trial is not None:
            state.trial.live = None
            if state.trial.study is not None:
                state.trial.study.called = True

    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        state = self.trials.get(report.nodeid)
        if state is None:
            return report
        if report.when == "setup":  # a run of the item begins (a rerun too)
            self._begin(item, state, report)
        state.reports[report.when] = report
        if report.when == "setup" and call.excinfo is not None:
            self._pruned_in_setup(state, report, call.excinfo.value)
        if report.skipped and state.pruned_at is not None:  # pruned, or resumed as pruned
            setattr(report, PRUNED_ATTR, state.pruned_at)
        if report.when == "teardown":
            assert isinstance(item, pytest.Function)  # only functions are swept
            self._put_record(item, state, report)
        return report

    def _pruned_in_setup(
        self, state: TrialState, report: pytest.TestReport, error: BaseException
    ) -> None:
        """Marks the trial pruned when its setup raised a prune (a fixture's
        warm-up epoch, before its test ran), said as a pruned call says it."""
        if not isinstance(error, TrialPruned):
            return
        self._mark_pruned(state, error.step)
        if isinstance(report.longrepr, tuple):
            report.longrepr = (*report.longrepr[:2], f"Skipped: {error}")

    def _begin(self, item: pytest.Item, state: TrialState, report: pytest.TestReport) -> None:
        """A run of the trial begins: its setup report carries what the
        controller needs should its worker die, and, on its first run, its
        hparams become JUnit XML properties of its testcase (read from the
        teardown report, made after this)."""
        if state.runs == 0:
            item.user_properties += [(f"hparam.{k}", v) for k, v in state.hparams.items()]
            if state.key.repeat is not None:
                item.user_properties.append(("repeat", state.key.repeat))
        state.begin()
        started = self.started(state)
        if started is not None:
            setattr(report, STARTED_ATTR, started)

    def _put_record(
        self, item: pytest.Function, state: TrialState, report: pytest.TestReport
    ) -> None:
        """Ends the trial and puts its record on its teardown report."""
        record = self.finish(item, state)
        if record is None:
            return
        setattr(report, RECORD_ATTR, record)
        if record.outcome is Outcome.RESUMED:
            # Its recorded metrics stand: JUnit XML shows them too, as for a
            # trial that ran (it reads this report's list).
            report.user_properties += [(f"metric.{k}", v) for k, v in record.metrics.items()]

    def trial_of(self, state: TrialState, starts: bool = True) -> Trial:
        """The trial object of an item: made as its setup begins, or at its
        end when its setup never made it (a skip mark).

        Args:
          starts: The trial is about to run: it gets its Optuna trial, if its
            sweep prunes or searches (a search's values are asked now).
        """
        if state.trial is None:
            study = None
            if starts and self._asks:
                asked, study = self._ask(state)
                if asked is not None:
                    state.asked = asked
            state.trial = self._new_trial(state.record_key, study)
        return state.trial

    def _new_trial(self, key: TrialKey, study: StudyTrial | None) -> Trial:
        """A trial of `key`, with its run directory in a local logdir, and its study."""
        run = self._run_dir(key) if self.store is not None else None
        sweep = self.sweeps[key.test].sweep
        trial = Trial(key, sweep, self.store, self._scratch, self.settings.seed, run)
        trial.study = study
        return trial

    def _ask(self, state: TrialState) -> tuple[dict[str, Any] | None, StudyTrial | None]:
        """A trial's study, and a search's values; a storage that refuses
        the search's ask (a full disk) fails its setup in one line."""
        try:
            return self.studies.ask(state.key, state.asked)
        except OSError as e:
            pytest.fail(self._study_lost(state.key, e).split("; the trial")[0], pytrace=False)

    def _run_dir(self, key: TrialKey) -> str:
        assert self.store is not None
        folder = self._test_dirs.get(key.test)
        if folder is None:
            folder = self._test_dirs[key.test] = test_dir(str(self.store.root), key.folder)
        return f"{folder}{os.sep}{safe_name(key.params)}"

    def _resume(self, items: list[pytest.Item]) -> None:
        """Skips, by pytest's own skip mark (reported at the test's line),
        the trials --hparams-resume does not run again. Decided here, once."""
        assert self.store is not None
        studies = self.studies if self.optuna else None
        for item in items:
            state = self.trials.get(item.nodeid)
            if state is None:
                continue
            found = preflight.resumed(state.key, self.store, self.sweeps, studies)
            if found is not None:
                state.resume(found.key.hparams, found.metrics, found.pruned_at)
                item.add_marker(pytest.mark.skip(reason=found.reason))
        if studies is not None:
            self._end_stale(studies)

    def _end_stale(self, studies: Studies) -> None:
        """Ends the trials a killed run left RUNNING in the resumed studies,
        with the metrics the logdir recorded for them."""
        recorded = {n: s.recorded for n, s in self.trials.items() if s.recorded is not None}
        studies.end_stale([s.key for s in self.trials.values()], recorded)

    def call(self, item: pytest.Function, state: TrialState) -> None:
        """Runs a swept test function (its trial started at setup), keeps its
        metrics, and applies the gates."""
        trial = state.trial
        assert trial is not None
        kwargs = self._arguments(item, state)
        try:
            result = item.obj(**kwargs)
        except BaseException as e:
            self._cut_short(state, e)
            raise
        swallowed = trial.study.swallowed() if trial.study is not None else None
        if swallowed is not None:
            return self._stop_swallowed(item, state, *swallowed)
        self._judge(item, state, trial, result)

    def _judge(self, item: pytest.Function, state: TrialState, trial: Trial, result: Any) -> None:
        """Keeps what the test returned as the trial's metrics, warns its
        notes, and fails the test on its problems (a missed gate)."""
        declared = self.sweeps[state.key.test].sweep.metrics
        baseline = self._baseline(state.key)
        problems, notes = judge(trial, result, declared, baseline)
        self._check_reported(item, trial)
        self._set_properties(item, trial)
        for note in notes:
            warn_at(item, f"{state.key.nodeid} {note}")
        if problems:  # failed outside any except block, so no chained traceback shows
            pytest.fail(f"{state.key.nodeid} {'; '.join(problems)}", pytrace=False)

    def _cut_short(self, state: TrialState, error: BaseException) -> None:
        """Ends a trial whose test raised: a prune (ours, or Optuna's own
        idiom) is raised again as pytest's skip; anything else leaves the
        trial its last logged values as its metrics, as TensorBoard shows
        them, and the caller raises it again."""
        assert state.trial is not None
        if isinstance(error, TrialPruned):
            self._stop(state, error.step, str(error))
        if is_optuna_prune(error):  # raised by the test
            self._stop(state, state.trial.step)
        # Cut short: never a SUCCESS. (pytest reports a SystemExit, as
        # argparse raises it, as the test's failure: so does the trial.)
        if isinstance(error, (KeyboardInterrupt, pytest.exit.Exception)):
            self.abort(state)
        else:
            state.trial.metrics = dict(state.trial.last)

    def _arguments(self, item: pytest.Function, state: TrialState) -> dict[str, Any]:
        """The test function's arguments: a search's asked values replace
        the None placeholders it was collected with."""
        compiled = self.sweeps[state.key.test]
        kwargs = {n: item.funcargs[n] for n in compiled.argnames if n in item.funcargs}
        if compiled.search is not None:
            _put_asked(kwargs, state.hparams)
        return kwargs

    def _stop_swallowed(
        self, item: pytest.Function, state: TrialState, step: int, where: str
    ) -> None:
        """Ends a trial whose test caught its prune and went on, as pruned."""
        with contextlib.suppress(ValueError):  # shown from the rootdir, as pytest does
            where = str(Path(where).relative_to(item.config.rootpath))
        warn_at(
            item,
            f"{state.key.nodeid} was pruned at step {step}, but the test caught "
            f"the prune at {where} and went on; it is recorded as pruned. "
            "Let TrialPruned propagate (it is a BaseException: catch Exception instead)",
        )
        self._stop(state, step)

    @staticmethod
    def _set_properties(item: pytest.Function, trial: Trial) -> None:
        """The trial's metrics and verdict as JUnit XML properties; a rerun's
        attempt replaces the one before (JUnit XML shows the last)."""
        properties = [
            p for p in item.user_properties if not p[0].startswith("metric.") and p[0] != "baseline"
        ]
        properties += [(f"metric.{k}", v) for k, v in trial.metrics.items()]
        if trial.comparison is not None:
            properties.append(("baseline", trial.comparison.verdict.value))
        item.user_properties[:] = properties

    def _check_reported(self, item: pytest.Function, trial: Trial) -> None:
        """Warns, once a sweep, when its pruner was never told the primary
        metric: trial.log() under another name leaves pruning off."""
        study = trial.study
        test = trial.key.test
        if study is None or not study.prunes or study.reported or test in self._unheard:
            return
        if not trial.logged:  # a test that logs nothing at all: plainly no curve to judge
            return
        self._unheard.add(test)
        logged = ", ".join(sorted(trial.logged))
        warn_at(
            item,
            f"{test} prunes on {study.metric!r}, but its trials never reported it "
            f"(trial.log logged: {logged}); nothing can be pruned: log {study.metric!r}, "
            "or declare the metric you log first in metrics=",
        )

    def _stop(self, state: TrialState, step: int, reason: str = "") -> None:
        """Ends a trial its pruner stopped: its curve so far stands, its last
        values are its metrics, and pytest reports it as pruned, neither
        passed nor failed (a skip, so -x, --lf and the exit code pass it)."""
        self._mark_pruned(state, step)
        pytest.skip(reason or f"pruned at step {step}")

    def _mark_pruned(self, state: TrialState, step: int) -> None:
        assert state.trial is not None
        state.pruned_at = state.trial.pruned_at = step
        state.phase = Phase.PRUNED
        state.trial.metrics = dict(state.trial.last)
        entries = self.settings.baseline
        if entries is not None and state.key.group in entries:
            # Not judged: not a regression.
            state.trial.comparison = Comparison(Verdict.PRUNED)

    def _baseline(self, key: TrialKey) -> Baseline | None:
        """What a trial is judged against under `--hparams-gate each`: its
        baseline entry (None: a NEW trial), or None when it is not judged
        alone. A search's entries held other hparams: see gates.decide."""
        entries = self.settings.baseline
        if entries is None or self.settings.gate != "each" or key.number is not None:
            return None
        return Baseline(entries.get(key.group), self.settings.tolerance)

    def started(self, state: TrialState) -> Started | None:
        """What the setup report carries, or None: on an xdist worker, enough
        for the controller to end the trial should the worker die; anywhere,
        the sweep's definition the first time this process runs it."""
        test = state.key.test
        first = test not in self._announced
        if not self.worker and not first:
            return None
        self._announced.add(test)
        return Started(
            state.record_key if self.worker else None,
            # Where a remote logdir's trial is staged, should its worker die.
            self.store.staging if self.worker and self.store is not None else None,
            self.sweeps[test].definition if first else None,
        )

    def collected(self, items: list[pytest.Item]) -> str:
        """What a setup report would carry for each trial of `items`, for an
        xdist worker's output. A worker that dies in a trial's setup never
        sends its setup report, nor does one that dies mid-trial under
        pytest-rerunfailures (which sends a run's reports after its
        teardown): the controller finds the trial here instead, in the
        output of a worker that lived to the end. One JSON string: it costs
        execnet a fraction of a list of dicts, and is read only on a crash."""
        out, seen = [], set()
        for item in items:
            state = self.trials.get(item.nodeid)
            if state is not None:
                test = state.key.test
                definition = self.sweeps[test].definition if test not in seen else None
                seen.add(test)
                out.append(Started(state.record_key, None, definition).to_dict())
        return json.dumps(out, separators=(",", ":"))

    def finish(self, item: pytest.Function, state: TrialState) -> TrialRecord | None:
        """Ends a trial after its teardown, from the outcome decided once on
        its state: its TensorBoard session, its study and its record agree.
        Returns its record, or None when no test body ran (`--setup-only`,
        `--setup-plan`): nothing is recorded."""
        # Nothing is recorded where no test body runs, not even a fixture's error.
        outcome = state.outcome() if self._runs else None
        resumed = state.phase is Phase.RESUMED  # pruned too: its recorded session stands
        state.phase = Phase.FINISHED
        if outcome is None:
            self._discard(state)
            return None
        # Made here when its setup never made it (a skip mark, an unreachable study).
        trial = state.trial or self.trial_of(state, starts=False)
        if outcome is Outcome.RESUMED or resumed:
            self._keep_recorded(state, trial, outcome)
        elif outcome is Outcome.SKIPPED:
            trial.discard()
        else:
            if "call" not in state.reports:  # its test never ran (a fixture's error)
                trial.metrics = dict(trial.last)  # what it logged, as TensorBoard shows it
            self._end_session(trial, outcome)
        state.decided = outcome
        trial.tell(outcome)
        state.trial = None  # ended everywhere: a Ctrl-C from here on has nothing to cut short
        self._warn_unwritten(item, state.key, trial)
        return self._record(state, trial, outcome)

    @staticmethod
    def _discard(state: TrialState) -> None:
        """Drops the trial of an item whose test body never ran: nothing of it is kept."""
        if state.trial is not None:
            state.trial.discard()
        state.trial = None

    @staticmethod
    def _record(state: TrialState, trial: Trial, outcome: Outcome) -> TrialRecord:
        """The ended trial's record, for its teardown report."""
        duration = sum([r.duration for r in state.reports.values()])
        metrics = dict(trial.metrics)
        return TrialRecord(
            state.record_key, outcome, metrics, duration, trial.comparison, state.pruned_at
        )

    def _keep_recorded(self, state: TrialState, trial: Trial, outcome: Outcome) -> None:
        """A resumed trial: the session recorded before stays, with its
        metrics; it is shown against its baseline, and never fails."""
        trial.discard()
        trial.metrics = dict(state.recorded or {})
        baseline = self._baseline(state.key) if outcome is Outcome.RESUMED else None
        if baseline is not None:
            declared = self.sweeps[state.key.test].sweep.metrics
            comparison = baseline.compare(trial.metrics, declared, state.key.repeat)
            if comparison is not None:
                trial.comparison = dataclasses.replace(comparison, gating=False)

    @staticmethod
    def _end_session(trial: Trial, outcome: Outcome) -> None:
        """Ends a trial's TensorBoard session: SUCCESS if it passed, else
        FAILURE (a fixture's error too, as in the table). The dashboard's
        pruned column: every trial of a pruned sweep, and one that raised
        optuna.TrialPruned where nothing prunes."""
        extra = None
        if (trial.study is not None and trial.study.prunes) or outcome is Outcome.PRUNED:
            extra = {PRUNED_METRIC: 1.0 if outcome is Outcome.PRUNED else 0.0}
        trial.finish(success=outcome in (Outcome.PASSED, Outcome.XPASSED), extra=extra)

    def _warn_unwritten(self, item: pytest.Function, key: TrialKey, trial: Trial) -> None:
        """Warns, in pytest's summary, when the trial's study or its
        TensorBoard run could not be written."""
        if trial.study is not None and trial.study.lost is not None:
            warn_at(item, self._study_lost(key, trial.study.lost), reporting=True)
        if trial.write_error is not None:
            warn_at(item, str(trial.write_error), reporting=True)

    def _study_lost(self, key: TrialKey, error: OSError) -> str:
        where = error.filename or self.studies.journal or self.settings.storage or "memory"
        reason = error.strerror or str(error)
        return (
            f"{key.nodeid}: its Optuna study could not be written at {where} "
            f"({type(error).__name__}: {reason}); the trial went on unpruned, and the "
            "study does not hold it"
        )

    def abort(self, state: TrialState) -> None:
        """Ends a trial cut short (Ctrl-C): its session reads as unknown, its
        study says FAIL, unless it was cut short as it was being told how it ended."""
        trial, state.trial = state.trial, None
        if trial is not None:
            trial.abort(told=state.decided)

    def close(self) -> None:
        """Closes trials cut short (Ctrl-C in a fixture): they read as unknown."""
        for state in self.trials.values():
            self.abort(state)
        if self.store is not None:
            self.store.close()
        if self.live is not None:
            self.live.close()

    def pytest_report_to_serializable(
        self, report: pytest.TestReport
    ) -> Generator[None, dict[str, Any] | None, dict[str, Any] | None]:
        data = yield
        # Typed in this process, plain dicts where they travel: to the xdist
        # controller, and into what other plugins write (pytest-reportlog).
        # A report from a worker carries dicts already (a controller-side
        # plugin such as pytest-reportlog serializes it again).
        if data is not None:
            for attr in (RECORD_ATTR, STARTED_ATTR):
                value = getattr(report, attr, None)
                if value is not None and not isinstance(value, dict):
                    data[attr] = value.to_dict()
        return data

    def trial_for(self, nodeid: str, tmp_path_factory: pytest.TempPathFactory) -> Trial | None:
        """The `trial` fixture's value: the item's running trial, None when
        the item is no trial."""
        state = self.trials.get(nodeid)
        if state is None:
            return None
        self._tmp_path_factory = tmp_path_factory
        return self.trial_of(state)

    def _scratch(self) -> Path:
        """A trial's run directory without a logdir: in pytest's own temporary
        tree, kept and pruned by pytest like tmp_path's."""
        # Set by the `trial` fixture: the one way a test reaches trial.logdir.
        assert self._tmp_path_factory is not None
        return self._tmp_path_factory.mktemp("hparams-trial")


def _put_asked(kwargs: dict[str, Any], hparams: Mapping[str, Any]) -> None:
    """Replaces a search's None placeholders in `kwargs` with its asked values."""
    kwargs.update((n, v) for n, v in hparams.items() if n in kwargs)
    if "hparams" in kwargs:
        kwargs["hparams"] = dict(hparams)
