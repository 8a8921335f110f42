"""Messages that send a user the right way: each names a command that works."""

from __future__ import annotations

import json

import pytest
from conftest import needs, run_merge

SWEEP = """
import os
from pytest_hparams import hparam_grid

SHIFT = float(os.environ.get("SHIFT", "0"))

@hparam_grid(units=[16, 32, 64], opt=["adam", "sgd"], metrics=["accuracy"])
def test_model(units, opt):
    return {"accuracy": 0.8 + units / 1000 + (0.01 if opt == "adam" else 0.0) + SHIFT}
"""


@pytest.fixture
def sweep(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_model=SWEEP)
    return pytester


def test_a_failing_gate_best_is_said_on_pytest_s_summary_line(
    sweep: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep.runpytest("--hparams-save-baseline=b.json").assert_outcomes(passed=6)
    monkeypatch.setenv("SHIFT", "-0.5")
    result = sweep.runpytest("--hparams-baseline=b.json", "--hparams-gate=best", "--hparams-json=r")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*= 6 passed, 1 gate failed in *"])
    # JUnit XML has no run-level verdict; the JSON report says it at its top.
    gate = json.loads((sweep.path / "r").read_text())["gate"]
    assert gate["passed"] is False and "regressed" in gate["failures"][0]


def test_the_ini_baseline_s_first_save_is_the_command_its_error_gives(
    sweep: pytest.Pytester,
) -> None:
    sweep.makeini("[pytest]\nhparams_baseline = baseline.json\n")
    first = sweep.runpytest()
    assert first.ret == pytest.ExitCode.USAGE_ERROR
    first.stderr.fnmatch_lines(
        [
            "ERROR: hparams_baseline (ini): */baseline.json no such file; "
            "write it first with --hparams-save-baseline=*/baseline.json"
        ]
    )
    saved = sweep.runpytest(f"--hparams-save-baseline={sweep.path / 'baseline.json'}")
    saved.assert_outcomes(passed=6)
    sweep.runpytest().stdout.fnmatch_lines(["baseline: 0 regressed, 0 improved, 0 new, 6 ok"])


def test_merge_s_footer_names_merge_s_own_flag(sweep: pytest.Pytester) -> None:
    sweep.runpytest("--hparams-json=r.json", "--hparams-top=2").stdout.fnmatch_lines(
        ["... 4 more not shown (--hparams-top 0 shows all)"]
    )
    merged = run_merge(sweep, "r.json", "--top=2")
    merged.stdout.fnmatch_lines(["... 4 more not shown (--top 0 shows all)"])
    assert run_merge(sweep, "r.json", "--top=0").ret == 0


@needs("optuna", "optuna")
def test_a_storage_whose_driver_is_missing_names_the_package_to_install(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_p="""
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1, 2], pruner="median", metrics=["acc"])
        def test_p(a):
            return {"acc": a}
        """
    )
    result = pytester.runpytest_subprocess("--hparams-storage=mysql+pymysql://u@127.0.0.1/db")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: the Optuna study of * cannot be opened from *(ImportError: *"
         "install its driver (pip install 'pymysql'), or name the driver you have in the URL*"]
    )  # fmt: skip
