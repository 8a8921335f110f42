"""The optional extras: without them, each feature that needs one stops with
one line naming the extra to install, and everything else works.

Each run here blocks the extras' packages in a fresh process, so the tests
hold whether or not the extras are installed; the `no_extras` nox session
runs them where none is."""

from __future__ import annotations

import json

import pytest

#: A conftest that makes the extras' packages unimportable, as if not installed.
BLOCK_EXTRAS = """
import sys
for name in ("optuna", "scipy", "fsspec", "s3fs", "tensorflow", "plotly"):
    sys.modules[name] = None
"""

GRID = """
from pytest_hparams import Metric, hparam_grid

@hparam_grid(units=[16, 32], lr=[0.1, 0.01], metrics=[Metric("accuracy", min=0.5)]{extra})
def test_train(units, lr, trial):
    for step in range(3):
        trial.log(step, accuracy=0.5 + units * lr / 10 + step / 100)
    return {{"accuracy": 0.5 + units * lr / 10 + 0.03}}
"""

SEARCH = """
from pytest_hparams import hparam_search

@hparam_search(3, lr=[0.1, 0.01], metrics=["accuracy"])
def test_train(lr):
    return {"accuracy": lr}
"""

KERAS = """
from pytest_hparams import hparam_grid

@hparam_grid(units=[16])
def test_train(units, trial):
    trial.keras_callbacks()
"""


@pytest.fixture
def blocked(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(BLOCK_EXTRAS)
    return pytester


@pytest.mark.parametrize(
    ("test", "args", "error"),
    [
        pytest.param(
            GRID.format(extra=", pruner='median'"),
            ["--hparams-logdir=logs"],
            "ERROR: pruning needs Optuna; install it with: pip install 'pytest-hparams[optuna]', "
            "or run every trial to the end with --hparams-no-prune",
            id="pruning",
        ),
        pytest.param(
            GRID.format(extra=""),
            ["--hparams-logdir=logs", "--hparams-pruner=median"],
            "ERROR: pruning needs Optuna; install it with: pip install 'pytest-hparams[optuna]', "
            "or run every trial to the end with --hparams-no-prune",
            id="the-pruner-option",
        ),
        pytest.param(
            SEARCH,
            [],
            "ERROR: @hparam_search needs Optuna; install it with: "
            "pip install 'pytest-hparams[optuna]'",
            id="search",
        ),
        pytest.param(
            GRID.format(extra=""),
            ["--hparams-logdir=s3://bucket/sweeps"],
            "ERROR: --hparams-logdir: a logdir URL needs fsspec; "
            "install it with: pip install 'pytest-hparams[remote]'",
            id="remote-logdir",
        ),
        pytest.param(
            GRID.format(extra=""),
            ["--hparams-html=report.html"],
            "ERROR: --hparams-html draws its plots with plotly, which is not installed; "
            "install it with: pip install 'pytest-hparams[report]'",
            id="html-report",
        ),
    ],
)
def test_a_feature_without_its_extra_is_one_usage_error_naming_it(
    blocked: pytest.Pytester, test: str, args: list[str], error: str
) -> None:
    blocked.makepyfile(test_sweep=test)
    result = blocked.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert error in result.errlines, result.errlines
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert [p for p in blocked.path.glob("logs/**/*") if p.is_file()] == []  # nothing ran


def test_the_gate_on_repeats_without_scipy_is_one_usage_error_naming_stats(
    blocked: pytest.Pytester,
) -> None:
    blocked.makepyfile(test_sweep=GRID.format(extra=", repeats=2"))
    blocked.runpytest_subprocess("--hparams-save-baseline=b.json").assert_outcomes(passed=8)
    result = blocked.runpytest_subprocess("--hparams-baseline=b.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    [line] = [line for line in result.errlines if line.startswith("ERROR:")]
    assert line.endswith("install it with: pip install 'pytest-hparams[stats]'"), line


def test_keras_callbacks_without_tensorflow_fail_the_trial_naming_the_extra(
    blocked: pytest.Pytester,
) -> None:
    blocked.makepyfile(test_sweep=KERAS)
    result = blocked.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*trial.keras_callbacks() needs TensorFlow; "
            "install it with: pip install 'pytest-hparams[[]tensorflow[]]'"
        ]
    )


def test_without_extras_a_sweep_records_gates_reports_and_resumes(
    blocked: pytest.Pytester,
) -> None:
    blocked.makepyfile(test_sweep=GRID.format(extra=""))
    first = blocked.runpytest_subprocess(
        "--hparams-logdir=logs", "--hparams-save-baseline=b.json", "--hparams-json=r.json"
    )
    first.assert_outcomes(passed=4)
    first.stdout.fnmatch_lines(["4 trials: 4 passed; best accuracy=0.85 at [[]units:32-lr:0.1[]]"])
    report = json.loads((blocked.path / "r.json").read_text())
    assert [t["outcome"] for t in report["sweeps"][0]["trials"]] == ["passed"] * 4
    again = blocked.runpytest_subprocess(
        "--hparams-logdir=logs", "--hparams-baseline=b.json", "--hparams-resume"
    )
    again.assert_outcomes(skipped=4)
    again.stdout.fnmatch_lines(["4 trials: 4 resumed*", "baseline: 0 regressed*"])


def test_without_extras_repeats_run_and_summarise_without_a_baseline(
    blocked: pytest.Pytester,
) -> None:
    blocked.makepyfile(test_sweep=GRID.format(extra=", repeats=3"))
    result = blocked.runpytest_subprocess("--hparams-markdown=r.md")
    result.assert_outcomes(passed=12)
    result.stdout.fnmatch_lines(["4 combinations, 12 trials: 12 passed*"])
    assert "(n=3)" in (blocked.path / "r.md").read_text()
