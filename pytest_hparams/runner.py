"""The trial lifecycle in one pytest process (the only one, or an xdist
worker): which collected items are trials, running their function, writing
their TensorBoard runs, and the record each trial's teardown report carries.

Everything done with the records afterwards (the experiment config, baselines,
reports, the table) happens in `reporter.py`, in the reporting process only.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Generator, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from pytest_hparams.plugin import RECORD_ATTR, STARTED_ATTR

if TYPE_CHECKING:
    from pytest_hparams.collect import Compiled
    from pytest_hparams.options import Settings
    from pytest_hparams.records import TrialKey, TrialRecord
    from pytest_hparams.storage import LocalStore
    from pytest_hparams.trial import Trial


class TrialRunner:
    """Registered for the session in every process, like pytest's own plugins.

    Attributes:
      worker: Whether this process is an xdist worker, whose reports travel.
      sweeps: Each swept function's compiled sweep, by its node id.
      keys: Each swept item's `TrialKey`, by node id, set once collection ends.
      problems: Usage errors found while collecting, raised once it ends.
    """

    def __init__(self, settings: Settings, worker: bool = False) -> None:
        self.settings = settings
        self.worker = worker  # an xdist worker: its reports go to another process
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

    def check_collected(self) -> None:
        """Refuses options that name what no collected sweep has, before anything runs."""
        if self.problems:
            raise pytest.UsageError(self.problems[0])
        if not self.sweeps:
            return
        hparams = {n for c in self.sweeps.values() for n in c.sweep.names}
        unknown_set = sorted({n for n, _ in self.settings.overrides} - hparams)
        if unknown_set:
            raise pytest.UsageError(
                f"--hparams-set names {unknown_set[0]!r}, which no collected sweep has "
                f"(hparams: {', '.join(sorted(hparams))}); fix the name"
            )
        declared = {m.name for c in self.sweeps.values() for m in c.sweep.metrics}
        for source, names in self.settings.tolerance_names():
            unknown = sorted(names - declared)
            if unknown:
                raise pytest.UsageError(
                    f"{source} names {unknown[0]!r}, which no collected sweep declares "
                    f"(declared: {', '.join(sorted(declared)) or 'none'}); "
                    "declare it with metrics=[...] or fix the name"
                )

    def goals(self) -> dict[str, tuple[str, str]]:
        """Each collected sweep's primary metric and its goal."""
        return {
            test: (c.sweep.metrics[0].name, c.sweep.metrics[0].goal)
            for test, c in self.sweeps.items()
            if c.sweep.metrics
        }

    # --- one trial ---------------------------------------------------------------

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
            started = self.started(key)
            if started is not None:
                setattr(report, STARTED_ATTR, started)
            return report
        phases = self._phases.setdefault(key.nodeid, {})
        phases[report.when] = report
        if report.when == "teardown":
            assert isinstance(item, pytest.Function)  # only functions are swept
            record = self.finish(item, key, phases)
            if record is not None:
                setattr(report, RECORD_ATTR, record)
        return report

    def trial(self, key: TrialKey, scratch: Any = None) -> Trial:
        """The trial object of a running item (made on first use)."""
        trial = self._trials.get(key.nodeid)
        if trial is None:
            from pytest_hparams.trial import Trial

            sweep = self.sweeps[key.test].sweep
            run = None
            if self.store is not None:
                run = self._run_dir(key)
            trial = Trial(key, sweep, self.store, scratch, self.settings.seed, run)
            self._trials[key.nodeid] = trial
        return trial

    def _test_dir(self, test: str) -> str:
        from pytest_hparams.logdir import test_dir

        assert self.store is not None
        folder = self._test_dirs.get(test)
        if folder is None:
            folder = self._test_dirs[test] = test_dir(str(self.store.root), test)
        return folder

    def _run_dir(self, key: TrialKey) -> str:
        from pytest_hparams.logdir import safe_name

        return f"{self._test_dir(key.test)}{os.sep}{safe_name(key.params)}"

    def resume(self, key: TrialKey) -> bool:
        """Whether a trial's recorded session ended with SUCCESS and the same
        hparams; if so, its metrics are kept for its record."""
        from pytest_hparams import events
        from pytest_hparams.logdir import run_path
        from pytest_hparams.space import SWEEP_HPARAM

        assert self.store is not None
        recorded = self.store.session(run_path(key.test, key.params))
        if recorded is None:
            return False
        hparams, status, metrics = recorded
        hparams.pop(SWEEP_HPARAM, None)
        if status == events.STATUS_SUCCESS and hparams == dict(key.hparams):
            self._resumed[key.nodeid] = metrics
            return True
        return False

    def call(self, item: pytest.Function, key: TrialKey) -> None:
        """Runs a swept test function, keeps its metrics, and applies the gates."""
        from pytest_hparams.trial import (
            bound_problems,
            coerce_metrics,
            missing_metrics,
            out_of_range,
        )

        compiled = self.sweeps[key.test]
        trial = self.trial(key)
        trial.open()
        funcargs = item.funcargs
        kwargs = {n: funcargs[n] for n in compiled.argnames if n in funcargs}
        try:
            result = item.obj(**kwargs)
        except (KeyboardInterrupt, SystemExit, pytest.exit.Exception):
            self._trials.pop(key.nodeid).abort()  # cut short: never a SUCCESS
            raise
        declared = compiled.sweep.metrics
        try:
            trial.metrics = coerce_metrics(result, declared)
        except Exception as e:  # MetricsError, or a __float__ that raised
            problems = [str(e)]
        else:
            problems = bound_problems(trial.metrics, declared) + self._baseline_gate(trial, key)
        # A rerun's attempt replaces the one before: JUnit XML shows the last.
        properties = [p for p in item.user_properties if not p[0].startswith("metric.")]
        properties += [(f"metric.{k}", v) for k, v in trial.metrics.items()]
        item.user_properties[:] = properties
        notes = [out_of_range(trial.metrics)]
        if not problems:
            notes.append(missing_metrics(trial.metrics, declared, trial.logged))
        for note in notes:
            if note:
                warn_at(item, f"{key.nodeid} {note}")
        if problems:  # failed outside any except block, so no chained traceback shows
            pytest.fail(f"{key.nodeid} {'; '.join(problems)}", pytrace=False)

    def _baseline_gate(self, trial: Trial, key: TrialKey) -> list[str]:
        """The trial against its baseline entry (`--hparams-gate each`): sets
        `trial.comparison`, returns its regressions."""
        entries = self.settings.baseline
        if entries is None or self.settings.gate != "each":
            return []
        from pytest_hparams import baseline

        entry = entries.get(key.group)
        if key.repeat is not None and baseline.repeated(entry):
            return []  # repeats against repeats: decided where all of them are known
        declared = self.sweeps[key.test].sweep.metrics
        trial.comparison = baseline.compare(trial.metrics, entry, declared, self.settings.tolerance)
        return list(trial.comparison["messages"])

    def started(self, key: TrialKey) -> dict[str, Any] | None:
        """What the setup report carries, or None: on an xdist worker, enough
        for the controller to end the trial should the worker die; anywhere,
        the sweep's definition the first time this process runs it."""
        if not self.worker and key.test in self._announced:
            return None
        started: dict[str, Any] = {}
        if self.worker:
            started = {
                **key.to_dict(),
                # Where a remote logdir's trial is staged, should its worker die.
                "staging": self.store.staging if self.store is not None else None,
            }
        if key.test not in self._announced:
            self._announced.add(key.test)
            started["test"] = key.test
            started["definition"] = self.sweeps[key.test].definition
        return started

    def finish(
        self, item: pytest.Function, key: TrialKey, reports: Mapping[str, pytest.TestReport]
    ) -> TrialRecord | None:
        """Ends a trial after its teardown; returns its record, or None when
        no test body ran (`--setup-only`, `--setup-plan`): nothing is recorded."""
        from pytest_hparams.records import Outcome, TrialRecord, outcome_of

        trial = self._trials.pop(key.nodeid, None)
        outcome = outcome_of(reports)
        recorded = self._resumed.pop(key.nodeid, None)
        if outcome is None:
            if trial is not None:
                trial.discard()
            return None
        if trial is None:  # it never reached its call (skipped, or a fixture failed)
            trial = self.trial(key)
            del self._trials[key.nodeid]
        if outcome is Outcome.SKIPPED:
            trial.discard()
            if recorded is not None:
                outcome, trial.metrics = Outcome.RESUMED, recorded
                if self.settings.baseline is not None:
                    self._baseline_gate(trial, key)  # shown; a resumed trial never fails
        else:
            # A fixture error counts as a failed trial, as in the table.
            trial.finish(success=outcome in (Outcome.PASSED, Outcome.XPASSED))
        if trial.write_error is not None:
            warn_at(item, str(trial.write_error), reporting=True)
        duration = sum([r.duration for r in reports.values()])
        return TrialRecord(key, outcome, dict(trial.metrics), duration, trial.comparison)

    def close(self) -> None:
        """Closes trials cut short (Ctrl-C in a fixture): they read as unknown."""
        for trial in self._trials.values():
            trial.abort()
        self._trials.clear()
        if self.store is not None:
            self.store.close()


def warn_at(item: pytest.Item, message: str, reporting: bool = False) -> None:
    """Warns with an HParamsWarning placed at the test's own line.

    Args:
      reporting: Set when called from a report hook: there a warning that
        `-W error` turned into an exception would be an INTERNALERROR, so it
        is only shown (in pytest's warnings summary), never raised.
    """
    from pytest_hparams.errors import HParamsWarning

    code = getattr(getattr(item, "function", None), "__code__", None)
    with warnings.catch_warnings():
        if reporting:
            warnings.simplefilter("always", HParamsWarning)
        if code is None:
            warnings.warn(HParamsWarning(message), stacklevel=2)
            return
        # Point at the test, not at this plugin, in the warnings summary.
        warnings.warn_explicit(
            HParamsWarning(message), HParamsWarning, code.co_filename, code.co_firstlineno
        )
