"""One dashboard per sweep: a sweep's folder of the logdir is an experiment of
its own in TensorBoard, every trial with a value on every axis, and the
terminal says how to open each when a logdir holds several."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# docs/screenshot.py drives Chromium over its DevTools pipe: the test looks
# at the dashboard through the same code that takes the docs' screenshots.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "docs"))
import screenshot

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


# Every metric a trial.log curve, so a pruned trial has a value on every
# axis too: the median pruner stops 11 of the 16 trials.
PRUNED_CURVES = """
from pytest_hparams import hparam_grid

@hparam_grid(lr=[0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1], units=[16, 32], pruner="median",
             metrics=["acc", "loss"])
def test_train(lr, units, trial):
    for step in range(5):
        acc = lr * (1 - 0.5 ** (step + 1)) + units / 1000
        trial.log(step, acc=acc, loss=1 - acc)
    return {"acc": acc, "loss": 1 - acc}
"""


def test_a_real_tensorboard_draws_a_line_per_trial_pruned_ones_among_them(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("needs Debian's chromium (apt-get install chromium; .ci/run installs it)")
    pytester.makepyfile(test_curves=PRUNED_CURVES)
    pytester.runpytest("--hparams-logdir=logs").assert_outcomes(passed=5)
    folder = pytester.path / "logs" / "test_curves.py" / "test_train"
    shot = tmp_path / "parallel.png"
    assert screenshot.parallel_lines(chromium, folder, 16, shot) == 16
    assert shot.stat().st_size > 10_000  # a picture, not an empty page


def test_each_repeated_combination_gets_a_run_of_its_mean_curve(
    pytester: pytest.Pytester, dashboard: Callable[[Path], Any]
) -> None:
    pytester.makepyfile(
        test_seeds="""
        from pytest_hparams import hparam_grid

        @hparam_grid(units=[16, 32], repeats=3, metrics=["acc"])
        def test_seeds(units, trial):
            for step in range(4):
                trial.log(step, acc=units / 100 + step + trial.repeat)
            return {"acc": units / 100 + 3 + trial.repeat}
        """
    )
    pytester.runpytest("--hparams-logdir=logs").assert_outcomes(passed=6)
    board = dashboard(pytester.path / "logs")
    # The HParams tab lists the trials, a combination's repeats as one group; not the means.
    assert sorted(len(g.sessions) for g in board.groups) == [3, 3]
    runs = board.multiplexer.Runs()
    mean = "test_seeds.py/test_seeds/mean~units=16"
    assert mean in runs
    points = board.multiplexer.Tensors(mean, "acc")
    # Repeats 0, 1 and 2 add 0, 1 and 2: their mean adds 1.
    assert [(p.step, round(float(p.tensor_proto.float_val[0]), 4)) for p in points] == [
        (0, 1.16),
        (1, 2.16),
        (2, 3.16),
        (3, 4.16),
    ]
