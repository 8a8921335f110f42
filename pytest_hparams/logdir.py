"""The files under `--hparams-logdir`: run directories, trial event files and
the merged experiment config, in TensorBoard's run layout.

    DIR/events.out.tfevents.0.pytest-hparams      experiment config (root run)
    DIR/<test path>/<test name>/<trial>/events...  one run per trial

Writes are arranged so that what a user already recorded survives a crash:
the config is replaced atomically, and a trial that is run again writes to a
hidden file that replaces the old session only when the trial ends.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import math
import os
import re
import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_hparams import events
from pytest_hparams.files import real_os, write_atomically
from pytest_hparams.metrics import Metric
from pytest_hparams.records import SweepDefinition
from pytest_hparams.sweep import PRUNED_METRIC, SWEEP_HPARAM, Domain, Value, merge_domains

CONFIG_FILE = "events.out.tfevents.0.pytest-hparams"
_PENDING = ".pending."
_MAX_NAME = 80
_UNSAFE = re.compile(r"[^A-Za-z0-9._,=+@-]")
_counter = itertools.count()


#: A trial's scalar curves: by metric group ("" for its own run, else the
#: subdirectory, as Keras' `train` and `validation`), tag, then step.
Curves = dict[str, dict[str, dict[int, float]]]


def safe_name(text: str) -> str:
    """A path component for `text` that stays inside its parent directory.

    Unsafe characters become `_`; a name that had to change (or is too long)
    gets a short hash of the original, so `a/b` and `a_b` never collide.
    """
    clean = _UNSAFE.sub("_", text.replace(":", "="))
    if clean.startswith("."):
        clean = "_" + clean
    lossless = clean == text.replace(":", "=") and "=" not in text
    if lossless and 0 < len(clean) <= _MAX_NAME:
        return clean
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    return f"{clean[:_MAX_NAME]}~{digest}"


def test_path(folder: Sequence[str]) -> str:
    """A swept function's folder relative to the logdir, `/`-separated: the
    parts of its file's path, its classes and its name (`TrialKey.folder`)."""
    return "/".join(safe_name(p) for p in folder if p)


def run_path(folder: Sequence[str], trial_id: str) -> str:
    """A trial's run directory relative to the logdir, `/`-separated: the
    test's folder, then the trial."""
    return f"{test_path(folder)}/{safe_name(trial_id)}"


def test_dir(logdir: str, folder: Sequence[str]) -> str:
    """The folder of one swept function's runs under a local logdir: a
    trial's run directory is this folder, then `safe_name(trial_id)`."""
    path = os.path.join(logdir, *(safe_name(p) for p in folder if p))
    # safe_name already rules out separators and dot-names; this is the
    # guarantee, kept next to the code that relies on it.
    if not path.startswith(os.path.join(logdir, "")):
        raise ValueError(f"run directory {path} escapes {logdir}")
    return path


def _pending_name(final: str) -> str:
    # TensorBoard loads every file whose name holds "tfevents", dot-files
    # too: a rerun's unfinished file must not, or a killed attempt's curve
    # would show beside the recorded session.
    return _PENDING + final.replace("tfevents", "pending")


def _event_files(directory: str) -> list[str]:
    if not real_os.isdir(directory):
        return []
    return [
        os.path.join(root, name)
        for root, _, names in real_os.walk(directory)
        for name in names
        if "tfevents" in name or name.startswith(_PENDING)
    ]


def _by_group(values: Mapping[str, float], groups: Mapping[str, str]) -> dict[str, bytes]:
    if not groups:  # the common case: every metric in the trial's own run
        return {"": b"".join([events.scalar_summary(n, v) for n, v in values.items()])}
    summaries: dict[str, bytes] = {}
    for name, value in values.items():
        group = groups.get(name, "")
        summaries[group] = summaries.get(group, b"") + events.scalar_summary(name, value)
    return summaries


_origin: list[str] = []  # ".<host>.<pid>", made once per process


def _forget_origin() -> None:
    _origin.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_origin)  # a forked child has its own pid


def _event_file_name(kind: str = "", now: float | None = None) -> str:
    # TensorBoard takes any name holding "tfevents"; the counter keeps names
    # distinct within a process, pid and host across processes.
    if not _origin:
        _origin.append(f".{socket.gethostname()}.{os.getpid()}.")
    return (
        f"events.out.tfevents.{int(time.time() if now is None else now)}{_origin[0]}"
        f"{next(_counter)}.{kind}pytest-hparams"
    )


def _one_event_file(summary: bytes) -> bytes:
    """A whole event file: the file-version header and one event at step 0."""
    now = time.time()
    return events.frame(events.event_bytes(now), events.event_bytes(now, 0, summary))


# Read and write: a file the test deletes while it runs is read back (TrialWriter.finish).
_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)


def _write_all(fd: int, data: bytes) -> None:
    written = real_os.write(fd, data)
    while written < len(data):  # a short write: the disk filled up, or a signal
        written += real_os.write(fd, data[written:])


class TrialWriter:
    """Owns the event files of one trial's run.

    Every record goes to its file at once, unbuffered: the session start is
    on disk before the test body runs, so a process killed mid-trial leaves
    a session that reads as unknown, not an empty file.

    Args:
      path: The run directory.
      group_name: The session group: the dashboard's Trial ID (`TrialKey.label`).
      hparams: The trial's values, including the sweep's name.
      fresh: Whether the caller just created `path`, so nothing old is in it.
    """

    def __init__(
        self,
        path: str,
        group_name: str,
        hparams: Mapping[str, Value],
        fresh: bool = False,
    ) -> None:
        self.path = path
        self._old: set[str] = set()
        if not fresh:
            for file in _event_files(path):
                if os.path.basename(file).startswith(_PENDING):
                    # A killed rerun's file: never part of a session.
                    with contextlib.suppress(FileNotFoundError):
                        real_os.unlink(file)
                else:
                    self._old.add(file)
        # A first run writes in place, so curves show live in TensorBoard; a
        # rerun writes aside and replaces the recorded session only at the end.
        self._replacing = bool(self._old)
        # By metric group: the open file, the path written, the path it ends at.
        self._files: dict[str, tuple[int, str, str]] = {}
        self._closed = False
        self.last_step = 0
        now = time.time()
        try:
            fd = self._open("", now)
            _write_all(fd, events.start_records(now, group_name, hparams))
        except BaseException:
            self.discard()  # no open file, and no empty one left to load (a full disk)
            raise

    def _open(self, group: str, now: float) -> int:
        directory = f"{self.path}{os.sep}{group}" if group else self.path
        if group:
            real_os.makedirs(directory, exist_ok=True)
        name, final = self._new_file(directory, now)
        target = f"{directory}{os.sep}{_pending_name(name)}" if self._replacing else final
        fd = real_os.open(target, _OPEN_FLAGS, 0o666)
        self._files[group] = (fd, target, final)
        return fd

    def _new_file(self, directory: str, now: float) -> tuple[str, str]:
        """An event file's name, and its path in `directory`, that no old session's file has."""
        # The old session's files are deleted by name at the end: the new
        # name must differ even when pid and second repeat (containers).
        while True:
            name = _event_file_name("", now)
            final = f"{directory}{os.sep}{name}"  # os.path.join's checks cost more, here
            if final not in self._old:
                return name, final

    def _write(self, group: str, step: int, summary: bytes) -> None:
        now = time.time()
        event = events.event_bytes(now, step, summary)
        entry = self._files.get(group)
        if entry is None:  # a new file starts with the file-version header
            _write_all(self._open(group, now), events.frame(events.event_bytes(now), event))
        else:
            _write_all(entry[0], events.frame(event))

    def scalars(self, step: int, values: Mapping[str, float], groups: Mapping[str, str]) -> None:
        """Writes one point of each metric's curve, into its metric group."""
        for group, summary in _by_group(values, groups).items():
            self._write(group, step, summary)
        self.last_step = max(self.last_step, step)

    def finish(
        self, success: bool, metrics: Mapping[str, float], groups: Mapping[str, str]
    ) -> None:
        """Writes the final metrics and the session end (SUCCESS or FAILURE),
        closes and publishes."""
        status = events.STATUS_SUCCESS if success else events.STATUS_FAILURE
        # TensorBoard's data server drops points at or after a new point's
        # step, so the final values go at the last logged step, not at 0.
        summaries = _by_group(metrics, groups)
        # One event holds the final values and the session end.
        end = summaries.pop("", b"") + events.session_end_summary(status, time.time())
        for group, summary in summaries.items():
            self._write(group, self.last_step, summary)
        self._write("", self.last_step, end)
        self._restore_deleted()
        self._close()
        if self._replacing:
            self._replace_old()

    def _restore_deleted(self) -> None:
        """Writes back, at its path, each file deleted while the trial ran
        (a fixture that empties `trial.logdir` before the test): its open
        descriptor still holds the whole session, though no name reaches it."""
        for group, (fd, written, final) in self._files.items():
            stat = real_os.fstat(fd)
            if stat.st_nlink:
                continue
            data = real_os.pread(fd, stat.st_size, 0)
            real_os.makedirs(os.path.dirname(written), exist_ok=True)
            restored = real_os.open(written, _OPEN_FLAGS, 0o666)
            real_os.close(fd)
            self._files[group] = (restored, written, final)  # closed with the others
            _write_all(restored, data)

    def _replace_old(self) -> None:
        """Puts the files written aside in place of the recorded session's."""
        for _, written, final in self._files.values():
            real_os.replace(written, final)
        for old in self._old:
            with contextlib.suppress(FileNotFoundError):
                real_os.unlink(old)

    def abort(self) -> None:
        """Closes without a session end: the trial reads as unknown.

        When it was rerunning a recorded trial, the recorded session stays.
        """
        self._close()
        if self._replacing:
            for _, written, _ in self._files.values():
                with contextlib.suppress(FileNotFoundError):
                    real_os.unlink(written)

    def discard(self) -> None:
        """Closes and deletes what this writer wrote: the trial did not run
        (it was skipped), so neither a new session nor the loss of a recorded
        one would be true."""
        self._close()
        for _, written, _ in self._files.values():
            with contextlib.suppress(FileNotFoundError):
                real_os.unlink(written)
        with contextlib.suppress(OSError):  # not empty: Keras' or the test's own files
            real_os.rmdir(self.path)

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            for fd, _, _ in self._files.values():
                try:  # noqa: SIM105 (contextlib.suppress costs more, for every trial)
                    real_os.close(fd)
                except OSError:
                    pass


def read_session(path: Path) -> tuple[dict[str, Value], int, dict[str, float]] | None:
    """A recorded trial's hparams, end status and final metrics, or None.

    Reads the run's own event files (not those of metric groups), oldest first.
    """
    if not path.is_dir():
        return None
    return parse_run([f.read_bytes() for f in _session_files(path)])


def _session_files(path: Path) -> list[Path]:
    """The run's own finished event files, by name (oldest first); no pending one."""
    return sorted(
        p
        for p in path.iterdir()
        if "tfevents" in p.name and not p.name.startswith(_PENDING) and p.is_file()
    )


def parse_run(files: Iterable[bytes]) -> tuple[dict[str, Value], int, dict[str, float]] | None:
    """The session in a run's event files (in name order), or None without any."""
    contents = list(files)
    if not contents:
        return None
    return events.parse_session(record for data in contents for record in events.unframe(data))


def read_curves(path: Path) -> Curves:
    """A trial's scalar curves: by metric group ("" for its own run, else
    the subdirectory, as Keras' `train` and `validation`), tag, then step."""
    out: Curves = {"": _scalars_in(path)}
    for directory in sorted(p for p in path.iterdir() if p.is_dir()):
        out[directory.name] = _scalars_in(directory)
    return {group: curves for group, curves in out.items() if curves}


def _scalars_in(directory: Path) -> dict[str, dict[int, float]]:
    """The scalar curves of one directory's own event files, by tag then step."""
    files = sorted(p for p in directory.iterdir() if "tfevents" in p.name and p.is_file())
    return events.parse_scalars(r for f in files for r in events.unframe(f.read_bytes()))


def write_mean_run(
    path: Path, repeats: Sequence[Mapping[str, Mapping[str, Mapping[int, float]]]]
) -> None:
    """Writes the mean of the repeats' curves, step by step, as a run of its
    own (no session: the HParams tab lists trials; the Scalars tab draws one
    line per combination, as TensorBoard's maintainers suggest for repeats)."""
    by_group: dict[str, list[bytes]] = {}
    now = time.time()
    for (group, tag, step), values in sorted(_points(repeats).items()):
        summary = events.scalar_summary(tag, math.fsum(values) / len(values))
        by_group.setdefault(group, []).append(events.event_bytes(now, step, summary))
    for group, records in by_group.items():
        directory = path / group if group else path
        real_os.makedirs(str(directory), exist_ok=True)
        for old in directory.glob("events.out.tfevents.*"):
            old.unlink()  # the mean of this run's repeats replaces an earlier run's
        data = events.frame(events.event_bytes(now), *records)
        write_atomically(directory / _event_file_name("mean.", now), data)


def _points(
    repeats: Sequence[Mapping[str, Mapping[str, Mapping[int, float]]]],
) -> dict[tuple[str, str, int], list[float]]:
    """Each point's values in the repeats, by group, tag and step."""
    points: dict[tuple[str, str, int], list[float]] = {}
    for curves in repeats:
        for group, tags in curves.items():
            for tag, curve in tags.items():
                for step, value in curve.items():
                    points.setdefault((group, tag, step), []).append(value)
    return points


def mark_crashed(path: Path, start: tuple[str, Mapping[str, Value]] | None = None) -> None:
    """Ends the session of a trial whose process died, as FAILURE.

    Only a session that never ended is the dead process's: a rerun's hidden
    file is dropped, and a session an earlier run ended stays as it was. A
    trial that died before it began a session (in a fixture's setup) gets
    one from `start` (its group name and hparams), begun and ended at once.
    """
    _drop_pending(path)
    recorded = read_session(path)
    now = time.time()
    end = events.session_end_summary(events.STATUS_FAILURE, now)
    if recorded is None and start is not None:
        path.mkdir(parents=True, exist_ok=True)
        data = events.start_records(now, *start) + events.frame(events.event_bytes(now, 0, end))
        write_atomically(path / _event_file_name("crashed."), data)
    elif recorded is not None and recorded[1] == events.STATUS_UNKNOWN:
        write_atomically(path / _event_file_name("crashed."), _one_event_file(end))


def _drop_pending(path: Path) -> None:
    """Removes a run's pending event files: a killed rerun's, never part of a session."""
    for p in _event_files(str(path)):
        if os.path.basename(p).startswith(_PENDING):
            with contextlib.suppress(FileNotFoundError):
                real_os.unlink(p)


class ExperimentConfig:
    """The union of every sweep's hparams and metrics recorded in a logdir.

    TensorBoard shows one experiment config per logdir, so each run merges
    what it records into the config already there.
    """

    def __init__(self, recorded: bytes | None) -> None:
        """Starts from the config file's content, if the logdir has one."""
        self.hparams: dict[str, dict[str, Any]] = {}
        self.metrics: dict[tuple[str, str], Metric] = {}
        if recorded is not None:
            found = events.parse_experiment(events.unframe(recorded))
            if found is not None:
                hparams, metrics = found
                self.hparams = {h["name"]: h for h in hparams}
                self.metrics = {(m.group, m.name): m for m in metrics}

    def add_sweep(self, definition: SweepDefinition) -> bool:
        """Merges one sweep's definition; returns whether anything changed."""
        before = (repr(self.hparams), list(self.metrics))
        tag = {
            "name": SWEEP_HPARAM,
            "display_name": "sweep",
            "description": "The pytest test that ran the trial",
            "domain": {"kind": "discrete", "dtype": "str", "values": [definition.label]},
        }
        for hp in [*(h.to_dict() for h in definition.hparams), tag]:
            self._merge_hparam(hp)
        for metric in definition.metrics:
            self.metrics[(metric.group, metric.name)] = metric
        if definition.prunes:
            self.add_pruned_column()
        return before != (repr(self.hparams), list(self.metrics))

    def add_pruned_column(self) -> bool:
        """Adds the dashboard's `pruned` column (`pytest.pruned`)."""
        if ("", PRUNED_METRIC) in self.metrics:
            return False
        self.metrics[("", PRUNED_METRIC)] = Metric(
            PRUNED_METRIC,
            display_name="pruned",
            description="1 for a trial its pruner stopped, 0 for one that ran to the end",
        )
        return True

    @property
    def sweeps(self) -> int:
        """How many sweeps the logdir holds."""
        domain = (self.hparams.get(SWEEP_HPARAM) or {}).get("domain") or {}
        return len(domain.get("values") or ())

    def add_metrics(self, names: Iterable[str]) -> bool:
        """Adds metrics a trial returned without declaring them."""
        new = [n for n in names if not any(m.name == n for m in self.metrics.values())]
        for name in new:
            self.metrics[("", name)] = Metric(name)
        return bool(new)

    def _merge_hparam(self, hp: Mapping[str, Any]) -> None:
        old = self.hparams.get(hp["name"])
        if old is None:
            self.hparams[hp["name"]] = dict(hp)
            return
        merged = merge_domains(_domain(old), _domain(hp))
        self.hparams[hp["name"]] = {
            **old,
            "display_name": hp.get("display_name") or old.get("display_name", ""),
            "description": hp.get("description") or old.get("description", ""),
            "domain": merged.to_dict() if merged else None,
        }

    def encode(self) -> bytes:
        """The whole config file, to be written over the old one in one piece."""
        summary = events.experiment_summary(
            list(self.hparams.values()), list(self.metrics.values()), time.time()
        )
        return _one_event_file(summary)


def _domain(hp: Mapping[str, Any]) -> Domain | None:
    return Domain.from_dict(hp["domain"]) if hp.get("domain") else None
