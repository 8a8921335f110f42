"""Installed, the plugin is invisible to tests that are not sweeps: the same
outcomes and exit code as with `-p no:hparams`, no line of ours, no attribute
of theirs read, no marker of theirs claimed."""

from __future__ import annotations

import pytest

PLAIN = """
import os
import unittest
from unittest import mock

import pytest

class Lazy:
    def __get__(self, obj, cls):
        raise RuntimeError("settings are not configured")  # Django's lazy settings

class TestWithMocks(unittest.TestCase):
    client = mock.MagicMock()
    settings = Lazy()

    def test_mock_untouched(self):
        assert self.client.mock_calls == []

@pytest.mark.hparams(lr=0.1)  # the project's own marker, not a sweep
def test_own_marker(request):
    assert request.node.get_closest_marker("hparams").kwargs == {"lr": 0.1}
"""


def outcomes_with_and_without(pytester: pytest.Pytester, *args: str) -> list[pytest.RunResult]:
    return [
        pytester.runpytest_subprocess(*args),
        pytester.runpytest_subprocess("-p", "no:hparams", *args),
    ]


def test_a_project_s_testcases_and_markers_are_left_alone(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmarkers =\n    hparams: the project's own marker\n")
    pytester.makepyfile(test_plain=PLAIN)
    on, off = outcomes_with_and_without(pytester, "--strict-markers")
    on.assert_outcomes(passed=2)
    off.assert_outcomes(passed=2)
    assert on.ret == off.ret == pytest.ExitCode.OK
    on.stdout.no_fnmatch_line("*hparams:*")


def test_a_plain_test_that_crashes_its_worker_and_passes_its_rerun_keeps_its_exit_code(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_crash="""
        import os

        def test_crashes_once(tmp_path_factory):
            flag = tmp_path_factory.getbasetemp().parent.parent / "crashed-once"
            if not flag.exists():
                flag.write_text("x")
                os._exit(1)

        def test_fine():
            pass
        """
    )
    results = []
    for plugin in ([], ["-p", "no:hparams"]):
        for flag in pytester.path.parent.glob("**/crashed-once"):
            flag.unlink()
        results.append(
            pytester.runpytest_subprocess(*plugin, "-n", "1", "--reruns", "1", "-p", "no:randomly")
        )
    on, off = results
    assert on.ret == off.ret
    assert on.parseoutcomes() == off.parseoutcomes()
    on.stdout.no_fnmatch_line("*worker died*")
    on.stdout.no_fnmatch_line("*not in the table*")
