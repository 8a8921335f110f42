"""The trial lifecycle in one pytest process (the only one, or an xdist
worker): collecting sweeps into items, which items are trials, running their
function, writing their TensorBoard runs, and the record each trial's
teardown report carries. Every hook is a method of `TrialRunner`.

Everything done with the records afterwards (the experiment config, baselines,
reports, the table) happens in `reporter.py`, in the reporting process only.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Generator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_hparams import MARK
from pytest_hparams.errors import warn_at
from pytest_hparams.records import (
    PRUNED_ATTR,
    RECORD_ATTR,
    STARTED_ATTR,
    TRIALS_OUTPUT,
    USAGE_ERROR_OUTPUT,
    Outcome,
)

if TYPE_CHECKING:
    from pytest_hparams.collect import Compiled
    from pytest_hparams.pruning import TrialPruned
    from pytest_hparams.records import Started, TrialKey, TrialRecord
    from pytest_hparams.settings import Settings
    from pytest_hparams.storage import LocalStore
    from pytest_hparams.studies import Studies
    from pytest_hparams.trial import Trial


class TrialRunner:
    """Registered for the session in every process, like pytest's own plugins.

    Attributes:
      worker: Whether this process is an xdist worker, whose reports travel.
      sweeps: Each swept function's compiled sweep, by its node id.
      keys: Each swept item's `TrialKey`, by node id, set once collection ends.
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
        # Trials ask their studies: not where no test body runs (--setup-only,
        # --setup-plan), which would leave the study a failed trial each.
        self._asks = False
        self._pruned: dict[str, int] = {}  # node id -> the step its pruner stopped it
        self.sweeps: dict[str, Compiled] = {}
        self.keys: dict[str, TrialKey] = {}
        # Each trial's phase reports of its latest run, by node id: a rerun
        # keeps its item's entry, so JUnit properties are added once.
        self._phases: dict[str, dict[str, pytest.TestReport]] = {}
        self.problems: list[str] = []
        self._trials: dict[str, Trial] = {}
        self._resumed: dict[str, dict[str, float]] = {}  # node id -> recorded metrics
        self._announced: set[str] = set()  # sweeps whose definition a report carried
        self._test_dirs: dict[str, str] = {}  # each sweep's folder in a local logdir

    @property
    def store(self) -> LocalStore | None:
        return self.settings.store

    # --- collection ------------------------------------------------------------

    def pytest_ignore_collect(self, collection_path: Path) -> bool | None:
        # A logdir inside the project holds a directory per trial; walking them
        # for test files made every later run slower, by the size of the logdir.
        if self.store is not None and collection_path == self.store.root:
            return True
        return None

    @pytest.hookimpl(wrapper=True)
    def pytest_pycollect_makeitem(
        self, collector: pytest.Collector, name: str, obj: object
    ) -> Generator[None, Any, Any]:
        result = yield
        # pytest runs a unittest.TestCase's methods itself, never through
        # parametrize: a sweep on one would run once, unswept.
        unittest = sys.modules.get("unittest")
        if unittest is not None and isinstance(obj, type) and issubclass(obj, unittest.TestCase):
            from pytest_hparams.collect import refuse_unittest

            refuse_unittest(collector, obj)
        return result

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if metafunc.definition.get_closest_marker(MARK) is None:
            return
        from pytest_hparams import collect
        from pytest_hparams.errors import OverrideError

        settings = self.settings
        try:
            compiled = collect.parametrize(metafunc, settings.overrides, settings.repeats)
            self.sweeps[compiled.definition.test] = compiled
        except OverrideError as e:
            self.problems.append(f"--hparams-set: {e}")

    @pytest.hookimpl(trylast=True)  # after -k, -m and plugins that reorder or deselect
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        if not self.sweeps and not self.problems:
            return
        from pytest_hparams import collect

        # Each swept item's identity, once: the runner finds it by node id.
        self.keys = collect.keys_of(items, self.sweeps)
        try:
            # --collect-only runs no trial: an editor lists the tests often,
            # and each listing would add to the studies and the logdir.
            listing = bool(config.getoption("collectonly", False))
            self.check_collected(opens_studies=not listing)
            self._select(config, items)
        except pytest.UsageError as e:
            if not self.worker:
                raise
            # On an xdist worker a UsageError is an INTERNALERROR: the worker runs
            # nothing and hands the message to the controller, which exits with it.
            config.workeroutput[USAGE_ERROR_OUTPUT] = str(e)  # type: ignore[attr-defined]
            config.hook.pytest_deselected(items=list(items))
            items.clear()
            return
        self._asks = self.optuna and not config.getoption("setuponly", False)
        if self.settings.resume and not listing:
            self._resume(items)
        if self.worker:
            config.workeroutput[TRIALS_OUTPUT] = self.collected(items)  # type: ignore[attr-defined]

    def _select(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        """Applies shards and only-best to the collected items."""
        from pytest_hparams import collect

        settings = self.settings
        if settings.only_best is not None:
            keep, drop = collect.only_best(items, settings.only_best, self.goals())
            config.hook.pytest_deselected(items=drop)
            items[:] = keep
        if settings.shard is not None:
            keep, drop = collect.shard(items, self.keys, *settings.shard)
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
        from pytest_hparams import preflight

        preflight.check(self.sweeps, self.settings)
        settings = self.settings
        # Decided once: a run whose sweeps neither prune nor search loads no Optuna code.
        self.optuna = any(c.search or c.pruner for c in self.sweeps.values()) or (
            settings.pruner is not None and not settings.no_prune
        )
        if self.optuna:
            self.studies.check(opens_studies)

    @property
    def studies(self) -> Studies:
        """The Optuna studies of the sweeps that prune or search (made on first use)."""
        if self._studies is None:
            from pytest_hparams.studies import Studies

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
        key = self.keys.get(item.nodeid)
        if key is not None and key.number is not None:
            # A search's trial asks for its hparams as it starts; a failure
            # to reach the study is this item's setup error. The setup report
            # then carries them (a crashed worker's trial shows its values).
            self.trial_of(key)

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool | None:
        key = self.keys.get(pyfuncitem.nodeid)
        if key is None:
            return None
        self.call(pyfuncitem, key)
        # Handled: pytest's own pyfunc_call would warn that the test returned a value.
        return True

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        key = self.keys.get(report.nodeid)  # an attribute: no property call, every phase
        if key is None:
            return report
        if report.when == "setup":  # a run of the item begins (a rerun too)
            phases = self._phases.get(key.nodeid)
            if phases is None:  # its first run
                # JUnit XML shows them as properties of the trial's testcase
                # (it reads them from the teardown report, made after this).
                item.user_properties += [(f"hparam.{k}", v) for k, v in key.hparams.items()]
                if key.repeat is not None:
                    item.user_properties.append(("repeat", key.repeat))
            self._phases[key.nodeid] = {"setup": report}
            if report.skipped and key.nodeid in self._pruned:  # resumed, pruned before
                setattr(report, PRUNED_ATTR, self._pruned[key.nodeid])
            key = self.keys[key.nodeid]  # a search's, with the hparams it asked
            started = self.started(key)
            if started is not None:
                setattr(report, STARTED_ATTR, started)
            return report
        phases = self._phases.setdefault(key.nodeid, {})
        phases[report.when] = report
        if report.when == "call" and report.skipped and key.nodeid in self._pruned:
            setattr(report, PRUNED_ATTR, self._pruned[key.nodeid])
        if report.when == "teardown":
            assert isinstance(item, pytest.Function)  # only functions are swept
            record = self.finish(item, key, phases)
            if record is not None:
                setattr(report, RECORD_ATTR, record)
                if record.outcome is Outcome.RESUMED:
                    # Its recorded metrics stand: JUnit XML shows them too,
                    # as for a trial that ran (it reads this report's list).
                    report.user_properties += [
                        (f"metric.{k}", v) for k, v in record.metrics.items()
                    ]
        return report

    def trial_of(self, key: TrialKey, scratch: Any = None, starts: bool = True) -> Trial:
        """The trial object of an item (made on first use).

        Args:
          starts: The trial is about to run: it asks its study, if its sweep
            prunes or searches, for its Optuna trial (and a search's hparams).
        """
        trial = self._trials.get(key.nodeid)
        if trial is None:
            from pytest_hparams.trial import Trial

            study = None
            if starts and self._asks:
                key, study = self.studies.ask(key)
                self.keys[key.nodeid] = key  # a search's, with its asked hparams
            sweep = self.sweeps[key.test].sweep
            run = None
            if self.store is not None:
                run = self._run_dir(key)
            trial = Trial(key, sweep, self.store, scratch, self.settings.seed, run)
            trial.study = study
            self._trials[key.nodeid] = trial
        return trial

    def _run_dir(self, key: TrialKey) -> str:
        from pytest_hparams.logdir import safe_name, test_dir

        assert self.store is not None
        folder = self._test_dirs.get(key.test)
        if folder is None:
            folder = self._test_dirs[key.test] = test_dir(str(self.store.root), key.folder)
        return f"{folder}{os.sep}{safe_name(key.params)}"

    def _resume(self, items: list[pytest.Item]) -> None:
        """Skips, by pytest's own skip mark (reported at the test's line),
        the trials --hparams-resume does not run again. Decided here, once."""
        from pytest_hparams import preflight

        assert self.store is not None
        studies = self.studies if self.optuna else None
        for item in items:
            key = self.keys.get(item.nodeid)
            found = (
                None if key is None else preflight.resumed(key, self.store, self.sweeps, studies)
            )
            if found is not None:
                self.keys[item.nodeid] = found.key  # a search's, with the hparams it was given
                self._resumed[item.nodeid] = found.metrics
                if found.pruned_at is not None:
                    self._pruned[item.nodeid] = found.pruned_at
                item.add_marker(pytest.mark.skip(reason=found.reason))

    def call(self, item: pytest.Function, key: TrialKey) -> None:
        """Runs a swept test function, keeps its metrics, and applies the gates."""
        from pytest_hparams.gates import bounds
        from pytest_hparams.trial import coerce_metrics, missing_metrics, out_of_range

        compiled = self.sweeps[key.test]
        trial = self.trial_of(key)
        key = trial.key  # a search's, with its asked hparams
        trial.open()
        declared = compiled.sweep.metrics
        stopped: tuple[type[TrialPruned], ...] = ()  # catches nothing without a pruner
        if trial.study is not None and trial.study.prunes:
            from pytest_hparams.pruning import TrialPruned

            stopped = (TrialPruned,)
        funcargs = item.funcargs
        kwargs = {n: funcargs[n] for n in compiled.argnames if n in funcargs}
        if compiled.search is not None:  # the asked values, for the None placeholders
            kwargs.update((n, v) for n, v in key.hparams.items() if n in kwargs)
            if "hparams" in kwargs:
                kwargs["hparams"] = dict(key.hparams)
        try:
            result = item.obj(**kwargs)
        except stopped as e:
            return self._stop(trial, key, e.step)
        except BaseException as e:
            if trial.study is not None:
                trial.study.tell(None)
            if isinstance(e, (KeyboardInterrupt, SystemExit, pytest.exit.Exception)):
                self._trials.pop(key.nodeid).abort()  # cut short: never a SUCCESS
            raise
        try:
            trial.metrics = coerce_metrics(result, declared)
        except Exception as e:  # MetricsError, or a __float__ that raised
            problems = [str(e)]
        else:
            primary = declared[0].name if declared else ""
            if primary and primary in trial.last and primary not in trial.metrics:
                # Reported, not returned (Keras' validation metric through
                # keras_callbacks, or trial.log): its last value is the one
                # TensorBoard reads and a study is told below, so the table
                # ranks by it, as a pruned trial's row shows its last value.
                trial.metrics[primary] = trial.last[primary]
            problems = bounds(trial.metrics, declared) + self._baseline_gate(trial, key)
        # A rerun's attempt replaces the one before: JUnit XML shows the last.
        properties = [
            p for p in item.user_properties if not p[0].startswith("metric.") and p[0] != "baseline"
        ]
        properties += [(f"metric.{k}", v) for k, v in trial.metrics.items()]
        if trial.comparison is not None:
            properties.append(("baseline", trial.comparison.verdict.value))
        item.user_properties[:] = properties
        notes = [out_of_range(trial.metrics)]
        if not problems:
            notes.append(missing_metrics(trial.metrics, declared, trial.logged))
        for note in notes:
            if note:
                warn_at(item, f"{key.nodeid} {note}")
        if trial.study is not None:  # it ran to the end, whatever the gates say
            # Its final value: returned, else the last one reported (Keras').
            name = declared[0].name
            trial.study.tell(trial.metrics.get(name, trial.last.get(name)))
        if problems:  # failed outside any except block, so no chained traceback shows
            pytest.fail(f"{key.nodeid} {'; '.join(problems)}", pytrace=False)

    def _stop(self, trial: Trial, key: TrialKey, step: int) -> None:
        """Ends a trial its pruner stopped: its curve so far stands, its last
        values are its metrics, and pytest reports it as pruned, neither
        passed nor failed (a skip, so -x, --lf and the exit code pass it)."""
        self._pruned[key.nodeid] = step
        trial.pruned_at = step
        trial.metrics = dict(trial.last)
        entries = self.settings.baseline
        if entries is not None and key.group in entries:
            from pytest_hparams.verdicts import Comparison, Verdict

            trial.comparison = Comparison(Verdict.PRUNED)  # not judged: not a regression
        pytest.skip(f"pruned at step {step}")

    def _baseline_gate(self, trial: Trial, key: TrialKey) -> list[str]:
        """The trial against its baseline entry (`--hparams-gate each`): sets
        `trial.comparison`, returns its regressions."""
        entries = self.settings.baseline
        if entries is None or self.settings.gate != "each" or key.number is not None:
            return []  # a search's entries held other hparams: see gates.decide
        from pytest_hparams import gates

        entry = entries.get(key.group)
        if key.repeat is not None and gates.repeated(entry):
            return []  # repeats against repeats: decided where all of them are known
        declared = self.sweeps[key.test].sweep.metrics
        trial.comparison = gates.compare_trial(
            trial.metrics, entry, declared, self.settings.tolerance
        )
        return trial.comparison.messages

    def started(self, key: TrialKey) -> Started | None:
        """What the setup report carries, or None: on an xdist worker, enough
        for the controller to end the trial should the worker die; anywhere,
        the sweep's definition the first time this process runs it."""
        first = key.test not in self._announced
        if not self.worker and not first:
            return None
        from pytest_hparams.records import Started

        self._announced.add(key.test)
        return Started(
            key if self.worker else None,
            # Where a remote logdir's trial is staged, should its worker die.
            self.store.staging if self.worker and self.store is not None else None,
            self.sweeps[key.test].definition if first else None,
        )

    def collected(self, items: list[pytest.Item]) -> str:
        """What a setup report would carry for each trial of `items`, for an
        xdist worker's output. A worker that dies in a trial's setup never
        sends its setup report, nor does one that dies mid-trial under
        pytest-rerunfailures (which sends a run's reports after its
        teardown): the controller finds the trial here instead, in the
        output of a worker that lived to the end. One JSON string: it costs
        execnet a fraction of a list of dicts, and is read only on a crash."""
        import json

        from pytest_hparams.records import Started

        out, seen = [], set()
        for item in items:
            key = self.keys.get(item.nodeid)
            if key is not None:
                first = key.test not in seen
                seen.add(key.test)
                definition = self.sweeps[key.test].definition if first else None
                out.append(Started(key, None, definition).to_dict())
        return json.dumps(out, separators=(",", ":"))

    def finish(
        self, item: pytest.Function, key: TrialKey, reports: Mapping[str, pytest.TestReport]
    ) -> TrialRecord | None:
        """Ends a trial after its teardown; returns its record, or None when
        no test body ran (`--setup-only`, `--setup-plan`): nothing is recorded."""
        from pytest_hparams.records import Outcome, TrialRecord, outcome_of

        trial = self._trials.pop(key.nodeid, None)
        key = self.keys[key.nodeid]  # a search's, once asked
        if trial is not None and trial.study is not None:
            trial.study.tell(None)  # not told yet: it never reached its call
        outcome = outcome_of(reports)
        recorded = self._resumed.pop(key.nodeid, None)
        pruned_at = self._pruned.pop(key.nodeid, None)
        if outcome is None:
            if trial is not None:
                trial.discard()
            return None
        if trial is None:  # it never reached its call (skipped, or a fixture failed)
            trial = self.trial_of(key, starts=False)
            del self._trials[key.nodeid]
        if outcome is Outcome.SKIPPED:
            trial.discard()
            if recorded is not None:
                outcome, trial.metrics = Outcome.RESUMED, recorded
                if self.settings.baseline is not None:
                    self._baseline_gate(trial, key)
                    if trial.comparison is not None:  # shown: a resumed trial never fails
                        trial.comparison = dataclasses.replace(trial.comparison, gating=False)
        elif outcome is Outcome.PRUNED and "call" not in reports:
            trial.discard()  # resumed as pruned: the session recorded before stays
            trial.metrics = recorded or {}  # the value it was pruned on
        else:
            # A fixture error counts as a failed trial, as in the table.
            trial.finish(success=outcome in (Outcome.PASSED, Outcome.XPASSED))
        if trial.write_error is not None:
            warn_at(item, str(trial.write_error), reporting=True)
        duration = sum([r.duration for r in reports.values()])
        return TrialRecord(key, outcome, dict(trial.metrics), duration, trial.comparison, pruned_at)

    def close(self) -> None:
        """Closes trials cut short (Ctrl-C in a fixture): they read as unknown."""
        for trial in self._trials.values():
            trial.abort()
        self._trials.clear()
        if self.store is not None:
            self.store.close()

    @pytest.hookimpl(wrapper=True)
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

    @pytest.fixture
    def trial(
        self, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
    ) -> Trial:
        """The running trial of an @hparam_grid test: hparams, id, seed, logdir, log()."""
        key = self.keys.get(request.node.nodeid)
        if key is None:
            pytest.fail(
                "the `trial` fixture is only available to tests decorated with @hparam_grid",
                pytrace=False,
            )
        # Without a logdir, trial.logdir is a directory of pytest's own temporary
        # tree, kept and pruned by pytest like tmp_path's.
        return self.trial_of(key, lambda: tmp_path_factory.mktemp("hparams-trial"))
