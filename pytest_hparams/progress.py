"""The live line a running trial shows on a terminal: its id, step, latest
metrics and time so far, updated in place as it reports (`trial.log`, or
Keras at each epoch's end) and cleared when its test ends.

The line is written after pytest's progress dots, to a duplicate of the
terminal's file descriptor taken before any test runs, so that pytest's
capture of the test's output (which redirects descriptor 1) leaves it alone.
The cursor is saved where the line starts and restored to clear it, with
wrapping off so a long line never scrolls the screen; nothing else is
written, so pytest's own output is as it would be without the line.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from collections.abc import Mapping

import pytest

#: The shortest time between two updates: a trial may log thousands of steps.
INTERVAL = 0.1
_SAVE, _RESTORE, _ERASE = "\x1b7", "\x1b8", "\x1b[K"
_NO_WRAP, _WRAP = "\x1b[?7l", "\x1b[?7h"
# A value is data, never layout: a control character in an hparam's value
# or a metric's name would move the cursor the line restores.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class LiveLine:
    """One trial's live line at a time, written to a terminal's descriptor.

    Args:
      fd: A descriptor of the terminal pytest reports to.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._trial = ""  # whose line is shown; "" when none is
        self._pending = ""  # the running trial, shown once it reports
        self._began = 0.0
        self._shown_at = 0.0

    @classmethod
    def open(cls, config: pytest.Config) -> LiveLine | None:
        """The live line, where pytest reports to a terminal that takes its
        escape codes; None under -q, -s, --capture=tee-sys, live logging or
        on xdist workers."""
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if (
            reporter is None
            or not reporter.hasmarkup
            or hasattr(config, "workerinput")
            or config.get_verbosity() < 0
            # Only where pytest captures the test's output: its prints (-s,
            # --capture=tee-sys) would share the line and be erased with it.
            or config.getoption("capture") not in ("fd", "sys")
            or config.getini("log_cli")
        ):
            return None
        try:
            fd = sys.stdout.fileno()
            # A terminal, not a log that takes colours (--color=yes in CI).
            return cls(os.dup(fd)) if os.isatty(fd) else None
        except (OSError, ValueError):  # no descriptor (a replaced sys.stdout)
            return None

    def begin(self, trial: str) -> None:
        """A trial starts: its clock starts, and nothing is shown until it reports."""
        self.clear()
        self._pending = trial
        self._began = time.monotonic()
        self._shown_at = 0.0

    def show(self, step: int, metrics: Mapping[str, float]) -> None:
        """Shows the running trial's latest step and metrics (at most every INTERVAL)."""
        now = time.monotonic()
        if not self._pending or now - self._shown_at < INTERVAL:
            return
        self._shown_at = now
        values = "  ".join(f"{name}={value:.4g}" for name, value in metrics.items())
        text = f" {self._pending}  step {step}  {values}  {now - self._began:.1f}s"
        text = _CONTROL.sub("?", text)
        start = _RESTORE if self._trial else _SAVE
        self._trial = self._pending
        self._write(f"{start}{_NO_WRAP}{text}{_ERASE}{_WRAP}")

    def clear(self) -> None:
        """Erases the line, leaving the cursor where pytest left it: the
        trial's test ended (what its fixtures log after is not shown)."""
        self._pending = ""
        if self._trial:
            self._trial = ""
            self._write(f"{_RESTORE}{_ERASE}")

    def close(self) -> None:
        # Not cleared here: the runner clears the line as each test ends, and
        # pytest has written on since; restoring the cursor would erase that.
        with contextlib.suppress(OSError):
            os.close(self._fd)

    def _write(self, text: str) -> None:
        # A terminal gone (a closed ssh session) costs the line, never the trial.
        with contextlib.suppress(OSError):
            os.write(self._fd, text.encode("utf-8", "replace"))
