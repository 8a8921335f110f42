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
import os
import re
import socket
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from pytest_hparams import events
from pytest_hparams.atomic import write_atomically
from pytest_hparams.metrics import Metric
from pytest_hparams.space import SWEEP_HPARAM, Domain, Value, merge_domains, sweep_label

CONFIG_FILE = "events.out.tfevents.0.pytest-hparams"
_PENDING = ".pending."
_MAX_NAME = 80
_UNSAFE = re.compile(r"[^A-Za-z0-9._,=+@-]")
_counter = itertools.count()


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


def run_path(test: str, trial_id: str) -> str:
    """A trial's run directory relative to the logdir, `/`-separated: the
    test's node id as nested folders, then the trial."""
    parts = [p for p in re.split(r"/|::", test) if p]
    return "/".join([*(safe_name(p) for p in parts), safe_name(trial_id)])


def run_dir(logdir: Path, test: str, trial_id: str) -> Path:
    """The run directory of one trial under a local logdir."""
    path = logdir.joinpath(*run_path(test, trial_id).split("/"))
    # safe_name already rules out separators and dot-names; this is the
    # guarantee, kept next to the code that relies on it.
    if not str(path).startswith(os.path.join(str(logdir), "")):
        raise ValueError(f"run directory {path} escapes {logdir}")
    return path


def _pending_name(final: str) -> str:
    # TensorBoard loads every file whose name holds "tfevents", dot-files
    # too: a rerun's unfinished file must not, or a killed attempt's curve
    # would show beside the recorded session.
    return _PENDING + final.replace("tfevents", "pending")


def _event_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return [
        Path(root, name)
        for root, _, names in os.walk(directory)
        for name in names
        if "tfevents" in name or name.startswith(_PENDING)
    ]


def _by_group(values: Mapping[str, float], groups: Mapping[str, str]) -> dict[str, Any]:
    summaries: dict[str, Any] = {}
    for name, value in values.items():
        group = groups.get(name, "")
        summaries[group] = events.add_scalar(summaries.get(group), name, value)
    return summaries


_host: list[str] = []


def _hostname() -> str:
    if not _host:
        _host.append(socket.gethostname())
    return _host[0]


def _event_file_name(kind: str = "") -> str:
    # TensorBoard takes any name holding "tfevents"; the counter keeps names
    # distinct within a process, pid and host across processes.
    return (
        f"events.out.tfevents.{int(time.time())}.{_hostname()}.{os.getpid()}."
        f"{next(_counter)}.{kind}pytest-hparams"
    )


def _one_event_file(summary: Any) -> bytes:
    """A whole event file: the file-version header and one event at step 0."""
    now = time.time()
    return events.frame(events.event_bytes(now)) + events.frame(events.event_bytes(now, 0, summary))


class TrialWriter:
    """Owns the event files of one trial's run.

    Args:
      path: The run directory.
      group_name: The session group: the dashboard's Trial ID (`TrialKey.label`).
      hparams: The trial's values, including the sweep's name.
      fresh: Whether the caller just created `path`, so nothing old is in it.
    """

    def __init__(
        self,
        path: Path,
        group_name: str,
        hparams: Mapping[str, Value],
        fresh: bool = False,
    ) -> None:
        self.path = path
        old = [] if fresh else _event_files(path)
        for stale in [p for p in old if p.name.startswith(_PENDING)]:
            stale.unlink(missing_ok=True)
        self._old = {p for p in old if not p.name.startswith(_PENDING)}
        # A first run writes in place, so curves show live in TensorBoard; a
        # rerun writes aside and replaces the recorded session only at the end.
        self._replacing = bool(self._old)
        self._files: dict[str, tuple[IO[bytes], Path]] = {}
        self.last_step = 0
        now = time.time()
        self._write("", 0, events.session_start_summary(group_name, hparams, now))

    def _file(self, group: str) -> IO[bytes]:
        if group not in self._files:
            directory = self.path / group if group else self.path
            if group:
                directory.mkdir(parents=True, exist_ok=True)
            # The old session's files are deleted by name at the end: the new
            # name must differ even when pid and second repeat (containers).
            while True:
                final = directory / _event_file_name()
                if final not in self._old:
                    break
            target = directory / _pending_name(final.name) if self._replacing else final
            handle = open(target, "wb")  # noqa: SIM115 - closed in finish()/abort()
            handle.write(events.frame(events.event_bytes(time.time())))
            self._files[group] = (handle, final)
        return self._files[group][0]

    def _write(self, group: str, step: int, summary: Any) -> None:
        handle = self._file(group)
        handle.write(events.frame(events.event_bytes(time.time(), step, summary)))

    def scalars(self, step: int, values: Mapping[str, float], groups: Mapping[str, str]) -> None:
        """Writes one point of each metric's curve, into its metric group."""
        for group, summary in _by_group(values, groups).items():
            self._write(group, step, summary)
        self.last_step = max(self.last_step, step)
        for handle, _ in self._files.values():
            handle.flush()

    def finish(self, status: int, metrics: Mapping[str, float], groups: Mapping[str, str]) -> None:
        """Writes the final metrics and the session end, closes and publishes."""
        # TensorBoard's data server drops points at or after a new point's
        # step, so the final values go at the last logged step, not at 0.
        summaries = _by_group(metrics, groups)
        end = events.session_end_summary(status, time.time())
        main = summaries.pop("", None)
        if main is not None:
            end.value.extend(main.value)  # one event: the final values and the end
        for group, summary in summaries.items():
            self._write(group, self.last_step, summary)
        self._write("", self.last_step, end)
        self._close()
        if self._replacing:
            for handle, final in self._files.values():
                os.replace(Path(handle.name), final)
            for old in self._old:
                old.unlink(missing_ok=True)

    def abort(self) -> None:
        """Closes without a session end: the trial reads as unknown.

        When it was rerunning a recorded trial, the recorded session stays.
        """
        self._close()
        if self._replacing:
            for handle, _ in self._files.values():
                Path(handle.name).unlink(missing_ok=True)

    def discard(self) -> None:
        """Closes and deletes what this writer wrote: the trial did not run
        (it was skipped), so neither a new session nor the loss of a recorded
        one would be true."""
        self._close()
        for handle, _ in self._files.values():
            Path(handle.name).unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # not empty: Keras' or the test's own files
            self.path.rmdir()

    def _close(self) -> None:
        for handle, _ in self._files.values():
            handle.close()


def read_session(path: Path) -> tuple[dict[str, Value], int, dict[str, float]] | None:
    """A recorded trial's hparams, end status and final metrics, or None.

    Reads the run's own event files (not those of metric groups), oldest first.
    """
    if not path.is_dir():
        return None
    files = sorted(
        p
        for p in path.iterdir()
        if "tfevents" in p.name and not p.name.startswith(_PENDING) and p.is_file()
    )
    return parse_run([f.read_bytes() for f in files])


def parse_run(files: Iterable[bytes]) -> tuple[dict[str, Value], int, dict[str, float]] | None:
    """The session in a run's event files (in name order), or None without any."""
    contents = list(files)
    if not contents:
        return None
    return events.parse_session(record for data in contents for record in events.unframe(data))


def mark_crashed(path: Path) -> None:
    """Ends the session of a trial whose process died, as FAILURE.

    A rerun's hidden file is dropped instead: the session recorded before stays.
    """
    pending = [p for p in _event_files(path) if p.name.startswith(_PENDING)]
    if pending:
        for p in pending:
            p.unlink(missing_ok=True)
        return
    if not path.is_dir():
        return
    end = events.session_end_summary(events.STATUS_FAILURE, time.time())
    write_atomically(path / _event_file_name("crashed."), _one_event_file(end))


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

    def add_sweep(self, sweep: str, definition: Mapping[str, Any]) -> bool:
        """Merges one sweep's definition; returns whether anything changed."""
        before = (repr(self.hparams), list(self.metrics))
        tag = {
            "name": SWEEP_HPARAM,
            "display_name": "sweep",
            "description": "The pytest test that ran the trial",
            "domain": {"kind": "discrete", "dtype": "str", "values": [sweep_label(sweep)]},
        }
        for hp in [*definition["hparams"], tag]:
            self._merge_hparam(hp)
        for data in definition["metrics"]:
            metric = Metric.from_dict(data)
            self.metrics[(metric.group, metric.name)] = metric
        return before != (repr(self.hparams), list(self.metrics))

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
        a = Domain.from_dict(old["domain"]) if old.get("domain") else None
        b = Domain.from_dict(hp["domain"]) if hp.get("domain") else None
        merged = merge_domains(a, b)
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
