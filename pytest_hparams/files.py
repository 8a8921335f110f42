"""Writing files that nothing loses: replacing a file so that a crash leaves
either the old or the new content, and the real file system's calls for
the writes made while a test runs.

storage.py imports this module when a logdir is opened, before any test
runs: `real_os` must be bound before a test can patch `os`.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path


class _RealOs:
    """The file system's calls, bound when this module loads: a trial's files
    are written with them whatever a test patches while it runs (pyfakefs's
    `fs` fixture swaps `os`, and the functions imported from it, in every
    loaded module: a trial's files would go to its fake file system)."""

    open = staticmethod(os.open)
    write = staticmethod(os.write)
    close = staticmethod(os.close)
    unlink = staticmethod(os.unlink)
    replace = staticmethod(os.replace)
    mkdir = staticmethod(os.mkdir)
    rmdir = staticmethod(os.rmdir)
    makedirs = staticmethod(os.makedirs)
    walk = staticmethod(os.walk)
    isdir = staticmethod(os.path.isdir)
    fstat = staticmethod(os.fstat)
    pread = staticmethod(os.pread)


real_os = _RealOs()


def write_atomically(path: Path, data: bytes) -> None:
    """Writes `data` to a temporary file beside `path`, then renames it over.

    A symlink is written through (its target is replaced, the link stays, as
    a plain write would leave it), and the replaced file's mode is kept.
    """
    path = Path(os.path.realpath(path))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
