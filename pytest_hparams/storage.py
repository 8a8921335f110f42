"""Where a logdir's files live: a local directory, or an fsspec URL such as
`s3://bucket/prefix`.

Trials always write to a local directory: the logdir itself, or for a URL a
staging directory of this process, uploaded run by run when each trial ends.
Object stores have no rename, but an object appears whole or not at all, so
every remote write is one put, and a rerun uploads its new event files before
it deletes the recorded session's: a crash in between never loses a session.

fsspec is imported (`lazy.fsspec`) only for a logdir at a URL.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fasteners import InterProcessLock

from pytest_hparams import lazy, logdir
from pytest_hparams.errors import LogdirError
from pytest_hparams.files import write_atomically
from pytest_hparams.lazy import REMOTE_EXTRA

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pytest_hparams.sweep import Value

    Session = tuple[dict[str, Value], int, dict[str, float]]
    Start = tuple[str, Mapping[str, Value]]  # a session's group name and hparams

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# Held while the experiment config is merged; TensorBoard ignores it.
LOCK_FILE = ".pytest-hparams.lock"


def is_url(text: str) -> bool:
    return _URL.match(text) is not None


class LocalStore:
    """A logdir on this machine's file system.

    Attributes:
      root: Where trials write their run directories.
      shown: The logdir as the user gave it, for the terminal report.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.shown = str(root)

    def read(self, name: str) -> bytes | None:
        """A file's content, by its `/`-separated path in the logdir, or None."""
        try:
            return self.root.joinpath(name).read_bytes()
        except FileNotFoundError:
            return None

    def write(self, name: str, data: bytes) -> None:
        """Replaces a file whole: a crash leaves the old content or the new."""
        write_atomically(self.root.joinpath(name), data)

    def session(self, run: str) -> Session | None:
        """The session recorded in a run directory, or None."""
        return logdir.read_session(self.root.joinpath(*run.split("/")))

    def lock(self) -> contextlib.AbstractContextManager[object]:
        """Holds the logdir against other pytest processes on this machine
        while the experiment config is read, merged and written.

        Raises:
          LogdirError: If the lock is not had within a minute.
        """
        return _Locked(InterProcessLock(str(self.root / LOCK_FILE)), self.shown)

    def publish(self, run_dir: str, finished: bool) -> None:
        """Makes a trial's run directory (under `root`) visible where
        TensorBoard reads: here it already is.

        Raises:
          LogdirError: If the run could not be stored; it stays on this machine.
        """

    def mark_crashed(
        self, run: str, staging: str | None = None, start: Start | None = None
    ) -> None:
        """Ends the session of a trial whose process died.

        Args:
          run: The run directory, relative to the logdir.
          staging: The dead process's `staging`, from its setup report.
          start: The trial's group name and hparams, to record a session for
            a trial that died before it began one.
        """
        logdir.mark_crashed(self.root.joinpath(*run.split("/")), start)

    @property
    def staging(self) -> str | None:
        """Where this process stages trials before they are stored (None: nowhere)."""
        return None

    def close(self) -> None:
        """Releases what the store holds for this process."""


class RemoteStore(LocalStore):
    """A logdir at an fsspec URL, staged in a local directory of this process."""

    def __init__(self, url: str) -> None:
        self.fs, path = _open(url)
        self.path = path.rstrip("/")
        super().__init__(Path(tempfile.mkdtemp(prefix="hparams-staging-")))
        self.shown = url.rstrip("/")

    def _remote(self, name: str) -> str:
        return f"{self.path}/{name}"

    def read(self, name: str) -> bytes | None:
        try:
            data: bytes = self.fs.cat_file(self._remote(name))
        except FileNotFoundError:
            return None
        except Exception as e:
            raise LogdirError(f"cannot read {self.shown}/{name}: {e}") from e
        return data

    def write(self, name: str, data: bytes) -> None:
        try:
            self.fs.pipe_file(self._remote(name), data)
        except Exception as e:
            raise LogdirError(f"cannot write {self.shown}/{name}: {e}") from e

    def session(self, run: str) -> Session | None:
        files = sorted(p for p in self._files(run, recursive=False) if _is_event_file(p))
        return logdir.parse_run(self.fs.cat_file(p) for p in files)

    def publish(self, run_dir: str, finished: bool) -> None:
        """Uploads a trial's staged run directory, replacing what was recorded.

        A trial cut short (Ctrl-C) that had a session recorded before keeps
        that one, as a local rerun does; otherwise its unfinished session is
        uploaded and reads as unknown.
        """
        self._upload(self.root, Path(run_dir).relative_to(self.root).as_posix(), finished)

    def mark_crashed(
        self, run: str, staging: str | None = None, start: Start | None = None
    ) -> None:
        """Ends, as FAILURE, the session a dead worker staged in `staging`, and
        uploads it unless a session was recorded before (that one stays). A
        trial that died before it staged a session gets none here."""
        if staging is None:
            return
        staged = Path(staging).joinpath(*run.split("/"))
        if staged.is_dir():  # not if the worker ran on another host
            logdir.mark_crashed(staged)
            with contextlib.suppress(LogdirError):  # said so by the trial's "crashed"
                self._upload(Path(staging), run, finished=False)
            _remove_empty(Path(staging))  # the dead process cannot

    @property
    def staging(self) -> str | None:
        return str(self.root)

    def lock(self) -> contextlib.AbstractContextManager[object]:
        # Object stores have no lock through fsspec: the README says what
        # shards that share one prefix need.
        return contextlib.nullcontext()

    def close(self) -> None:
        _remove_empty(self.root)

    def _upload(self, root: Path, run: str, finished: bool) -> None:
        staged = root.joinpath(*run.split("/"))
        if not staged.is_dir():
            return
        try:
            old = self._files(run, recursive=True)
            if finished or not old:
                self._replace(staged, self._remote(run), old)
        except Exception as e:
            # The trial's result stands; its files stay on this machine.
            raise LogdirError(
                f"could not upload {run} to {self.shown} ({type(e).__name__}: {e}); "
                f"its files are kept in {staged}"
            ) from e
        # Its emptied parent folders go when the store closes.
        shutil.rmtree(staged, ignore_errors=True)

    def _replace(self, staged: Path, target: str, old: list[str]) -> None:
        """Puts every file of `staged` under `target`, then deletes the `old`
        remote files that none of them replaced: new files first, so a crash
        in between never loses a session."""
        uploaded = set()
        for file in sorted(p for p in staged.rglob("*") if p.is_file()):
            remote = f"{target}/{file.relative_to(staged).as_posix()}"
            self.fs.put_file(str(file), remote)
            uploaded.add(remote)
        stale = [p for p in old if p not in uploaded]
        if stale:
            self.fs.rm(stale)

    def _files(self, run: str, recursive: bool) -> list[str]:
        target = self._remote(run)
        self.fs.invalidate_cache(target)
        try:
            if recursive:
                return sorted(self.fs.find(target))
            entries: list[dict[str, Any]] = self.fs.ls(target, detail=True)
        except FileNotFoundError:
            return []
        return sorted(e["name"] for e in entries if e.get("type") == "file")


class _Locked:
    """An inter-process lock whose timeout is a LogdirError naming the logdir."""

    def __init__(self, lock: Any, shown: str) -> None:
        self._lock = lock
        self._shown = shown

    def __enter__(self) -> object:
        if not self._lock.acquire(timeout=60):
            raise LogdirError(
                f"another process has held {self._shown}/{LOCK_FILE} for a minute; "
                "if none is running, delete that file"
            )
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def _remove_empty(root: Path) -> None:
    """Removes every empty folder under `root`, and `root` if it ends empty:
    staged runs whose upload failed stay, with the folders that lead to them."""
    for folder, _, _ in os.walk(root, topdown=False):
        with contextlib.suppress(OSError):
            os.rmdir(folder)


def _is_event_file(path: str) -> bool:
    return "tfevents" in path.rsplit("/", 1)[-1]


def _open(url: str) -> tuple[Any, str]:
    """fsspec's file system for `url`, checked to be reachable.

    Raises:
      LogdirError: If fsspec or the URL's implementation is missing, the
        protocol is unknown, or the bucket cannot be reached.
    """
    try:
        fsspec = lazy.fsspec()
    except ImportError:
        raise LogdirError(f"a logdir URL needs fsspec; install it with: {REMOTE_EXTRA}") from None
    protocol = url.split("://", 1)[0]
    fs, path = _file_system(fsspec, url, protocol)
    _check_bucket(fs, protocol, path)
    return fs, path


def _file_system(fsspec: Any, url: str, protocol: str) -> tuple[Any, str]:
    """fsspec's file system for `url`, and the path within it.

    Raises:
      LogdirError: If the URL's implementation is missing, the protocol is
        unknown, or a file system that connects as it is made cannot connect.
    """
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except ImportError as e:
        message = f"{protocol}:// URLs need a package that is not installed: {e}"
        if protocol in ("s3", "s3a"):
            message += f"; install it with: {REMOTE_EXTRA}"
        raise LogdirError(message) from None
    except ValueError as e:
        raise LogdirError(f"{e}; use a local directory or an fsspec URL such as s3://") from None
    except Exception as e:  # a file system that connects as it is made (ftp://, sftp://)
        raise LogdirError(_unreachable(url, e)) from None
    return fs, str(path)


def _check_bucket(fs: Any, protocol: str, path: str) -> None:
    """Checks that the bucket (or server) of `path` exists and can be reached.

    An object store's first path component is its bucket; http(s) keeps the
    whole URL as its path. Checked here so a typo fails before any trial
    runs, not as each trial's upload.

    Raises:
      LogdirError: If it cannot be reached, or does not exist.
    """
    probe = path if is_url(path) else path.split("/", 1)[0]
    if not probe or path.startswith("/"):
        return
    shown = probe if is_url(probe) else f"{protocol}://{probe}"
    # http(s)'s exists() says False for a server it cannot reach, unless strict.
    strict = {"strict": True} if protocol in ("http", "https") else {}
    try:
        found = fs.exists(probe, **strict)
    except Exception as e:
        raise LogdirError(_unreachable(shown, e)) from None
    if not found:
        raise LogdirError(f"{shown} does not exist or is not visible; create it")


def _unreachable(url: str, error: Exception) -> str:
    return (
        f"cannot reach {url} ({type(error).__name__}: {error}); "
        "check the URL, the credentials and the endpoint"
    )


def open_store(raw: str, base: Path, project: Path | None = None) -> LocalStore:
    """The store for a logdir option: a URL, or a directory relative to `base`.

    A local logdir may lie inside the project (`project`, pytest's rootdir)
    but may not be it or hold it: run directories are named after test files,
    and would be made beside them.

    Raises:
      LogdirError: With the reason and the fix.
    """
    if is_url(raw) and not raw.startswith("file://"):
        return RemoteStore(raw)
    raw = raw.removeprefix("file://")
    path = Path(base, os.path.expanduser(raw)).resolve()
    if project is not None:
        _check_outside(raw, path, project.resolve())
    _make_writable(path)
    return LocalStore(path)


def _check_outside(raw: str, path: Path, home: Path) -> None:
    """Checks that the logdir `path` (given as `raw`) is neither the project
    directory `home` nor one above it.

    Raises:
      LogdirError: If it is.
    """
    if path == home or path in home.parents:
        where = "the project directory" if path == home else "a directory above the project"
        raise LogdirError(
            f"{raw!r} is {where} ({path}): trials would be written among the test files; "
            "choose a subdirectory such as logs/"
        )


def _make_writable(path: Path) -> None:
    """Makes the directory `path` if it is missing, and checks it can be written.

    Raises:
      LogdirError: If it is a file, cannot be made, or is not writable.
    """
    if path.exists() and not path.is_dir():
        raise LogdirError(f"{path} is a file, not a directory; choose a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LogdirError(
            f"cannot create {path} ({e.strerror}); choose a writable directory"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise LogdirError(f"{path} is not writable; choose a writable directory")
