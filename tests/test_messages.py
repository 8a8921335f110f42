"""Messages that send a user the right way: each names a command that works."""

from __future__ import annotations

import json

import pytest
from conftest import GRID, needs, run_merge

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


@pytest.mark.parametrize("group", ["..", "../outside", "/tmp/abs", "a/../../b", "C:x"])
def test_a_metric_group_outside_the_run_is_a_collection_error(
    pytester: pytest.Pytester, group: str
) -> None:
    pytester.makepyfile(
        test_g=f"""
        from pytest_hparams import hparam_grid, Metric

        @hparam_grid(a=[1], metrics=[Metric("acc", group={group!r})])
        def test_g(a):
            return {{"acc": 1.0}}
        """
    )
    result = pytester.runpytest("--hparams-logdir=logs")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "In test_g.py::test_g: Metric 'acc': group must be a relative directory inside "
            f"the trial's run, such as 'validation' (got {group!r})"
        ]
    )
    assert not (pytester.path / "outside").exists()


@pytest.mark.parametrize("workers", [[], ["-n", "2"]])
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--hparams-set", "units=1"],
            "--hparams-set names 'units', which no collected sweep has*",
        ),
        (["--hparams-set", "num_units=abc"], "--hparams-set: num_units='abc' is not a number*"),
        (
            ["--hparams-tolerance", "acc:1"],
            "--hparams-tolerance names 'acc', which no collected sweep declares*",
        ),
        (
            ["--hparams-only-best=bad.json"],
            "--hparams-only-best: *bad.json is not a pytest-hparams baseline or JSON report*",
        ),
    ],
)
def test_usage_errors_found_while_collecting_are_one_line_with_and_without_xdist(
    pytester: pytest.Pytester, workers: list[str], args: list[str], message: str
) -> None:
    pytester.makepyfile(test_grid=GRID)
    pytester.makefile(".json", bad='{"format": "pytest-hparams-report"}')
    result = pytester.runpytest_subprocess(*workers, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert any(
        __import__("fnmatch").fnmatch(line, f"ERROR: {message}")
        for line in result.outlines + result.errlines
    )
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_an_unknown_metric_in_the_ini_tolerance_is_refused_like_on_the_command_line(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_grid=GRID)
    pytester.makeini("[pytest]\nhparams_tolerance =\n    acc:0.1\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: hparams_tolerance (ini) names 'acc', which no collected sweep declares*"]
    )


def test_a_tolerance_that_names_no_metric_is_refused(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--hparams-tolerance", ":5%")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*':5%' names no metric before ':'; write METRIC:0.02, METRIC:5% or 5% for all"]
    )


def test_a_unittest_testcase_with_a_sweep_is_a_collection_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_u="""
        import unittest
        from pytest_hparams import hparam_grid

        class TestCase(unittest.TestCase):
            @hparam_grid(a=[1, 2])
            def test_u(self, a=0):
                return {"score": a}
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "In test_u.py::TestCase.test_u: @hparam_grid needs a plain test function "
            "or a method of a plain class; *"
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


def test_a_metric_too_large_for_a_float_fails_in_one_line_and_beyond_float32_warns(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_big="""
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1, 2])
        def test_big(a):
            return {"score": 10**400 if a == 1 else 1e39}
        """
    )
    result = pytester.runpytest("-W", "default")
    result.assert_outcomes(passed=1, failed=1, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "_* test_big[[]a:1[]] _*",
            "test_big.py::test_big[[]a:1[]] metric 'score' is too large for a float "
            "(got an int of 401 digits)",
            "*test_big.py::test_big[[]a:2[]] returned non-finite score=1e+39 "
            "(beyond float32: TensorBoard shows inf)",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


def test_a_declared_metric_the_trial_did_not_return_warns_with_the_close_match(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_m="""
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1], metrics=["accuracy"])
        def test_m(a):
            return {"acc": 0.9}

        @hparam_grid(b=[1], metrics=["accuracy"])
        def test_none(b):
            pass
        """
    )
    result = pytester.runpytest("-W", "default")
    result.assert_outcomes(passed=2, warnings=2)
    result.stdout.fnmatch_lines_random(
        [
            "*HParamsWarning: test_m.py::test_m[[]a:1[]] did not return the declared metric "
            "'accuracy' (it returned 'acc': a typo?); it returned 'acc'",
            "*HParamsWarning: test_m.py::test_none[[]b:1[]] returned no metrics but declares "
            "'accuracy'; return them, e.g. {'accuracy': ...}",
        ]
    )


def test_a_baseline_that_matches_no_trial_says_so_plainly(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_grid=GRID)
    pytester.makefile(
        ".json",
        other='{"format": "pytest-hparams-baseline", "version": 1, "trials": '
        '{"x.py::t[a:1]": {"test": "x.py::t", "hparams": {}, "metrics": {"m": 1}}}}',
    )
    for quiet in ([], ["-q"]):
        result = pytester.runpytest("--hparams-baseline=other.json", *quiet)
        result.assert_outcomes(passed=12)
        result.stdout.fnmatch_lines(
            ["baseline: none of its 1 trials is a trial of this run: it is another project's,*"]
        )


def test_a_returned_blank_metric_name_fails_the_trial_in_one_line(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_blank="""
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1])
        def test_blank(a):
            return {"": 1.0, "m": 2.0}
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*metric names must be non-blank strings (got '')*"])
