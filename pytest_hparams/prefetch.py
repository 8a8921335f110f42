"""Making the run directories of the trials to come, in another process.

On some file systems making a directory and a file is the slowest step of
recording a trial: on the project's machine, ext4 spent 0.06 to 0.5 ms of
kernel time on each `mkdir`, and as much again to create the first file in
the new directory, where opening an existing file and renaming it took
0.02 ms (benchmarks/RESULTS.md). So another process makes the next trials'
run directories, each with an empty slot file (`logdir.SLOT`), on another
core while the trials run in this one; a trial's session starts in its slot.
(A thread would not do: it needs the GIL back after every directory, and
each handover stalls the tests.)

The maker is started through `/bin/sh ... &`, so it is never a child of
pytest: a test's `os.wait()` gets the test's own children. Its end is known
by a pipe it holds open.

Only the sweeps whose folder is new in this run are prefetched, and a slot
carries this process's pid: a trial that finds its slot knows its directory
was made for it. A directory found without one is treated as any other
(another process may record there too). What was made for trials that did
not run (`-x`, Ctrl-C, a skip) is removed when the run ends. A killed run
leaves directories holding an empty slot: TensorBoard loads no file without
"tfevents" in its name, so they show as nothing, and a later run of the
trial removes the slot.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import time
from collections.abc import Iterable

from pytest_hparams.logdir import SLOT

# Directories per maker: they travel as its arguments, far below the
# system's limit on a command line.
BATCH = 1024
# Fewer trials than this are not worth starting a process for.
MIN_TRIALS = 64
# How long the end of a run waits for a maker (a hung file system).
WAIT_SECONDS = 30

# os.posix_spawn, not subprocess: importing subprocess took 7 ms of every
# run. Both taken when the module loads, before any test runs, so a test that
# patches them (or sys.executable) does not change how directories are made.
_SPAWN = getattr(os, "posix_spawn", None) if hasattr(select, "poll") else None
_PYTHON = sys.executable
_SHELL = "/bin/sh"
# The maker: isolated (-I) and without site (-S), so no .pth file, no
# sitecustomize and no coverage hook runs in it. A directory that is there
# already was made by someone else (the trial itself, which overtook the
# maker, or another process): it gets no slot.
_MAKER = """
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
        self._slot = f"{SLOT}.{os.getpid()}"
        self._next = 0  # the first path not yet handed to a maker
        self._pending: set[str] = set()  # handed to a maker, not yet claimed by a trial
        self._makers: list[int] = []  # the read ends of their pipes: EOF when done
        self._missed: list[str] = []
        self._spawn()

    @classmethod
    def start(cls, paths: list[str], root: str) -> Prefetch | None:
        """A prefetch of `paths`, or None where it would not help: too few, or
        no os.posix_spawn (Windows, which cannot rename a file that is open)."""
        if _SPAWN is None or not _PYTHON or len(paths) < MIN_TRIALS:
            return None
        if not os.path.exists(_SHELL):
            return None
        return cls(paths, root)

    def claim(self, run: str) -> tuple[int, str] | None:
        """The slot made for the trial of `run`, open for writing, and its
        path; None if there is none (yet), and for any later claim."""
        try:
            self._pending.remove(run)
        except KeyError:
            return None
        if len(self._pending) < BATCH // 2 and self._next < len(self._paths):
            self._spawn()  # the next batch, well before the trials reach it
        slot = f"{run}{os.sep}{self._slot}"
        try:
            return os.open(slot, os.O_WRONLY), slot
        except FileNotFoundError:  # the maker has not reached it
            # It may still: its slot (and directory) go at the end, if unused.
            self._missed.append(run)
            return None

    def _spawn(self) -> None:
        batch = self._paths[self._next : self._next + BATCH]
        self._next += len(batch)
        self._makers = [read for read in self._makers if not _ended(read, 0.0)]
        read, write = os.pipe()
        if write == 3:  # dup2 onto itself would leave it close-on-exec
            write, old = os.dup(write), write
            os.close(old)
        command = [_PYTHON, "-I", "-S", "-c", _MAKER, self._slot, *batch]
        assert _SPAWN is not None
        try:
            # `sh -c '"$@" &' sh CMD...`: sh starts the maker in the
            # background and exits at once, so the maker is not our child.
            pid = _SPAWN(
                _SHELL,
                [_SHELL, "-c", '"$@" &', "sh", *command],
                os.environ,
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
                    (os.POSIX_SPAWN_DUP2, write, 3),  # held by the maker until it ends
                ],
            )
        except OSError:
            os.close(read)
            self._next = len(self._paths)  # the trials make their own
            return
        finally:
            os.close(write)
        with contextlib.suppress(ChildProcessError):  # reaped by a SIGCHLD handler
            os.waitpid(pid, 0)  # the shell, which has exited (about a millisecond)
        self._makers.append(read)
        self._pending.update(batch)

    def close(self) -> None:
        """Waits for the makers, then removes what was made for trials that did not run."""
        deadline = time.monotonic() + WAIT_SECONDS
        for read in self._makers:
            if not _ended(read, max(0.0, deadline - time.monotonic())):
                os.close(read)  # hung: what it makes after this stays
        self._makers.clear()
        _remove_unused([*self._missed, *self._pending], self._slot, self._root)
        self._pending.clear()
        self._missed.clear()


def _ended(read: int, timeout: float) -> bool:
    """Whether the maker holding this pipe has ended, waiting up to `timeout`
    seconds; if so, the pipe is closed."""
    poll = select.poll()  # not select.select, which takes no descriptor past 1023
    poll.register(read, select.POLLIN)
    if poll.poll(timeout * 1000) and not os.read(read, 1):  # end of file: the maker ended
        os.close(read)
        return True
    return False


def _remove_unused(runs: Iterable[str], slot: str, root: str) -> None:
    """Removes each run directory's slot, then the directory if nothing else
    is in it, then the parents it leaves empty, up to `root`."""
    parents = set()
    for run in runs:
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(run, slot))
        try:
            os.rmdir(run)
        except OSError:  # never made, or holding a trial's files
            continue
        parents.add(os.path.dirname(run))
    # Deepest first, so a sweep's folder goes after its test file's.
    for folder in sorted(parents, key=len, reverse=True):
        while folder != root and folder.startswith(os.path.join(root, "")):
            try:
                os.rmdir(folder)
            except OSError:
                break
            folder = os.path.dirname(folder)
