"""Making the run directories of the trials to come, in a child process.

On some file systems making a directory and a file is the slowest step of
recording a trial: on the project's machine, ext4 spent 0.06 to 0.5 ms of
kernel time on each `mkdir`, and as much again to create the first file in
the new directory, where opening an existing file and renaming it took
0.02 ms (benchmarks/RESULTS.md). So a child process makes the next trials'
run directories, each with an empty `logdir.SLOT` file, on another core
while the trials run in this process; a trial's session starts in its slot.
(A thread would not do: it needs the GIL back after every directory, and
each handover stalls the tests.)

Only the sweeps whose folder is new in this run are prefetched, so every
directory in it is made by this run and a trial's first run finds its own
empty. What was made for trials that did not run (`-x`, Ctrl-C, a plugin
that deselects after this one) is removed when the run ends. A killed run
leaves those directories holding an empty slot: TensorBoard loads no file
without "tfevents" in its name, so they show as nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterable

from pytest_hparams.logdir import SLOT

# Directories per child: they travel as its arguments, far below the
# system's limit on a command line.
BATCH = 1024
# Fewer trials than this are not worth starting a process for.
MIN_TRIALS = 64

# os.posix_spawn, not subprocess: importing subprocess took 7 ms of every
# run. Taken when the module loads, before any test runs, so a test that
# patches it does not change how the plugin makes directories.
_SPAWN = getattr(os, "posix_spawn", None)
# The child reads nothing and writes nothing: a directory it cannot make,
# its trial makes and reports.
_QUIET = (
    [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2)]
    if _SPAWN is not None
    else []
)
# The child: isolated (-I) and without site (-S), so no .pth file, no
# sitecustomize and no coverage hook runs in it. A directory that is there
# already was made by the trial itself, which has overtaken the child.
_CHILD = """
import os, sys
slot = sys.argv[1]
for run in sys.argv[2:]:
    try:
        os.makedirs(run)
        os.close(os.open(os.path.join(run, slot), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError:
        pass
"""


class Prefetch:
    """The run directories of one process's trials, made ahead of them.

    Args:
      paths: The trials' run directories, in the order the trials run.
      root: The logdir: folders emptied when the run ends are removed up to it.
    """

    def __init__(self, paths: list[str], root: str) -> None:
        self._paths = paths
        self._root = root
        self._next = 0  # the first path not yet handed to a child
        self._pending: set[str] = set()  # handed to a child, not yet claimed by a trial
        self._children: list[int] = []  # their pids
        self._missed: list[str] = []
        self._spawn()

    @classmethod
    def start(cls, paths: list[str], root: str) -> Prefetch | None:
        """A prefetch of `paths`, or None where it would not help: too few, or
        no os.posix_spawn (Windows, which cannot rename a file that is open)."""
        if _SPAWN is None or not sys.executable or len(paths) < MIN_TRIALS:
            return None
        return cls(paths, root)

    def claim(self, path: str) -> bool:
        """Whether `path` was made for a trial that has not run yet: True at
        most once per path, so a rerun finds its first run's files."""
        try:
            self._pending.remove(path)
        except KeyError:
            return False
        if len(self._pending) < BATCH // 2 and self._next < len(self._paths):
            self._spawn()  # the next batch, well before the trials reach it
        return True

    def missed(self, path: str) -> None:
        """Notes a claimed directory whose trial found no slot in it: the child
        may still make one there, to be removed at the end."""
        self._missed.append(path)

    def _spawn(self) -> None:
        batch = self._paths[self._next : self._next + BATCH]
        self._next += len(batch)
        self._children = [pid for pid in self._children if not _reaped(pid, block=False)]
        assert _SPAWN is not None
        try:
            pid = _SPAWN(
                sys.executable,
                [sys.executable, "-I", "-S", "-c", _CHILD, SLOT, *batch],
                os.environ,
                file_actions=_QUIET,
            )
        except OSError:
            self._next = len(self._paths)  # the trials make their own
            return
        self._children.append(pid)
        self._pending.update(batch)

    def close(self) -> None:
        """Waits for the children, then removes what was made for trials that did not run."""
        deadline = time.monotonic() + 30
        for pid in self._children:
            while not _reaped(pid, block=False):
                if time.monotonic() > deadline:  # a hung file system: leave it
                    os.kill(pid, signal.SIGKILL)
                    _reaped(pid, block=True)
                    break
                time.sleep(0.005)
        self._children.clear()
        for path in self._missed:
            _remove_slot(path)
        _remove_unused(self._pending, self._root)
        self._pending.clear()


def _reaped(pid: int, block: bool) -> bool:
    """Whether the child has ended (and is reaped now)."""
    try:
        done, _ = os.waitpid(pid, 0 if block else os.WNOHANG)
    except ChildProcessError:  # reaped by someone else (a test's os.wait())
        return True
    return done == pid


def _remove_slot(run: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(os.path.join(run, SLOT))


def _remove_unused(paths: Iterable[str], root: str) -> None:
    """Removes each directory with its slot if nothing else is in it, then
    the parents it leaves empty, up to `root`."""
    parents = set()
    for path in paths:
        _remove_slot(path)
        try:
            os.rmdir(path)
        except OSError:  # never made, or holding a trial's files
            continue
        parents.add(os.path.dirname(path))
    # Deepest first, so a sweep's folder goes after its test file's.
    for folder in sorted(parents, key=len, reverse=True):
        while folder != root and folder.startswith(os.path.join(root, "")):
            try:
                os.rmdir(folder)
            except OSError:
                break
            folder = os.path.dirname(folder)
