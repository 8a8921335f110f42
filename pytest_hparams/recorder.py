"""The session's state: open trials in this process and, in the process that
reports (the controller under xdist), every trial's record, the experiment
config, baselines, report files and the terminal table.

A Recorder exists in every pytest run; the modules behind trials, baselines
and reports are imported by the methods that first need them.
"""

from __future__ import annotations

import functools
import math
import os
import shlex
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_hparams.options import Settings
    from pytest_hparams.storage import LocalStore
    from pytest_hparams.trial import Trial, TrialSpec

# Set on the teardown report of every swept item; pytest serialises a report's
# attributes, so xdist carries it to the controller.
REPORT_ATTR = "hparams_trial"
# Set on the setup report: if the worker dies mid-trial, the controller still
# knows which trial it was (xdist's crash report carries only the node id).
STARTED_ATTR = "hparams_started"


class Recorder:
    """Registered as a plugin for the session, like pytest's own LogXML."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.is_controller = not hasattr(config, "workerinput")
        self.trials: dict[str, Trial] = {}
        self.records: dict[str, list[dict[str, Any]]] = {}
        self.definitions: dict[str, dict[str, Any]] = {}
        self.written: list[str] = []
        self.started: dict[str, dict[str, Any]] = {}  # trials begun but not ended
        self.resumed: dict[str, dict[str, float]] = {}  # node id -> recorded metrics
        self.swept = 0  # swept functions collected in this process
        self.declared: set[str] = set()  # the metrics they declare
        self.hparam_names: set[str] = set()  # and their hparams
        self.problems: list[str] = []  # usage errors found while collecting
        self._experiment: Any = None  # logdir.ExperimentConfig, imported when needed
        self.config_error: str | None = None  # why the config could not be written

    @property
    def store(self) -> LocalStore | None:
        return self.settings.store

    # --- collection --------------------------------------------------------------

    def check_collected(self) -> None:
        """Refuses options that name what no collected sweep has, before anything runs."""
        if self.problems:
            raise pytest.UsageError(self.problems[0])
        if not self.swept:
            return
        unknown_set = sorted({n for n, _ in self.settings.overrides} - self.hparam_names)
        if unknown_set:
            raise pytest.UsageError(
                f"--hparams-set names {unknown_set[0]!r}, which no collected sweep has "
                f"(hparams: {', '.join(sorted(self.hparam_names))}); fix the name"
            )
        declared = self.declared
        unknown = sorted(self.settings.cli_tolerance_names - declared)
        if unknown:
            raise pytest.UsageError(
                f"--hparams-tolerance names {unknown[0]!r}, which no collected sweep declares "
                f"(declared: {', '.join(sorted(declared)) or 'none'}); "
                "declare it with metrics=[...] or fix the name"
            )

    # --- trials running in this process --------------------------------------

    def trial(self, spec: TrialSpec) -> Trial:
        from pytest_hparams.trial import Trial

        if spec.nodeid not in self.trials:
            self.trials[spec.nodeid] = Trial(spec, self.store)
        return self.trials[spec.nodeid]

    def call(self, item: pytest.Function, spec: TrialSpec) -> None:
        """Runs a swept test function, keeps its metrics, and applies the gates."""
        from pytest_hparams.trial import MetricsError, coerce_metrics

        trial = self.trial(spec)
        trial.open()
        kwargs = {name: item.funcargs[name] for name in spec.argnames if name in item.funcargs}
        try:
            result = item.obj(**kwargs)
        except BaseException as exc:
            if not isinstance(exc, Exception):  # Ctrl-C, SystemExit: never a SUCCESS
                self.trials.pop(spec.nodeid).abort()
            raise
        try:
            trial.metrics = coerce_metrics(result, spec.sweep.metrics)
        except MetricsError as e:
            problems = [str(e)]
        else:
            problems = self._gates(trial, spec)
        item.user_properties.extend((f"metric.{k}", v) for k, v in trial.metrics.items())
        self._warn_non_finite(item, spec, trial.metrics)
        if problems:  # failed outside any except block, so no chained traceback shows
            pytest.fail(f"{spec.nodeid} {'; '.join(problems)}", pytrace=False)

    def _gates(self, trial: Trial, spec: TrialSpec) -> list[str]:
        from pytest_hparams import baseline
        from pytest_hparams.trial import bound_problems

        problems = bound_problems(trial.metrics, spec.sweep.metrics)
        entries = self.settings.baseline
        if entries is not None:
            trial.comparison = baseline.compare(
                trial.metrics,
                entries.get(spec.nodeid),
                spec.sweep.metrics,
                self.settings.tolerance,
            )
            problems += trial.comparison["messages"]
        return problems

    @staticmethod
    def _warn_non_finite(item: pytest.Function, spec: TrialSpec, metrics: dict[str, float]) -> None:
        bad = {k: v for k, v in metrics.items() if not math.isfinite(v)}
        if bad:
            listed = ", ".join(f"{k}={v}" for k, v in bad.items())
            _warn_at(item, f"{spec.nodeid} returned non-finite {listed}")

    def resume(self, spec: TrialSpec) -> bool:
        """Whether a trial's recorded session ended with SUCCESS and the same hparams;
        if so, its metrics are kept for the report."""
        from pytest_hparams import events
        from pytest_hparams.logdir import run_path
        from pytest_hparams.space import SWEEP_HPARAM

        assert self.store is not None
        recorded = self.store.session(run_path(spec.test, spec.pytest_id))
        if recorded is None:
            return False
        hparams, status, metrics = recorded
        hparams.pop(SWEEP_HPARAM, None)
        if status == events.STATUS_SUCCESS and hparams == spec.hparams:
            self.resumed[spec.nodeid] = metrics
            return True
        return False

    def started_record(self, spec: TrialSpec) -> dict[str, Any]:
        return {
            "test": spec.test,
            "nodeid": spec.nodeid,
            "id": spec.id,
            "case": spec.case,
            "hparams": dict(spec.hparams),
            "metrics": {},
            "baseline": None,
            "definition": spec.definition or spec.sweep.definition(),
            # Where a remote logdir's trial is staged, should its worker die.
            "staging": self.store.staging if self.store is not None else None,
        }

    def finish(
        self, item: pytest.Function, spec: TrialSpec, reports: dict[str, pytest.TestReport]
    ) -> dict[str, Any]:
        """Ends a trial after its teardown; returns the record for the report."""
        outcome = _outcome(reports)
        trial = self.trial(spec)  # errored in setup: a trial that never started
        del self.trials[spec.nodeid]
        if outcome in ("passed", "failed", "error"):
            from pytest_hparams.storage import LogdirError

            try:
                trial.finish(success=outcome == "passed")
            except LogdirError as e:
                _warn_at(item, str(e))
        else:
            trial.abort()
        recorded = self.resumed.pop(spec.nodeid, None)
        if recorded is not None and outcome == "skipped":
            outcome, trial.metrics = "resumed", recorded
            if self.settings.baseline is not None:
                self._gates(trial, spec)  # the verdict is shown; a resumed trial never fails
        return {
            **self.started_record(spec),
            "metrics": dict(trial.metrics),
            "outcome": outcome,
            "duration": sum(r.duration for r in reports.values()),
            "baseline": trial.comparison,
        }

    def close(self) -> None:
        """Closes trials cut short (Ctrl-C in a fixture): they read as unknown."""
        for trial in self.trials.values():
            trial.abort()
        self.trials.clear()
        if self.store is not None:
            self.store.close()

    # --- the reporting process --------------------------------------------------

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not self.is_controller:
            return
        started = getattr(report, STARTED_ATTR, None)
        if started is not None:
            self.started[report.nodeid] = started
        record = getattr(report, REPORT_ATTR, None)
        # xdist reports a crashed item with when="???", outside pytest's Literal.
        crashed = str(report.when) == "???"
        if record is None and crashed and report.nodeid in self.started:
            record = self._crashed(self.started[report.nodeid])  # an xdist worker died
        if record is None:
            return
        self.started.pop(record["nodeid"], None)
        test = record["test"]
        self.records.setdefault(test, []).append(record)
        new_sweep = test not in self.definitions
        self.definitions.setdefault(test, record["definition"])
        if self.store is not None and (new_sweep or record["metrics"] or self.config_error):
            self._update_config(test if new_sweep else None, record["metrics"])

    def _update_config(self, sweep: str | None, metrics: dict[str, float]) -> None:
        """Merges a new sweep or metrics into the logdir's config and writes it.

        A config that could not be read is never written over: it holds the
        sweeps of earlier runs. Both are retried with the next record.
        """
        from pytest_hparams.logdir import CONFIG_FILE, ExperimentConfig
        from pytest_hparams.storage import LogdirError

        assert self.store is not None
        try:
            changed = bool(self.config_error)
            if self._experiment is None:
                self._experiment = ExperimentConfig(self.store.read(CONFIG_FILE))
                for test, definition in self.definitions.items():  # all, after a failed read
                    changed |= self._experiment.add_sweep(test, definition)
                for record in self.all_records:
                    changed |= self._experiment.add_metrics(record["metrics"])
            else:
                if sweep is not None:
                    changed |= self._experiment.add_sweep(sweep, self.definitions[sweep])
                changed |= self._experiment.add_metrics(metrics)
            if changed:
                self.store.write(CONFIG_FILE, self._experiment.encode())
            self.config_error = None
        except (OSError, LogdirError) as e:
            self.config_error = (
                f"hparams: could not write the experiment config to {self.store.shown} "
                f"({type(e).__name__}: {e}); the next run of these sweeps into it writes it"
            )

    def _crashed(self, started: dict[str, Any]) -> dict[str, Any]:
        if self.store is not None:
            from pytest_hparams.logdir import run_path

            case = f"-{started['case']}" if started["case"] else ""
            run = run_path(started["test"], started["id"] + case)
            self.store.mark_crashed(run, started.get("staging"))
        return {**started, "outcome": "crashed", "duration": 0.0}

    @property
    def all_records(self) -> list[dict[str, Any]]:
        return [r for records in self.records.values() for r in records]

    @functools.cached_property
    def not_run(self) -> list[str]:
        """Baseline entries this run did not record; read once the session is over."""
        from pytest_hparams import baseline

        entries = self.settings.baseline
        if entries is None:
            return []
        return baseline.not_run(entries, (r["nodeid"] for r in self.all_records))

    @pytest.hookimpl
    def pytest_sessionfinish(self) -> None:
        if not self.is_controller or not self.records:
            return
        from pytest_hparams import baseline, export

        if self.config_error:
            self._update_config(None, {})  # one more try
            if self.config_error:
                self.written.append(self.config_error)
        settings = self.settings
        if settings.save_baseline is not None:
            trials = baseline.updated(settings.saved, self.all_records)
            baseline.save(settings.save_baseline, trials)
            self.written.append(
                f"baseline saved: {_shown(settings.save_baseline)} ({len(trials)} trials)"
            )
        if settings.json_path is not None:
            data = export.json_report(self.records, self.definitions, self.not_run)
            export.write(settings.json_path, data)
            self.written.append(f"json report: {_shown(settings.json_path)}")
        if settings.markdown_path is not None:
            text = export.markdown_report(self.records, self.definitions, self.not_run)
            export.write(settings.markdown_path, text)
            self.written.append(f"markdown summary: {_shown(settings.markdown_path)}")

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.records or not self.settings.show_table:
            for line in self.written:
                terminalreporter.write_line(line)
            return
        from pytest_hparams import report as table
        from pytest_hparams.metrics import Metric

        quiet = self.config.get_verbosity() < 0
        tr = terminalreporter
        if quiet:
            tr.write_sep("=", "hparams")
        for test, records in self.records.items():
            definition = self.definitions[test]
            metrics = [Metric.from_dict(m) for m in definition["metrics"]]
            if quiet:
                line = table.format_best_line(test, records, metrics)
                if self.settings.baseline is not None:
                    line += "; " + table.format_verdict(records, [])
                tr.write_line(line)
                continue
            tr.write_sep("=", f"hparams: {test}")
            names = [h["name"] for h in definition["hparams"]]
            for line in table.format_table(records, names, metrics, self.settings.top):
                markup = {}
                if line.endswith(" regressed"):
                    markup = {"red": True}
                elif line.endswith(" improved"):
                    markup = {"green": True}
                tr.write_line(line, **markup)
            if self.settings.baseline is not None:
                missing = [n[len(test) :] for n in self.not_run if n.startswith(test + "[")]
                tr.write_line(table.format_verdict(records, missing))
        elsewhere = [n for n in self.not_run if n.split("[", 1)[0] not in self.records]
        if elsewhere and not quiet:
            tests = sorted({n.split("[", 1)[0] for n in elsewhere})
            tr.write_line(f"baseline: {len(elsewhere)} trials of {', '.join(tests)} not run")
        if self.store is not None:
            shown = _shown(self.store.shown)
            tr.write_line(f"logdir: {shown}")
            tr.write_line(f"view:   tensorboard --logdir {shlex.quote(shown)}")
        elif not quiet:
            tr.write_line("record the trials for TensorBoard with --hparams-logdir DIR")
        for line in self.written:
            tr.write_line(line)


def _warn_at(item: pytest.Function, message: str) -> None:
    from pytest_hparams.errors import HParamsWarning

    code = item.function.__code__
    # Point at the test, not at this plugin, in the warnings summary.
    warnings.warn_explicit(
        HParamsWarning(message), HParamsWarning, code.co_filename, code.co_firstlineno
    )


def _outcome(reports: dict[str, pytest.TestReport]) -> str:
    call = reports.get("call")
    if call is not None and call.failed:
        return "failed"
    if any(r.failed for r in reports.values()):
        return "error"
    if any(r.skipped for r in reports.values()):
        return "skipped"
    return "passed"


def _shown(path: Path | str) -> str:
    if "://" in str(path):
        return str(path)
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
    return str(path) if relative.startswith("..") else relative
