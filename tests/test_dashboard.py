"""One dashboard per sweep: a sweep's folder of the logdir is an experiment of
its own in TensorBoard, every trial with a value on every axis, and the
terminal says how to open each when a logdir holds several."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

TWO_SWEEPS = """
import pytest
from pytest_hparams import hparam_grid

@hparam_grid(units=[16, 32], opt=["adam", "sgd"], metrics=["accuracy"])
def test_keras(units, opt):
    return {"accuracy": units / 100 + (0.1 if opt == "adam" else 0.0)}

@hparam_grid(c=[0.1, 1.0, 10.0], metrics=["f1"], pruner="median")
def test_sklearn(c, trial):
    for step in range(3):
        trial.log(step, f1=c / 20)
    return {"f1": c / 20}
"""


def test_each_sweep_s_folder_is_a_dashboard_of_its_own(
    pytester: pytest.Pytester, dashboard: Callable[[Path], Any]
) -> None:
    pytester.makepyfile(test_two=TWO_SWEEPS)
    result = pytester.runpytest("--hparams-logdir=logs")
    result.assert_outcomes(passed=7)
    result.stdout.fnmatch_lines(
        [
            "logdir: logs",
            "view:   tensorboard --logdir logs/test_two.py/test_keras",
            "view:   tensorboard --logdir logs/test_two.py/test_sklearn",
            "        (every sweep at once: tensorboard --logdir logs)",
        ]
    )
    for folder, hparams, metric, trials in [
        ("test_keras", {"units", "opt"}, "accuracy", 4),
        ("test_sklearn", {"c"}, "f1", 3),
    ]:
        board = dashboard(pytester.path / "logs" / "test_two.py" / folder)
        assert board.hparam_names - {"pytest.sweep"} == hparams
        assert metric in board.metric_names
        assert len(board.groups) == trials
        # A line per trial in the parallel-coordinates view: a value on every axis.
        for group in board.groups:
            assert set(board.hparams(group)) >= hparams
            assert metric in board.metrics(group)
    root = dashboard(pytester.path / "logs")  # the root stays readable: every trial
    assert len(root.groups) == 7


def test_one_sweep_in_a_logdir_keeps_one_view_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_two=TWO_SWEEPS)
    result = pytester.runpytest("--hparams-logdir=logs", "-k", "keras")
    result.stdout.fnmatch_lines(["logdir: logs", "view:   tensorboard --logdir logs"])
    result.stdout.no_fnmatch_line("*every sweep at once*")
