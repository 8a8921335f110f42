"""The other pytest runs recording into the same local logdir at the same
time. Each run holds a lock on a small marker file of its own under the
logdir, listing its shard and the sweeps it records; a marker whose lock can
be taken is a run that ended (killed, perhaps) and is removed. Two live runs
that record a sweep in common, unsharded or as the same shard, run each of
its trials twice, and their reports disagree: the user is told to shard.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from fasteners import InterProcessLock

#: The markers' folder in a local logdir (TensorBoard reads no file in it).
RUNS_DIR = ".pytest-hparams-runs"


class Neighbours:
    """This run's marker in a local logdir, and what it finds of the others.

    Args:
      root: The logdir.
      shard: This run's `--hparams-shard`, or None.
    """

    def __init__(self, root: Path, shard: tuple[int, int] | None) -> None:
        self.folder = root / RUNS_DIR
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / f"{os.getpid()}-{os.urandom(4).hex()}.json"
        self.shard = list(shard) if shard else None
        self.sweeps: set[str] = set()
        self.clashes: set[str] = set()  # sweeps another live run records too
        self._lock = InterProcessLock(str(self.path.with_suffix(".lock")))
        self._lock.acquire()
        self._write()

    def add_sweep(self, test: str) -> None:
        """Notes a sweep this run records, and looks for a run recording it too."""
        if test not in self.sweeps:
            self.sweeps.add(test)
            # A marker that cannot be written (a full disk) only loses the warning.
            with contextlib.suppress(OSError):
                self._write()
                self.look()

    def alone(self) -> bool:
        """Whether no other run records into this logdir now."""
        return not self._live_others()

    def look(self) -> None:
        """Finds the live runs whose sweeps and shard clash with this one's."""
        for other in self._live_others():
            shard = other.get("shard")
            if self.shard is None or shard is None or shard == self.shard:
                self.clashes |= self.sweeps & set(other.get("sweeps", ()))

    def _live_others(self) -> list[dict[str, Any]]:
        found = []
        for marker in self.folder.glob("*.json"):
            if marker == self.path:
                continue
            lock = InterProcessLock(str(marker.with_suffix(".lock")))
            if lock.acquire(blocking=False):  # its run has ended
                with contextlib.suppress(OSError):
                    marker.unlink()
                lock.release()
                with contextlib.suppress(OSError):
                    marker.with_suffix(".lock").unlink()
                continue
            with contextlib.suppress(OSError, ValueError):
                found.append(json.loads(marker.read_text(encoding="utf-8")))
        return found

    def _write(self) -> None:
        data = {"pid": os.getpid(), "shard": self.shard, "sweeps": sorted(self.sweeps)}
        self.path.write_text(json.dumps(data), encoding="utf-8")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.look()
        with contextlib.suppress(OSError):
            self.path.unlink()
        self._lock.release()
        with contextlib.suppress(OSError):
            self.path.with_suffix(".lock").unlink()
            self.folder.rmdir()  # the last run out removes the folder
