"""The reporting process's view of a run: every trial's record, and all that
is made from them once: the logdir's experiment config, the baseline saved,
the JSON and Markdown reports, and the terminal tables.

A `Reporter` is registered only where pytest reports (the controller under
xdist, as pytest's junitxml registers its `LogXML`), and
`python -m pytest_hparams merge` drives the same class with the records of
several JSON reports, so a merged table is the table pytest prints.
"""

from __future__ import annotations

import math
import os
import shlex
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_hparams.errors import HParamsError
from pytest_hparams.plugin import RECORD_ATTR, STARTED_ATTR

if TYPE_CHECKING:
    from pytest_hparams.metrics import Metric
    from pytest_hparams.options import Settings
    from pytest_hparams.records import TrialRecord
    from pytest_hparams.repeats import Combination

# xdist reports an item whose worker died with this phase name, outside
# pytest's `when` literals; that report is all the controller gets of it.
XDIST_CRASH_PHASE = "???"

Line = tuple[str, dict[str, bool]]  # a terminal line and its markup
# The key of an xdist worker's `workeroutput` that carries a usage error
# found while it collected (the controller does not collect).
USAGE_ERROR_OUTPUT = "hparams_usage_error"


class Reporter:
    """Turns trial records into the config, baselines, reports and tables.

    Args:
      settings: The run's options (`options.read`, or `merge`'s own).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.quiet = False  # pytest -q: one line per sweep
        self.records: dict[str, dict[str, TrialRecord]] = {}  # by sweep, then node id
        self.definitions: dict[str, dict[str, Any]] = {}
        self.failed_writes: list[str] = []  # reports that could not be written
        self.written: list[str] = []
        self._started: dict[str, dict[str, Any]] = {}  # trials begun but not ended
        self._metric_names: set[str] = set()
        self._config_error: str | None = None
        self.usage_error: str | None = None  # found by xdist workers as they collected
        # The baseline gate on repeats, decided once all of them are known.
        self.combinations: dict[str, list[Combination]] = {}
        self.gate_failures: list[str] = []
        # merge: the baseline entries the shards' reports say they did not run,
        # and the verdicts they gave their repeated combinations.
        self.baseline_not_run: set[str] | None = None
        self.reported_verdicts: dict[str, dict[str, Any]] = {}

    # --- records arriving -----------------------------------------------------

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        started = getattr(report, STARTED_ATTR, None)
        if started is not None:
            if "definition" in started:  # the first trial of its sweep in its process
                self.add_definition(started["test"], started["definition"])
            if "nodeid" in started:  # a worker's: kept in case the worker dies
                self._started[report.nodeid] = started
        record = getattr(report, RECORD_ATTR, None)
        if record is not None:
            if isinstance(record, dict):  # from an xdist worker
                from pytest_hparams.records import TrialRecord

                record = TrialRecord.from_dict(record)
            self.add(record)
        elif self._started and str(report.when) == XDIST_CRASH_PHASE:
            started = self._started.get(report.nodeid)
            if started is not None:
                self.add(self._crashed(started))

    def add_definition(self, test: str, definition: Mapping[str, Any]) -> None:
        if test not in self.definitions:
            self.definitions[test] = dict(definition)
            # Declared metrics go into the config with the sweep: a trial
            # returning them changes nothing there.
            self._metric_names.update(m["name"] for m in definition["metrics"])
            self._update_config()

    def add(self, record: TrialRecord) -> None:
        """Keeps a trial's record; a later record of the same trial (a rerun
        by pytest-rerunfailures) replaces the earlier one."""
        self._started.pop(record.nodeid, None)
        self.records.setdefault(record.test, {})[record.nodeid] = record
        new = record.metrics.keys() - self._metric_names
        if new or self._config_error:
            self._metric_names.update(new)
            self._update_config()

    def _crashed(self, started: Mapping[str, Any]) -> TrialRecord:
        from pytest_hparams.records import Outcome, TrialKey, TrialRecord

        key = TrialKey.from_dict(started)
        store = self.settings.store
        if store is not None:
            from pytest_hparams.logdir import run_path

            store.mark_crashed(run_path(key.test, key.params), started.get("staging"))
        return TrialRecord(key, Outcome.CRASHED)

    def _update_config(self) -> None:
        """Merges this run's sweeps and metrics into the logdir's experiment config.

        The read, merge and write hold the logdir's lock, so two pytest
        processes recording into one local logdir both end up in its config.
        A config that could not be read is never written over: it holds the
        sweeps of earlier runs; the merge is tried again with the next record.
        """
        store = self.settings.store
        if store is None or not self.definitions:
            return
        from pytest_hparams.logdir import CONFIG_FILE, ExperimentConfig

        try:
            with store.lock():
                experiment = ExperimentConfig(store.read(CONFIG_FILE))
                changed = False
                for test, definition in self.definitions.items():
                    changed |= experiment.add_sweep(test, definition)
                changed |= experiment.add_metrics(sorted(self._metric_names))
                if changed:
                    store.write(CONFIG_FILE, experiment.encode())
            self._config_error = None
        except (OSError, HParamsError) as e:
            self._config_error = (
                f"hparams: could not write the experiment config to {store.shown} "
                f"({type(e).__name__}: {e}); the next run of these sweeps into it writes it"
            )

    # --- the end of the run -------------------------------------------------------

    @property
    def all_records(self) -> list[TrialRecord]:
        return [r for by_id in self.records.values() for r in by_id.values()]

    def sweeps(self) -> Iterator[tuple[str, list[TrialRecord]]]:
        for test, by_id in self.records.items():
            yield test, list(by_id.values())

    def not_run(self) -> list[str]:
        """Baseline entries this run did not record."""
        entries = self.settings.baseline
        if entries is None and self.baseline_not_run is None:
            return []
        ran = self._ran()
        return sorted(k for k in entries or self.baseline_not_run or () if k not in ran)

    def _ran(self) -> set[str]:
        """The node ids and combinations this run recorded (baseline keys)."""
        return {k for r in self.all_records for k in (r.nodeid, r.key.group)}

    def decide_gate(self) -> None:
        """Compares repeated combinations (and, with `--hparams-gate best`, each
        sweep's best) with the baseline, where every repeat is known: on the
        controller under xdist, and in `merge` for shards."""
        if self.settings.baseline is None and not any(
            r.key.repeat is not None for r in self.all_records
        ):
            return  # nothing to decide: spare every run the statistics' import
        from pytest_hparams import baseline, repeats, table
        from pytest_hparams.metrics import Metric

        settings = self.settings
        entries = settings.baseline
        for test, records in self.sweeps():
            if not repeats.repeated(records):
                continue
            self.combinations[test] = repeats.combine(records)
        if entries is None:
            # merge without --baseline: the shards' own verdicts stand (each
            # shard held all repeats of its combinations).
            for combo in (c for combos in self.combinations.values() for c in combos):
                reported = self.reported_verdicts.get(combo.combo)
                if reported:
                    combo.comparison = reported
                    self.gate_failures += [f"{combo.combo} {m}" for m in reported["messages"]]
            return
        for test, records in self.sweeps():
            declared = [Metric.from_dict(m) for m in self.definitions[test]["metrics"]]
            combos = self.combinations.get(test) or repeats.combine(records)
            if settings.gate == "best":
                primary = table.columns(records, declared)[:1]
                self._gate_best(test, combos, primary[0] if primary else None, declared)
                continue
            for combo in self.combinations.get(test, []):
                entry = entries.get(combo.combo)
                if not baseline.repeated(entry):
                    continue  # n = 1 on a side: each repeat was judged as its own trial
                combo.comparison = repeats.compare(
                    combo, entry, declared, settings.tolerance, settings.alpha
                )
                if combo.comparison is not None:
                    self.gate_failures += [
                        f"{combo.combo} {m}" for m in combo.comparison["messages"]
                    ]

    def _gate_best(
        self,
        test: str,
        combos: list[Combination],
        primary: Metric | None,
        declared: list[Metric],
    ) -> None:
        """`--hparams-gate best`: the sweep's best combination against the baseline's best."""
        from pytest_hparams import repeats

        settings = self.settings
        entries = {k: e for k, e in (settings.baseline or {}).items() if e.get("test") == test}
        if primary is None or not entries:
            return
        if settings.shard is not None:
            # A shard sees some combinations only: the sweep's best is
            # decided by `merge --gate best` over every shard's report.
            return
        sign = 1.0 if primary.goal == "max" else -1.0

        def rank(mean: float, name: str) -> tuple[float, str]:
            # Best first; ties go to the smaller name on both sides.
            return (-sign * mean if math.isfinite(mean) else math.inf, name)

        ranked = sorted(combos, key=lambda c: rank(c.summary(primary.name).mean, c.combo))
        candidates = [k for k, e in entries.items() if primary.name in e["metrics"]]
        if not candidates:
            self.gate_failures.append(
                f"{test}: --hparams-gate best cannot compare: the baseline holds no "
                f"{primary.name!r}, the primary metric; save a new baseline"
            )
            return
        base_key = min(candidates, key=lambda k: rank(entries[k]["metrics"][primary.name], k))
        if not ranked:
            return
        # Every combination's change is shown; only the best's can fail the run.
        for combo in combos:
            entry = entries.get(combo.combo)
            if entry is not None:
                combo.comparison = repeats.compare(
                    combo, entry, declared, settings.tolerance, settings.alpha
                )
        best = ranked[0]
        comparison = repeats.compare(
            best, entries[base_key], declared, settings.tolerance, settings.alpha
        )
        if comparison is not None:
            best.comparison = {**comparison, "against": base_key}
            self.gate_failures += [
                f"{test}: best {best.combo} against the baseline's best {base_key}: {m}"
                for m in comparison["messages"]
            ]
        for combo in combos:  # one trial each: the table shows trials
            if len(combo.records) == 1 and combo.records[0].key.repeat is None:
                combo.records[0].comparison = combo.comparison

    def write_reports(self) -> None:
        """Writes the baseline, JSON and Markdown reports that were asked for.

        Each is written whole or not at all; one that fails does not stop the
        others, and is named in `failed_writes`.
        """
        if self._config_error:
            self._update_config()  # one more try
            if self._config_error:
                self.failed_writes.append(self._config_error)
        settings = self.settings
        asked = (settings.save_baseline, settings.json_path, settings.markdown_path)
        if asked == (None, None, None):
            return  # and no run pays for importing the writers
        from pytest_hparams import baseline, export

        records = self.all_records
        not_run = self.not_run()
        jobs: list[tuple[str, Path | None, Callable[[Path], str]]] = [
            (
                "baseline saved",
                settings.save_baseline if records else None,
                lambda path: baseline.save_records(
                    path, settings.saved, records, self.regressed_combinations()
                ),
            ),
            (
                "json report",
                settings.json_path,
                lambda path: export.write(path, export.json_report(self, not_run)),
            ),
            (
                "markdown summary",
                settings.markdown_path,
                lambda path: export.write(path, export.markdown_report(self, not_run)),
            ),
        ]
        for name, path, write in jobs:
            if path is None:
                continue
            try:
                detail = write(path)
            except (OSError, HParamsError, ValueError) as e:
                reason = getattr(e, "strerror", None) or str(e)
                self.failed_writes.append(
                    f"hparams: could not write the {name.removesuffix(' saved')} to {shown(path)} "
                    f"({type(e).__name__}: {reason})"
                )
            else:
                self.written.append(f"{name}: {shown(path)}{detail}")

    def lines(self, quiet: bool = False) -> list[Line]:
        """The terminal summary: one table per sweep (one line each if quiet),
        the baseline verdicts, the logdir and what was written."""
        settings = self.settings
        out: list[Line] = []
        not_run = self.not_run()
        gated = settings.baseline is not None or any(r.comparison for r in self.all_records)
        if settings.show_table and self.records:
            # Here: a run without sweeps (most runs of a project) never imports them.
            from pytest_hparams import table
            from pytest_hparams.metrics import Metric

            if quiet:
                out.append(("hparams", {"sep": True}))
            for test, records in self.sweeps():
                definition = self.definitions[test]
                metrics = [Metric.from_dict(m) for m in definition["metrics"]]
                missing = [n[len(test) :] for n in not_run if n.startswith(test + "[")]
                combos = self.combinations.get(test)
                if quiet:
                    line = table.format_best_line(test, records, metrics, combos)
                    if gated:
                        line += "; " + table.format_verdict(combos or records, missing)
                    out.append((line, {}))
                    continue
                out.append((f"hparams: {test}", {"sep": True}))
                names = [h["name"] for h in definition["hparams"]]
                for text in table.format_table(records, names, metrics, settings.top, combos):
                    markup = {}
                    if text.endswith(" regressed"):
                        markup = {"red": True}
                    elif text.endswith(" improved"):
                        markup = {"green": True}
                    out.append((text, markup))
                if gated:
                    out.append((table.format_verdict(combos or records, missing), {}))
        if gated and self.records:
            out.extend((text, {}) for text in self._baseline_notes(not_run, quiet))
        store = settings.store
        if store is not None and self.records:
            out.append((f"logdir: {shown(store.shown)}", {}))
            out.append((f"view:   tensorboard --logdir {shlex.quote(shown(store.shown))}", {}))
        elif self.records and not quiet and settings.show_table:
            out.append(("record the trials for TensorBoard with --hparams-logdir DIR", {}))
        if self.gate_failures:
            out.append(("hparams baseline gate: FAILED", {"sep": True}))
            out.extend((text, {"red": True}) for text in self.gate_failures)
        out.extend((text, {}) for text in self.written)
        out.extend((text, {"red": True}) for text in self.failed_writes)
        return out

    def _baseline_notes(self, not_run: list[str], quiet: bool) -> Iterable[str]:
        entries = self.settings.baseline
        if entries and not self._ran() & entries.keys():
            yield (
                f"baseline: none of its {len(entries)} trials is a trial of this run: "
                "it is another project's, or the tests were renamed, or pytest chose another "
                "rootdir (write path options as --opt=PATH); "
                "write one for these sweeps with --hparams-save-baseline"
            )
            return
        elsewhere = [n for n in not_run if n.split("[", 1)[0] not in self.records]
        if elsewhere and not quiet:
            tests = sorted({n.split("[", 1)[0] for n in elsewhere})
            yield f"baseline: {len(elsewhere)} trials of {', '.join(tests)} not run"

    @pytest.hookimpl
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.usage_error is not None:
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
            return
        self.decide_gate()
        # Written even when no trial ran (a shard with none, -k): a report
        # left from an earlier run would otherwise pass for this one's.
        self.write_reports()
        if self.gate_failures and session.exitstatus == pytest.ExitCode.OK:
            # No single item carries a verdict over repeats: the run fails,
            # as pytest-cov's --cov-fail-under fails it.
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if self.failed_writes and session.exitstatus == pytest.ExitCode.OK:
            # What a CI gate reads was not written: the run must not pass.
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.usage_error is not None:
            terminalreporter.write_line(f"ERROR: {self.usage_error}", red=True)
            return
        for text, markup in self.lines(self.quiet):
            if markup.pop("sep", False):
                terminalreporter.write_sep("=", text)
            else:
                terminalreporter.write_line(text, **markup)

    def regressed_combinations(self) -> list[str]:
        return [
            c.combo
            for combos in self.combinations.values()
            for c in combos
            if c.verdict == "regressed"
        ]

    @property
    def ok(self) -> bool:
        """Whether every report asked for was written."""
        return not self.failed_writes


def shown(path: Path | str) -> str:
    """A path as the user would type it: relative to here when inside it."""
    if "://" in str(path):
        return str(path)
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
    return str(path) if relative.startswith("..") else relative


class XdistHooks:
    """The controller's xdist hooks, registered only where xdist is."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter

    @pytest.hookimpl
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        output = getattr(node, "workeroutput", None) or {}
        if USAGE_ERROR_OUTPUT in output and self.reporter.usage_error is None:
            self.reporter.usage_error = str(output[USAGE_ERROR_OUTPUT])
