"""The live line a running trial shows on a terminal, read from a real
pseudo-terminal: pytest runs in a pty, as in a person's shell, and what it
wrote there is what they saw. Outside a terminal nothing changes."""

from __future__ import annotations

import fcntl
import os
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

SWEEP = """
import time
from pytest_hparams import hparam_grid

@hparam_grid(lr=[0.1, 0.2], metrics=["acc"])
def test_train(lr, trial):
    for epoch in range(4):
        time.sleep(0.15)
        trial.log(epoch, acc=lr * epoch, loss=1 - lr * epoch)
    return {"acc": lr * 3}
"""
SAVE, RESTORE, ERASE = "\x1b7", "\x1b8", "\x1b[K"


def run_in_a_terminal(folder: Path, *args: str) -> str:
    """pytest's output, as written to a 120-column pseudo-terminal."""
    main, replica = os.openpty()
    fcntl.ioctl(replica, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "PYTEST_ADDOPTS": ""}
    for name in ("NO_COLOR", "PY_COLORS", "FORCE_COLOR"):  # pytester sets PY_COLORS=0
        env.pop(name, None)
    command = [sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider"]
    with subprocess.Popen(
        [*command, *args], cwd=folder, stdin=replica, stdout=replica, stderr=replica, env=env
    ) as process:
        os.close(replica)
        chunks = []
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the pty closes when pytest exits
                break
            if not chunk:
                break
            chunks.append(chunk)
        process.wait(timeout=60)
    os.close(main)
    return b"".join(chunks).decode("utf-8", "replace")


def live_lines(output: str) -> list[str]:
    """The texts the live line showed, in order, without escape codes."""
    shown = re.findall(r"(?:\x1b7|\x1b8)\x1b\[\?7l(.*?)\x1b\[K\x1b\[\?7h", output)
    return [text.strip() for text in shown]


def test_a_trial_that_logs_shows_a_live_line_that_is_cleared_when_it_ends(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    output = run_in_a_terminal(pytester.path)
    shown = live_lines(output)
    assert shown, output
    # The trial's id, its step, its latest metrics and the time so far.
    assert re.fullmatch(
        r"test_train\[lr:0\.1\]  step \d  acc=[\d.]+  loss=[\d.]+  \d+\.\ds", shown[0]
    ), shown
    assert any(s.startswith("test_train[lr:0.2]") for s in shown), shown
    # Each trial's line is erased where it began, before pytest writes on.
    assert output.count(f"{RESTORE}{ERASE}") == 2, output
    assert output.index(f"{RESTORE}{ERASE}") < output.index("[lr:0.2]")
    assert "2 passed" in output


@pytest.mark.parametrize(
    "args",
    [["-q"], ["-s"], ["--capture=tee-sys"], ["-n", "1"]],
    ids=["quiet", "no-capture", "tee-sys", "xdist"],
)
def test_no_live_line_under_q_s_tee_sys_or_xdist(
    pytester: pytest.Pytester, args: list[str]
) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    output = run_in_a_terminal(pytester.path, *args)
    assert "passed" in output, output
    assert SAVE not in output and RESTORE not in output, output


def test_nothing_changes_outside_a_terminal(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=2)
    assert "\x1b" not in result.stdout.str()
    # A CI log that takes colours is still no terminal.
    coloured = pytester.runpytest_subprocess("-p", "no:randomly", "--color=yes")
    assert "\x1b[32m" in coloured.stdout.str()
    assert SAVE not in coloured.stdout.str()


def test_a_name_with_a_control_character_cannot_move_the_cursor(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_sweep="""
        import time
        from pytest_hparams import hparam_grid

        @hparam_grid(name=["a\\x1b[2Jb"], metrics=["acc"])
        def test_train(name, trial):
            time.sleep(0.15)
            trial.log(0, **{"acc\\x1b[2J": 0.5})
        """
    )
    output = run_in_a_terminal(pytester.path)
    (shown,) = live_lines(output)
    # pytest's id spells the value's escape; the metric's name is ours to clean.
    assert "[name:a\\x1b[2Jb]" in shown and "acc?[2J=0.5" in shown, shown
    assert "\x1b[2J" not in output
