"""The session's state: open trials in this process and, in the process that
reports (the controller under xdist), every trial's record, the experiment
config and the terminal table.
"""

from __future__ import annotations

import math
import os
import shlex
import warnings
from pathlib import Path
from typing import Any

import pytest

from pytest_hparams import report as table
from pytest_hparams.errors import HParamsWarning
from pytest_hparams.space import Metric
from pytest_hparams.trial import MetricsError, Trial, TrialSpec, coerce_metrics

# Set on the teardown report of every swept item; pytest serialises a report's
# attributes, so xdist carries it to the controller.
REPORT_ATTR = "hparams_trial"


class Recorder:
    """Registered as a plugin for the session, like pytest's own LogXML."""

    def __init__(self, config: pytest.Config, logdir: Path | None, top: int, show: bool) -> None:
        self.config = config
        self.logdir = logdir
        self.top = top
        self.show = show
        self.is_controller = not hasattr(config, "workerinput")
        self.trials: dict[str, Trial] = {}
        self.records: dict[str, list[dict[str, Any]]] = {}
        self.definitions: dict[str, dict[str, Any]] = {}
        self._experiment: Any = None  # logdir.ExperimentConfig, imported when needed

    # --- trials running in this process --------------------------------------

    def trial(self, spec: TrialSpec) -> Trial:
        if spec.nodeid not in self.trials:
            self.trials[spec.nodeid] = Trial(spec, self.logdir)
        return self.trials[spec.nodeid]

    def call(self, item: pytest.Function, spec: TrialSpec) -> None:
        """Runs a swept test function and keeps its metrics on the trial."""
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
            error = str(e)
        else:
            error = ""
        if error:  # failed outside the except block, so no chained traceback shows
            pytest.fail(f"{spec.nodeid} {error}", pytrace=False)
        bad = {k: v for k, v in trial.metrics.items() if not math.isfinite(v)}
        if bad:
            listed = ", ".join(f"{k}={v}" for k, v in bad.items())
            code = item.function.__code__
            # Point at the test, not at this plugin, in the warnings summary.
            warnings.warn_explicit(
                HParamsWarning(f"{spec.nodeid} returned non-finite {listed}"),
                HParamsWarning,
                code.co_filename,
                code.co_firstlineno,
            )

    def finish(self, spec: TrialSpec, reports: dict[str, pytest.TestReport]) -> dict[str, Any]:
        """Ends a trial after its teardown; returns the record for the report."""
        from pytest_hparams import events

        outcome = _outcome(reports)
        trial = self.trials.pop(spec.nodeid, None) or Trial(spec, self.logdir)
        if outcome == "passed":
            trial.finish(events.STATUS_SUCCESS)
        elif outcome in ("failed", "error"):
            trial.finish(events.STATUS_FAILURE)
        else:
            trial.abort()
        return {
            "test": spec.test,
            "nodeid": spec.nodeid,
            "id": spec.id,
            "case": spec.case,
            "hparams": dict(spec.hparams),
            "metrics": dict(trial.metrics),
            "outcome": outcome,
            "duration": sum(r.duration for r in reports.values()),
            "definition": spec.sweep.definition(),
        }

    def close(self) -> None:
        """Closes trials cut short (Ctrl-C in a fixture): they read as unknown."""
        for trial in self.trials.values():
            trial.abort()
        self.trials.clear()

    # --- the reporting process --------------------------------------------------

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = getattr(report, REPORT_ATTR, None)
        if record is None or not self.is_controller:
            return
        test = record["test"]
        self.records.setdefault(test, []).append(record)
        changed = False
        if test not in self.definitions:
            self.definitions[test] = record["definition"]
            changed = self._config_changed(lambda exp: exp.add_sweep(test, record["definition"]))
        if record["metrics"]:
            changed |= self._config_changed(lambda exp: exp.add_metrics(record["metrics"]))
        if changed:
            self._experiment.write()

    def _config_changed(self, update: Any) -> bool:
        if self.logdir is None:
            return False
        if self._experiment is None:
            from pytest_hparams.logdir import ExperimentConfig

            self._experiment = ExperimentConfig(self.logdir)
        return bool(update(self._experiment))

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.records or not self.show:
            return
        quiet = self.config.get_verbosity() < 0
        tr = terminalreporter
        if quiet:
            tr.write_sep("=", "hparams")
        for test, records in self.records.items():
            definition = self.definitions[test]
            metrics = [Metric.from_dict(m) for m in definition["metrics"]]
            if quiet:
                tr.write_line(table.format_best_line(test, records, metrics))
                continue
            tr.write_sep("=", f"hparams: {test}")
            names = [h["name"] for h in definition["hparams"]]
            for line in table.format_table(records, names, metrics, self.top):
                tr.write_line(line)
        if self.logdir is not None:
            shown = _display_path(self.logdir)
            tr.write_line(f"logdir: {shown}")
            tr.write_line(f"view:   tensorboard --logdir {shlex.quote(shown)}")
        elif not quiet:
            tr.write_line("record the trials for TensorBoard with --hparams-logdir DIR")


def _outcome(reports: dict[str, pytest.TestReport]) -> str:
    call = reports.get("call")
    if call is not None and call.failed:
        return "failed"
    if any(r.failed for r in reports.values()):
        return "error"
    if any(r.skipped for r in reports.values()):
        return "skipped"
    return "passed"


def _display_path(path: Path) -> str:
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
    return str(path) if relative.startswith("..") else relative
