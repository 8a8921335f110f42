"""The reporting process's view of a run: every trial's record, and all that
is made from them once: the logdir's experiment config, the gates' decision,
the baseline saved, the JSON, Markdown and HTML reports, and the terminal tables.

A `Reporter` is made only where pytest reports (the controller under
xdist, as pytest's junitxml registers its `LogXML` there); the plugin's hooks
call its methods of the same names. `python -m pytest_hparams merge`
drives the same class with the records of several JSON reports, so a
merged table is the table pytest prints.
"""

from __future__ import annotations

import contextlib
import os
import shlex
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest

from pytest_hparams import baseline, export, gates, table
from pytest_hparams.controller import Crash, TrialTable
from pytest_hparams.errors import HParamsError
from pytest_hparams.logdir import (
    CONFIG_FILE,
    Curves,
    ExperimentConfig,
    read_curves,
    run_path,
    safe_name,
    test_path,
    write_mean_run,
)
from pytest_hparams.neighbours import Neighbours
from pytest_hparams.pruning import JOURNAL_LOCK_SUFFIX
from pytest_hparams.records import (
    PRUNED_ATTR,
    RECORD_ATTR,
    STARTED_ATTR,
    Outcome,
    Started,
    TrialRecord,
)
from pytest_hparams.storage import LocalStore, RemoteStore
from pytest_hparams.studies import end_crashed, journal_of, study_base
from pytest_hparams.sweep import SWEEP_HPARAM, trial_id
from pytest_hparams.verdicts import Verdict

if TYPE_CHECKING:
    from pytest_hparams.baseline import Entry
    from pytest_hparams.gates import Decision
    from pytest_hparams.records import SweepDefinition, TrialKey
    from pytest_hparams.report_html import SweepView
    from pytest_hparams.settings import Settings
    from pytest_hparams.storage import Session
    from pytest_hparams.verdicts import Comparison

_Carried = TypeVar("_Carried", Started, TrialRecord)
Line = tuple[str, dict[str, bool]]  # a terminal line and its markup
_MARKUP = {"regressed": {"red": True}, "improved": {"green": True}}  # a table row's, by its mark


class Reporter:
    """Turns trial records into the config, baselines, reports and tables.

    Args:
      settings: The run's options (`settings.read`, or `merge`'s own).
      quiet: pytest -q: one line per sweep.
      merged: Run by `merge`, over reports the shards wrote.
    """

    def __init__(self, settings: Settings, quiet: bool = False, merged: bool = False) -> None:
        self.settings = settings
        self.quiet = quiet
        self.merged = merged
        self.interrupted = False  # the run was cut short (Ctrl-C): its reports say so
        self.records: dict[str, dict[str, TrialRecord]] = {}  # by sweep, then node id
        self.definitions: dict[str, SweepDefinition] = {}
        self.failed_writes: list[str] = []  # reports that could not be written
        self.written: list[str] = []
        # The xdist controller's account of the trials, for those whose worker died.
        self.table = TrialTable()
        self.never_rerun: list[str] = []  # crashed, and the rerun they were due never ran
        self.unknown: list[str] = []  # crashed, and no worker could say which trial it was
        self._metric_names: set[str] = set()
        self._pruned_column = False  # a trial was pruned: the dashboard's column is due
        self._config_due = False  # the experiment config has something to add
        self._sweeps_in_logdir = 0  # as the logdir's experiment config lists them
        self._config_error: str | None = None
        self.usage_error: str | None = None  # found by xdist workers as they collected
        self.decision: Decision | None = None  # the gates', once every trial is known
        # merge: the baseline entries the shards' reports say they did not
        # run, and the verdicts they gave their repeated combinations.
        self.baseline_not_run: set[str] | None = None
        self.reported: dict[str, Comparison] = {}
        # Each trial's logged curves, by node id: as merge read them from the
        # shards' reports, or read from a local logdir once, when asked.
        self.loaded_curves: dict[str, Curves] = {}
        self._curves: dict[str, Curves] | None = None
        self._read: dict[str, Curves] = {}  # each trial's run's curves, read once
        # The other runs recording into a local logdir at the same time.
        self.neighbours: Neighbours | None = None
        self.journal: str | None = None  # the xdist workers' temporary one, if any

    # --- records arriving -----------------------------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "teardown":  # the rerun it was due, if any, ran
            self.table.ended(report.nodeid)
        started = _carried(report, STARTED_ATTR, Started)
        if started is not None:
            self._started(report.nodeid, started)
        record = _carried(report, RECORD_ATTR, TrialRecord)
        if record is not None:
            self.add(record)

    def _started(self, nodeid: str, started: Started) -> None:
        """What a trial's start tells: its sweep's definition, the first time
        a process runs one of its trials, and on a worker, which trial it is."""
        if started.definition is not None:
            self.add_definition(started.definition)
        if started.key is not None:  # kept in case the worker dies
            self.table.started(nodeid, started)

    def _local_store(self) -> LocalStore | None:
        """The logdir, where this process reads and writes its files directly:
        None for a bucket, and in `merge`, which has only the shards' reports."""
        store = self.settings.store
        if store is None or isinstance(store, RemoteStore) or self.merged:
            return None
        return store

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        store = self._local_store()
        if store is not None:
            try:
                self.neighbours = Neighbours(store.root, self.settings.shard)
            except OSError:  # a logdir that cannot be written says so when a trial writes
                self.neighbours = None
            else:
                self._drop_stale_journal_lock()

    def _drop_stale_journal_lock(self) -> None:
        """Removes the journal's lock when no other run is live: a run killed
        mid-write left it (this run's workers start after this), and Optuna
        would wait 30 s, its grace period, before breaking it."""
        journal = journal_of(self.settings)
        assert self.neighbours is not None
        if journal is None:
            return
        lock = journal + JOURNAL_LOCK_SUFFIX
        if os.path.islink(lock) and self.neighbours.alone():
            with contextlib.suppress(OSError):
                os.unlink(lock)

    def add_definition(self, definition: SweepDefinition) -> None:
        if definition.test not in self.definitions:
            if self.neighbours is not None:
                self.neighbours.add_sweep(definition.test)
            self.definitions[definition.test] = definition
            # Declared metrics go into the config with the sweep: a trial
            # returning them changes nothing there.
            self._metric_names.update(m.name for m in definition.metrics)
            self._config_due = True

    def add(self, record: TrialRecord) -> None:
        """Keeps a trial's record; a later record of the same trial (a rerun
        by pytest-rerunfailures) replaces the earlier one."""
        self.table.ended(record.nodeid)
        self.records.setdefault(record.test, {})[record.nodeid] = record
        new = record.metrics.keys() - self._metric_names
        if new:
            self._metric_names.update(new)
            self._config_due = True
        if record.outcome is Outcome.PRUNED and not self._pruned_column:
            self._pruned_column = self._config_due = True  # a sweep without a pruner too

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        # Once the item's fixtures are gone: a fixture that patches the file
        # system (pyfakefs's `fs`) must not receive the logdir's config.
        if self._config_due or self._config_error:
            self._update_config()

    def resolve_crashes(self) -> None:
        """Records, once the session ends, each trial whose xdist worker
        died running it, as CRASHED (see `controller.TrialTable`)."""
        resolution = self.table.resolve()
        for crash in resolution.crashes:
            self._add_crash(crash, resolution.definitions)
        self.never_rerun += [nodeid for nodeid, due in resolution.unknown if due]
        self.unknown = [nodeid for nodeid, _ in resolution.unknown]

    def _add_crash(self, crash: Crash, definitions: Mapping[str, SweepDefinition]) -> None:
        """Records one trial whose worker died as CRASHED, with its sweep's
        definition (from `definitions`) if no report gave it."""
        key = self._crashed_key(crash)
        if key.test in definitions:  # a sweep no report defined
            self.add_definition(definitions[key.test])
        self.add(TrialRecord(key, Outcome.CRASHED, self._last_logged(key)))
        if crash.never_rerun:
            self.never_rerun.append(crash.nodeid)

    def end_crashed_in_studies(self) -> None:
        """Ends, as FAIL, the Optuna trials that dead workers left RUNNING:
        a crashed trial's, and a crashed run of one a rerun finished since."""
        nodeids = self.table.crashed_once
        bases = self._crashed_study_bases(nodeids)
        if not bases:
            return
        settings = self.settings
        journal = journal_of(settings, self.journal)
        try:
            end_crashed(settings.storage, journal, bases, nodeids, settings.began)
        except Exception as e:  # whatever the storage raises: resume ends them too
            self.written.append(
                f"hparams: could not end the crashed trials in their Optuna study "
                f"({type(e).__name__}: {e}); --hparams-resume ends them"
            )

    def _crashed_study_bases(self, nodeids: Collection[str]) -> set[str]:
        """The studies that hold a trial of these node ids (only sweeps that
        prune or ask have one)."""
        studied = self._studied_sweeps()
        return {
            study_base(r.key.test, r.key.case)
            for r in self.all_records
            if r.nodeid in nodeids and r.test in studied
        }

    def _studied_sweeps(self) -> set[str]:
        """The sweeps whose trials are kept in an Optuna study: those that prune or ask."""
        return {t for t, d in self.definitions.items() if d.prunes or d.asked}

    def _gate_failures(self) -> list[str]:
        return list(self.decision.failures) if self.decision is not None else []

    def write_means(self) -> None:
        """Writes, beside a repeated sweep's trials in a local logdir, a run of
        each combination's mean curves over its repeats (`mean~<combination>`)."""
        store = self._local_store()
        if store is None:
            return
        for by_id in self.records.values():
            for keys in _repeats_by_combination(by_id.values()).values():
                try:
                    self._write_mean_run(store, keys)
                except OSError as e:  # said, but the run's verdict does not hang on it
                    self.written.append(
                        f"hparams: could not write the mean curves of {keys[0].group} "
                        f"({type(e).__name__}: {e}); its trials' own runs are as recorded"
                    )

    def _write_mean_run(self, store: LocalStore, keys: list[TrialKey]) -> None:
        """One combination's mean run, where two or more of its repeats logged curves."""
        curves = [c for c in map(self._run_curves, keys) if c]
        if len(curves) > 1:
            name = f"mean~{safe_name(keys[0].where.strip('[]'))}"
            write_mean_run(store.root / test_path(keys[0].folder) / name, curves)

    def _crashed_key(self, crash: Crash) -> TrialKey:
        """A crashed trial's key, its session in the logdir ended as crashed."""
        key = crash.started.key
        assert key is not None
        store = self.settings.store
        if store is None:
            return key
        run = run_path(key.folder, key.params)
        if key.number is not None and crash.as_collected:
            key = _with_asked_values(key, store.session(run))
        hparams = {**key.hparams, SWEEP_HPARAM: key.sweep_label}
        store.mark_crashed(run, crash.started.staging, (key.label, hparams))
        return key

    def _last_logged(self, key: TrialKey) -> dict[str, float]:
        """A crashed trial's metrics: its last logged values, as TensorBoard
        shows them (a local logdir's; a bucket's are the dead worker's)."""
        curves = self._run_curves(key).get("", {})
        return {
            tag: points[max(points)]
            for tag, points in curves.items()
            if points and not tag.startswith("pytest.")
        }

    def _run_curves(self, key: TrialKey) -> Curves:
        """A trial's curves as its run in a local logdir holds them, read once
        for the mean runs, a crashed trial's metrics and the reports ({} for
        a bucket, in `merge`, or for a run that cannot be read)."""
        if key.nodeid not in self._read:
            store = self._local_store()
            curves: Curves = {}
            if store is not None:
                run = store.root / run_path(key.folder, key.params)
                with contextlib.suppress(OSError):  # drawn, and averaged, without it
                    curves = read_curves(run) if run.is_dir() else {}
            self._read[key.nodeid] = curves
        return self._read[key.nodeid]

    def _update_config(self) -> None:
        """Merges this run's sweeps and metrics into the logdir's experiment config.

        The read, merge and write hold the logdir's lock, so two pytest
        processes recording into one local logdir both end up in its config.
        A config that could not be read is never written over: it holds the
        sweeps of earlier runs; the merge is tried again with the next record.
        """
        store = self.settings.store
        self._config_due = False
        if store is None or not self.definitions:
            return
        try:
            with store.lock():
                experiment = ExperimentConfig(store.read(CONFIG_FILE))
                if self._add_to_config(experiment):
                    store.write(CONFIG_FILE, experiment.encode())
            self._sweeps_in_logdir = experiment.sweeps
            self._config_error = None
        except (OSError, HParamsError) as e:
            self._config_error = (
                f"hparams: could not write the experiment config to {store.shown} "
                f"({type(e).__name__}: {e}); the next run of these sweeps into it writes it"
            )

    def _add_to_config(self, experiment: ExperimentConfig) -> bool:
        """Adds this run's sweeps, metrics and pruned column to an experiment
        config; returns whether it changed."""
        changed = False
        for definition in self.definitions.values():
            changed |= experiment.add_sweep(definition)
        changed |= experiment.add_metrics(sorted(self._metric_names))
        if self._pruned_column:
            changed |= experiment.add_pruned_column()
        return changed

    # --- the end of the run -------------------------------------------------------

    @property
    def all_records(self) -> list[TrialRecord]:
        return [r for by_id in self.records.values() for r in by_id.values()]

    def not_run(self) -> list[str]:
        """Baseline entries this run did not record."""
        keys = self.settings.baseline or self.baseline_not_run
        if not keys:
            return []
        ran = self._ran()
        return sorted(k for k in keys if k not in ran)

    def _ran(self) -> set[str]:
        """The node ids and combinations this run recorded (baseline keys)."""
        return {k for r in self.all_records for k in (r.nodeid, r.key.group)}

    def _not_run_of(self, test: str, not_run: list[str]) -> list[str]:
        """A sweep's baseline entries that did not run, named by their values."""
        entries = self.settings.baseline or {}
        names = self.definitions[test].hparam_names  # in declaration order, as in ids
        return [
            f"[{_entry_id(entries[n], names)}]"
            for n in not_run
            if entries.get(n, {}).get("test") == test
        ]

    def decide_gate(self) -> Decision | None:
        """The gates' verdicts where every trial is known: on the controller
        under xdist, and in `merge` for shards; None when no trial ran."""
        if not self.records:
            return None  # and a run without sweeps imports no gate
        settings = self.settings
        self.decision = gates.decide(
            {test: list(by_id.values()) for test, by_id in self.records.items()},
            {test: d.metrics for test, d in self.definitions.items()},
            settings.baseline,
            settings.tolerance,
            settings.alpha,
            settings.gate,
            sharded=settings.shard is not None,
            reported=self.reported,
            merged=self.merged,
            asked={test for test, d in self.definitions.items() if d.asked},
        )
        return self.decision

    def regressed_combinations(self) -> list[str]:
        decision = self.decision
        if decision is None:
            return []
        return [
            c.combo
            for combos in decision.combinations.values()
            for c in combos
            if c.verdict is Verdict.REGRESSED
        ]

    def tables(self, top: int | None) -> list[table.Table]:
        """Every sweep's table model, for the terminal and the Markdown summary."""
        combinations = self.decision.combinations if self.decision else {}
        gated = self.settings.baseline is not None or any(r.comparison for r in self.all_records)
        not_run = self.not_run()
        return [
            table.build(
                self.definitions[test],
                list(by_id.values()),
                top,
                combinations.get(test),
                gated,
                self._not_run_of(test, not_run),
            )
            for test, by_id in self.records.items()
        ]

    def write_reports(self) -> None:
        """Writes the baseline, JSON and Markdown reports that were asked for.

        Each is written whole or not at all; one that fails does not stop the
        others, and is named in `failed_writes`.
        """
        self._finish_config()
        settings = self.settings
        asked = (
            settings.save_baseline,
            settings.json_path,
            settings.markdown_path,
            settings.html_path,
        )
        if not any(asked):
            return  # and no run pays for importing the writers
        for name, path, write in self._report_jobs():
            if path is not None:
                self._write_report(name, path, write)

    def _finish_config(self) -> None:
        """Merges into the experiment config what it still lacks (one more
        try, or the first with merge's records), and names it among
        `failed_writes` if that fails."""
        if self._config_due or self._config_error:
            self._update_config()
            if self._config_error:
                self.failed_writes.append(self._config_error)

    def _report_jobs(self) -> list[tuple[str, Path | None, Callable[[Path], str]]]:
        """Each report's name, its path (None when not asked) and its writer,
        which returns what to add to the line that names the written file."""
        settings = self.settings
        records = self.all_records
        not_run = self.not_run()
        combinations = self.decision.combinations if self.decision else {}
        sweeps = [
            (self.definitions[test], list(by_id.values()), combinations.get(test))
            for test, by_id in self.records.items()
        ]
        return [
            (
                "baseline saved",
                settings.save_baseline if records else None,
                lambda path: baseline.save_records(
                    path, settings.saved, records, self.regressed_combinations(), settings.baseline
                ),
            ),
            (
                "json report",
                settings.json_path,
                lambda path: export.write(
                    path,
                    export.json_report(
                        sweeps,
                        not_run,
                        self._gate_failures(),
                        self.curves(),
                        None if self.merged else self.settings.shard,
                        self.interrupted,
                    ),
                ),
            ),
            (
                "markdown summary",
                settings.markdown_path,
                lambda path: export.write(
                    path, export.markdown_report(self.tables(0), self._html_link(path))
                ),
            ),
            ("html report", settings.html_path, lambda path: export.write(path, self.html())),
        ]

    def _write_report(self, name: str, path: Path, write: Callable[[Path], str]) -> None:
        """Writes one report, and says where, or why it could not."""
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

    def curves(self) -> dict[str, Curves]:
        """Each trial's logged curves, by node id (read once); a sweep whose
        trials logged no more than their final values has none."""
        if self._curves is None:
            found = self._found_curves()
            self._curves = {}
            for by_id in self.records.values():
                self._curves.update(logged_curves({n: found[n] for n in by_id if n in found}))
        return self._curves

    def _found_curves(self) -> dict[str, Curves]:
        """Each trial's curves by node id, plugin tags and all: as merge
        loaded them, or as its run in a local logdir holds them."""
        found = dict(self.loaded_curves)
        for record in self.all_records:
            curves = self._run_curves(record.key)
            if curves:
                found[record.nodeid] = curves
        return found

    def views(self) -> list[SweepView]:
        """Every sweep as the HTML report draws it."""
        from pytest_hparams.report_html import SweepView  # plotly: only where a report is drawn

        combinations = self.decision.combinations if self.decision else {}
        curves = self.curves()
        return [
            SweepView(
                self.definitions[test],
                list(by_id.values()),
                model,
                combinations.get(test),
                {n: curves[n] for n in by_id if n in curves},
            )
            for (test, by_id), model in zip(self.records.items(), self.tables(0), strict=True)
        ]

    def html(self) -> str:
        from pytest_hparams import report_html  # plotly: only where a report is drawn

        title = "pytest-hparams: merged report" if self.merged else "pytest-hparams report"
        return report_html.render(title, [report_html.Part("", self.views())])

    def _html_link(self, markdown: Path) -> str:
        """The HTML report's path from the Markdown's folder, when both are written."""
        html = self.settings.html_path
        if html is None:
            return ""
        return Path(os.path.relpath(html.resolve(), markdown.resolve().parent)).as_posix()

    def lines(self) -> list[Line]:
        """The terminal summary: one table per sweep (one line each if quiet),
        the baseline verdicts, the logdir and what was written."""
        out = self._record_lines() + self._logdir_lines() + self._gate_lines()
        out.extend((text, {"red": True}) for text in self._clashes())
        out.extend((text, {}) for text in self.written)
        out.extend((text, {"red": True}) for text in self.failed_writes)
        return out + self._crash_lines()

    def _record_lines(self) -> list[Line]:
        """The tables (unless turned off) and the notes, once a trial ran."""
        if not self.records:
            return []
        out = self._table_lines() if self.settings.show_table else []
        return out + [(text, {}) for text in self._notes()]

    def _gate_lines(self) -> list[Line]:
        """The gate's failures under a FAILED banner (none when it passed)."""
        failures = self._gate_failures()
        if not failures:
            return []
        return [
            ("hparams baseline gate: FAILED", {"sep": True}),
            *((text, {"red": True}) for text in failures),
        ]

    def _notes(self) -> list[str]:
        """What the baseline and the gates did not judge, and why."""
        notes = list(self._baseline_notes()) if self.settings.baseline is not None else []
        return notes + (self.decision.notes if self.decision is not None else [])

    def _clashes(self) -> list[str]:
        """The sweeps another run recorded into the same logdir at the same time."""
        if self.neighbours is None or not self.neighbours.clashes:
            return []
        sweeps = ", ".join(sorted(self.neighbours.clashes))
        return [
            f"hparams: another pytest run recorded {sweeps} into this logdir at the same "
            "time, and each ran every trial; split the trials between the runs with "
            "--hparams-shard=1/2 and --hparams-shard=2/2"
        ]

    def _table_lines(self) -> list[Line]:
        """Each sweep's table (its summary line alone under -q)."""
        out: list[Line] = [("hparams", {"sep": True})] if self.quiet else []
        top_option = "--top" if self.merged else "--hparams-top"  # merge spells it --top
        for sweep in self.tables(self.settings.top):
            if self.quiet:
                out.append(_summary_line(sweep))
            else:
                out += _table_text(sweep, top_option)
        return out

    def _logdir_lines(self) -> list[Line]:
        """Where the trials were recorded, and the command to open each sweep."""
        store = self.settings.store
        if not self.records:
            return []
        if store is None:
            return self._logdir_hint()
        root = shown(store.shown)
        return [(f"logdir: {root}", {}), *((text, {}) for text in self._view_commands(root))]

    def _logdir_hint(self) -> list[Line]:
        """How to record the trials for TensorBoard, where the tables show in full."""
        if self.quiet or not self.settings.show_table or self.merged:
            return []
        return [("record the trials for TensorBoard with --hparams-logdir=DIR", {})]

    def _view_commands(self, root: str) -> list[str]:
        """The command to open each sweep in TensorBoard."""
        if self._sweeps_in_logdir <= 1:
            return [f"view:   tensorboard --logdir {shlex.quote(root)}"]
        # TensorBoard reads a logdir as one experiment: the union of several
        # sweeps' hparams leaves each trial's row half blank, and no trial has
        # a line across all the axes. A sweep's own folder is an experiment.
        folders = [
            f"{root.rstrip('/')}/{test_path(d.folder)}"
            for d in sorted(self.definitions.values(), key=lambda d: d.test)
        ]
        every = f"tensorboard --logdir {shlex.quote(root)}"
        return [
            *(f"view:   tensorboard --logdir {shlex.quote(folder)}" for folder in folders),
            f"        (every sweep at once: {every})",
        ]

    def _crash_lines(self) -> list[Line]:
        """The trials whose worker died where no rerun or record tells them."""
        out: list[Line] = []
        # Not in the table: every worker died before it could say which trial this was.
        missing = "; not in the table or reports"
        for nodeid in self.never_rerun:
            text = f"{nodeid}: its worker died, and the rerun it was due never ran"
            out.append((text + (missing if nodeid in self.unknown else ""), {"red": True}))
        for nodeid in sorted(set(self.unknown).difference(self.never_rerun)):
            out.append((f"{nodeid}: its worker died{missing}", {"red": True}))
        return out

    def _baseline_notes(self) -> Iterable[str]:
        entries = self.settings.baseline or {}
        protected = self._protected()
        if protected:
            yield (
                f"baseline: {protected} trials with a baseline entry ran unpruned, so the "
                "gate judges every entry (--hparams-prune-baseline lets the pruner stop them)"
            )
        held = self._held_repeats(entries)
        if held:
            yield (
                f"baseline: {held} of its entries hold repeats, and this run has one trial per "
                "combination: each is compared with their mean at the same tolerance, and one "
                "run is noisier than a mean; compare like with like with --hparams-repeats=N"
            )
        yield from self._unmatched_notes(entries)

    def _unmatched_notes(self, entries: Mapping[str, Entry]) -> Iterable[str]:
        """What of the baseline this run did not run, where its tables do not
        tell it: all of it (it is another run's), or other sweeps' entries."""
        if entries and self._foreign(entries):
            yield (
                f"baseline: none of its {len(entries)} trials is a trial of this run: "
                "it is another project's, or the tests were renamed, or pytest chose another "
                "rootdir (write path options as --opt=PATH); "
                "write one for these sweeps with --hparams-save-baseline"
            )
            return
        elsewhere = self._not_run_elsewhere(entries)
        if elsewhere and not self.quiet:
            tests = sorted({str(entries[n].get("test")) for n in elsewhere})
            yield f"baseline: {len(elsewhere)} trials of {', '.join(tests)} not run"

    def _foreign(self, entries: Mapping[str, Entry]) -> bool:
        """Whether no entry of the baseline is a trial, or of a sweep, of this run."""
        sweeps = {e.get("test") for e in entries.values()}
        return not self._ran() & entries.keys() and not sweeps & self.records.keys()

    def _not_run_elsewhere(self, entries: Mapping[str, Entry]) -> list[str]:
        """The entries not run of sweeps this run did not run at all (a sweep
        this run ran tells its own in its table)."""
        return [n for n in self.not_run() if entries.get(n, {}).get("test") not in self.records]

    def _protected(self) -> int:
        """How many trials of pruned sweeps ran unpruned for their baseline entry."""
        pruned_sweeps = [t for t, d in self.definitions.items() if d.prunes]
        return sum(
            1
            for test in pruned_sweeps
            for r in self.records.get(test, {}).values()
            if self.settings.protects(r.key.group) and r.outcome is not Outcome.RESUMED
        )

    def _held_repeats(self, entries: Mapping[str, Entry]) -> int:
        """How many entries hold repeats of a sweep this run ran once a combination."""
        single = self._unrepeated_sweeps()
        return sum(1 for e in entries.values() if e.get("test") in single and gates.repeated(e))

    def _unrepeated_sweeps(self) -> set[str]:
        """The sweeps this run ran once a combination (no trial is a repeat)."""
        return {
            t
            for t, by_id in self.records.items()
            if all(r.key.repeat is None for r in by_id.values())
        }

    def pytest_report_teststatus(
        self, report: pytest.TestReport
    ) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
        # Its own word in pytest's summary line ("12 passed, 7 pruned"): a
        # skip underneath, so it neither fails the run nor reruns under --lf.
        if report.skipped and getattr(report, PRUNED_ATTR, None) is not None:
            return "pruned", "p", ("PRUNED", {"yellow": True})
        return None

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.usage_error is not None:
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
            if self.neighbours is not None:
                self.neighbours.close()  # this run's marker goes with it
            return
        self.resolve_crashes()
        self.end_crashed_in_studies()
        self.write_means()
        if self.neighbours is not None:
            self.neighbours.close()  # looks a last time first
        self.decide_gate()
        self.interrupted = session.exitstatus == pytest.ExitCode.INTERRUPTED
        # Written even when no trial ran (a shard with none, -k): a report
        # left from an earlier run would otherwise pass for this one's.
        self.write_reports()
        if self._fails_the_run() and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _fails_the_run(self) -> bool:
        """Whether a run whose items all passed fails: a trial never ended; a
        gate failed that no single item carries (a verdict over repeats, as
        pytest-cov's --cov-fail-under fails a run); or a report a CI gate
        reads was not written."""
        return bool(self.never_rerun or self._gate_failures() or self.failed_writes)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.usage_error is not None:
            terminalreporter.write_line(f"ERROR: {self.usage_error}", red=True)
            return
        _write_lines(terminalreporter, self.lines())
        if self._gate_failures():
            # Said on pytest's own summary line too ("12 passed, 1 gate failed"):
            # the exit code is 1, and no item failed.
            terminalreporter.stats.setdefault("gate failed", []).append(self.decision)
        chars = str(terminalreporter.config.getoption("reportchars", "") or "")
        if {"s", "a", "A"} & set(chars):
            # pytest's short summary lists only its own words: -rs, -ra and
            # -rA would leave pruned trials out, which are skips underneath.
            _write_pruned(terminalreporter)

    @property
    def ok(self) -> bool:
        """Whether every report asked for was written."""
        return not self.failed_writes


def _with_asked_values(key: TrialKey, session: Session | None) -> TrialKey:
    """A search's trial as collected, with the values it was asked: they are
    in the session its worker began, if it began one."""
    if session is None:
        return key
    return key._replace(hparams={k: v for k, v in session[0].items() if k != SWEEP_HPARAM})


def _carried(report: pytest.TestReport, attr: str, kind: type[_Carried]) -> _Carried | None:
    """What a report carries at `attr` (a trial's start or record), as this
    process or an xdist worker sent it, or None."""
    value = getattr(report, attr, None)
    if isinstance(value, dict):  # from an xdist worker
        return kind.from_dict(value)
    return value


def _entry_id(entry: Entry, names: list[str]) -> str:
    """A baseline entry's trial id: its values in the sweep's declaration order."""
    values = entry.get("hparams") or {}
    return trial_id({k: values[k] for k in names if k in values})


def _summary_line(sweep: table.Table) -> Line:
    """A sweep's one line under -q: its summary, and its verdict if it has one."""
    line = f"{sweep.test}: {sweep.summary}"
    return (f"{line}; {sweep.verdict}" if sweep.verdict else line, {})


def _table_text(sweep: table.Table, top_option: str) -> list[Line]:
    """A sweep's table under its banner, rows marked by their verdict."""
    return [
        (f"hparams: {sweep.test}", {"sep": True}),
        *(
            (text, dict(_MARKUP.get(mark, {})))
            for text, mark in table.text_lines(sweep, top_option)
        ),
    ]


def _write_lines(terminalreporter: pytest.TerminalReporter, lines: list[Line]) -> None:
    """Writes the summary's lines, those marked `sep` as pytest's banners."""
    for text, markup in lines:
        if markup.pop("sep", False):
            terminalreporter.write_sep("=", text)
        else:
            terminalreporter.write_line(text, **markup)


def _write_pruned(terminalreporter: pytest.TerminalReporter) -> None:
    """Each pruned trial's line in pytest's short test summary."""
    for report in terminalreporter.stats.get("pruned", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
        reason = reason.removeprefix("Skipped: ")
        terminalreporter.write_line(f"PRUNED {report.nodeid} - {reason}", yellow=True)


def _repeats_by_combination(records: Iterable[TrialRecord]) -> dict[str, list[TrialKey]]:
    """The keys of a sweep's repeats that did not crash, by combination."""
    combos: dict[str, list[TrialKey]] = {}
    for record in records:
        if record.key.repeat is not None and record.outcome is not Outcome.CRASHED:
            combos.setdefault(record.key.group, []).append(record.key)
    return combos


def logged_curves(curves: dict[str, Curves]) -> dict[str, Curves]:
    """A sweep's curves without the plugin's own tags (`pytest.pruned`), or
    none when no trial logged a tag at two steps or more: then they are the
    final values its trials returned, which the table holds."""
    kept = {nodeid: _users_tags(by_group) for nodeid, by_group in curves.items()}
    if not any(_stepped(by_group) for by_group in kept.values()):
        return {}
    return {n: {g: t for g, t in c.items() if t} for n, c in kept.items()}


def _users_tags(curves: Curves) -> Curves:
    """A trial's curves without the plugin's own tags."""
    return {
        group: {tag: points for tag, points in tags.items() if not tag.startswith("pytest.")}
        for group, tags in curves.items()
    }


def _stepped(curves: Curves) -> bool:
    """Whether a trial logged some tag at two steps or more."""
    return any(len(points) > 1 for tags in curves.values() for points in tags.values())


def shown(path: Path | str) -> str:
    """A path as the user would type it: relative to here when inside it."""
    if "://" in str(path):
        return str(path)
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
    return str(path) if relative.startswith("..") else relative
