"""Regression gates through pytester: thresholds, baselines, tolerances, and
the JSON, Markdown and JUnit reports."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from conftest import run_merge

SWEEP = """
import os
from pytest_hparams import hparam_grid, Metric

SHIFT = float(os.environ.get("SHIFT", "0"))

@hparam_grid(
    units=[16, 32],
    opt=["adam", "sgd"],
    metrics=[Metric("accuracy"), Metric("loss", goal="min")],
)
def test_model(units, opt):
    acc = 0.8 + units / 1000 + (0.05 if opt == "adam" else 0.0)
    if units == 32 and opt == "adam":
        acc += SHIFT
    return {"accuracy": acc, "loss": 1 - acc}
"""

REGRESSED = "test_model.py::test_model[[]units:32-opt:adam[]]"


@pytest.fixture
def sweep(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_model=SWEEP)
    return pytester


def test_a_trial_outside_a_threshold_fails_naming_metric_value_and_bound(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_bounds="""
        from pytest_hparams import hparam_grid, Metric

        @hparam_grid(a=[1, 2, 3], metrics=[Metric("accuracy", min=0.9), Metric("loss", max=0.5)])
        def test_bounds(a):
            return {"accuracy": [0.95, 0.812, 0.95][a - 1], "loss": [0.1, 0.1, 0.7][a - 1]}
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*test_bounds[[]a:2[]] accuracy 0.812 is below its minimum 0.9",
            "*test_bounds[[]a:3[]] loss 0.7 is above its maximum 0.5",
        ]
    )


def test_save_then_compare_unchanged_passes_and_rewrites_the_same_file(
    sweep: pytest.Pytester,
) -> None:
    sweep.runpytest("--hparams-save-baseline=baseline.json").assert_outcomes(passed=4)
    saved = (sweep.path / "baseline.json").read_bytes()
    assert len(json.loads(saved)["trials"]) == 4
    result = sweep.runpytest(
        "--hparams-baseline=baseline.json", "--hparams-save-baseline=baseline.json"
    )
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["baseline: 0 regressed, 0 improved, 0 new, 4 ok"])
    assert (sweep.path / "baseline.json").read_bytes() == saved


def test_a_worse_metric_beyond_tolerance_fails_that_item_with_exit_code_1(
    sweep: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep.runpytest("--hparams-save-baseline=baseline.json")
    monkeypatch.setenv("SHIFT", "-0.05")
    result = sweep.runpytest(
        "--hparams-baseline=baseline.json", "--hparams-tolerance", "accuracy:0.02"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            f"{REGRESSED} accuracy regressed: 0.832 < baseline 0.882 - tolerance 0.02;"
            " loss regressed: 0.168 > baseline 0.118 + tolerance 0 (none set for loss:"
            " --hparams-tolerance loss:VALUE, or --hparams-tolerance 5% for every metric)",
            "*0.832 0.882 -0.05 worse * failed  regressed",
            "baseline: 1 regressed, 0 improved, 0 new, 3 ok",
            f"FAILED {REGRESSED}*",
        ]
    )


def test_a_change_within_tolerance_passes(
    sweep: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep.runpytest("--hparams-save-baseline=baseline.json")
    monkeypatch.setenv("SHIFT", "-0.01")
    result = sweep.runpytest(
        "--hparams-baseline=baseline.json",
        "--hparams-tolerance",
        "accuracy:0.02",
        "--hparams-tolerance",
        "loss:10%",
    )
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*0.872 0.882 -0.01 * passed  ok"])


def test_an_improvement_is_reported_so_the_baseline_can_be_refreshed(
    sweep: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep.runpytest("--hparams-save-baseline=baseline.json")
    monkeypatch.setenv("SHIFT", "0.05")
    result = sweep.runpytest("--hparams-baseline=baseline.json")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "*0.932 0.882 +0.05 better * passed  improved",
            "baseline: 0 regressed, 1 improved, 0 new, 3 ok",
        ]
    )


def test_a_metric_that_became_nan_is_a_regression(
    sweep: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep.runpytest("--hparams-save-baseline=baseline.json")
    monkeypatch.setenv("SHIFT", "nan")
    result = sweep.runpytest("--hparams-baseline=baseline.json", "-W", "ignore")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines([f"{REGRESSED} accuracy regressed: nan (baseline 0.882)*"])


def test_new_trials_are_reported_as_new_and_missing_ones_as_not_run(
    sweep: pytest.Pytester,
) -> None:
    sweep.runpytest("--hparams-save-baseline=baseline.json", "-k", "units:16")
    result = sweep.runpytest("--hparams-baseline=baseline.json", "-k", "opt:adam")
    result.assert_outcomes(passed=2, deselected=2)
    result.stdout.fnmatch_lines(
        ["baseline: 0 regressed, 0 improved, 1 new, 1 ok; 1 not run ([[]units:16-opt:sgd[]])"]
    )


def test_saving_after_a_partial_run_keeps_the_other_entries(
    sweep: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep.runpytest("--hparams-save-baseline=baseline.json")
    monkeypatch.setenv("SHIFT", "0.1")
    sweep.runpytest("--hparams-save-baseline=baseline.json", "-k", "units:32 and opt:adam")
    trials = json.loads((sweep.path / "baseline.json").read_text())["trials"]
    assert len(trials) == 4
    accuracy = {k.split("[")[1]: v["metrics"]["accuracy"] for k, v in trials.items()}
    assert accuracy["units:32-opt:adam]"] == pytest.approx(0.982)
    assert accuracy["units:16-opt:adam]"] == pytest.approx(0.866)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{corrupt", "baseline.json is not valid JSON*"),
        (
            '{"format": "pytest-hparams-baseline", "version": 2, "trials": {}}',
            "baseline.json has version 2; this pytest-hparams reads version 1*",
        ),
    ],
)
def test_an_unusable_baseline_is_a_usage_error_and_is_left_untouched(
    sweep: pytest.Pytester, content: str, message: str
) -> None:
    path = sweep.path / "baseline.json"
    path.write_text(content)
    for option in "--hparams-baseline", "--hparams-save-baseline":
        result = sweep.runpytest(f"{option}=baseline.json")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"ERROR: {option}: */{message}"])
        result.stdout.no_fnmatch_line("*passed*")
        assert path.read_text() == content


def test_a_missing_baseline_is_a_usage_error(sweep: pytest.Pytester) -> None:
    result = sweep.runpytest("--hparams-baseline=nowhere.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --hparams-baseline: */nowhere.json no such file; *"])


def test_the_command_line_tolerance_wins_over_the_ini_and_the_metric(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        test_tol="""
        import os
        from pytest_hparams import hparam_grid, Metric

        @hparam_grid(a=[1], metrics=[Metric("score", tolerance=0.5)])
        def test_tol(a):
            return {"score": float(os.environ.get("SCORE", "1"))}
        """
    )
    pytester.runpytest("--hparams-save-baseline=b.json")
    monkeypatch.setenv("SCORE", "0.7")
    pytester.runpytest("--hparams-baseline=b.json").assert_outcomes(passed=1)
    pytester.makeini("[pytest]\nhparams_tolerance = score:0.1")
    pytester.runpytest("--hparams-baseline=b.json").assert_outcomes(failed=1)
    result = pytester.runpytest("--hparams-baseline=b.json", "--hparams-tolerance", "40%")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--hparams-tolerance", "accuracy:lots"],
            "*a tolerance must be a number >= 0 or a percentage like 5% (got 'lots'); write*",
        ),
        (["--hparams-tolerance", "loss:-1"], "*a tolerance must be a number >= 0*"),
        (
            ["--hparams-tolerance", "acc:0.1"],
            "ERROR: --hparams-tolerance names 'acc', which no collected sweep declares"
            " (declared: accuracy, loss)*",
        ),
    ],
)
def test_bad_tolerances_are_usage_errors(
    sweep: pytest.Pytester, args: list[str], message: str
) -> None:
    result = sweep.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_min_above_max_is_a_collection_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_x="""
        from pytest_hparams import hparam_grid, Metric

        @hparam_grid(a=[1], metrics=[Metric("acc", min=0.9, max=0.5)])
        def test_x(a):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["In test_x.py::test_x: Metric 'acc': min 0.9 is greater than max 0.5"]
    )


def test_json_report_holds_every_trial_with_its_baseline_comparison(
    sweep: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep.runpytest("--hparams-save-baseline=baseline.json")
    monkeypatch.setenv("SHIFT", "-0.1")
    sweep.runpytest("--hparams-baseline=baseline.json", "--hparams-json=report.json")
    data = json.loads((sweep.path / "report.json").read_text())
    (sweep_report,) = data["sweeps"]
    assert sweep_report["test"] == "test_model.py::test_model"
    assert [h["name"] for h in sweep_report["hparams"]] == ["units", "opt"]
    trials = sweep_report["trials"]
    assert len(trials) == 4
    assert trials[0]["params"] == "units:16-opt:adam"  # best passed trial first
    failed = trials[-1]
    assert failed["hparams"] == {"units": 32, "opt": "adam"}
    assert failed["outcome"] == "failed"
    assert failed["metrics"]["accuracy"] == pytest.approx(0.782)
    assert failed["baseline"]["verdict"] == "regressed"
    assert failed["baseline"]["metrics"]["accuracy"]["baseline"] == pytest.approx(0.882)
    assert failed["duration"] >= 0


def test_markdown_summary_is_a_table_best_first_with_regressions_marked(
    sweep: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep.runpytest("--hparams-save-baseline=baseline.json")
    monkeypatch.setenv("SHIFT", "-0.1")
    sweep.runpytest("--hparams-baseline=baseline.json", "--hparams-markdown=summary.md")
    lines = (sweep.path / "summary.md").read_text().splitlines()
    assert lines[0] == "### `test_model.py::test_model`"
    rows = [line for line in lines if line.startswith("| ")]
    assert rows[0] == (
        "|  | units | opt | accuracy (max) | vs base | loss | vs base | duration | outcome "
        "| baseline |"
    )
    assert rows[1].startswith("| 🏆 | 16 | adam | 0.866 | same | 0.134 | same |")
    assert rows[-1].startswith("| ❌ | 32 | adam | 0.782 | 0.882 -0.1 worse |")
    assert rows[-1].endswith("| failed | **regressed** |")


def test_markdown_keeps_the_trophy_on_a_best_row_that_improved(
    sweep: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep.runpytest("--hparams-save-baseline=baseline.json")
    monkeypatch.setenv("SHIFT", "0.05")  # units:32-opt:adam improves, and is the best
    sweep.runpytest("--hparams-baseline=baseline.json", "--hparams-markdown=summary.md")
    rows = [r for r in (sweep.path / "summary.md").read_text().splitlines() if r.startswith("| ")]
    assert rows[1].startswith("| 🏆 | 32 | adam | 0.932 | 0.882 +0.05 better |")
    assert rows[1].endswith("| passed | improved |")


def test_junit_xml_carries_hparams_and_metrics_as_properties(sweep: pytest.Pytester) -> None:
    sweep.runpytest("--junitxml", "junit.xml").assert_outcomes(passed=4)
    root = ET.parse(sweep.path / "junit.xml").getroot()
    case = next(c for c in root.iter("testcase") if c.get("name") == "test_model[units:32-opt:sgd]")
    properties = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert properties.pop("hparam.units") == "32"
    assert properties.pop("hparam.opt") == "sgd"
    assert {k: float(v) for k, v in properties.items()} == pytest.approx(
        {"metric.accuracy": 0.832, "metric.loss": 0.168}
    )


@pytest.mark.parametrize("repeats", [1, 3], ids=["single-run", "repeated"])
def test_gate_best_with_a_baseline_prints_the_table_in_pytest_and_in_merge(
    sweep: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, repeats: int
) -> None:
    reps = f"--hparams-repeats={repeats}"
    sweep.runpytest(reps, "--hparams-save-baseline=baseline.json").assert_outcomes(
        passed=4 * repeats
    )
    monkeypatch.setenv("SHIFT", "-0.1")  # the best combination gets worse than the baseline's
    args = (reps, "--hparams-baseline=baseline.json", "--hparams-gate=best")
    result = sweep.runpytest(*args, "--hparams-json=r.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.fnmatch_lines(
        [
            "*hparams: test_model.py::test_model*",
            "*regressed vs best",
            "baseline (gate best): the best, [[]units:16-opt:adam[]], regressed against the "
            "baseline's best test_model.py::test_model[[]units:32-opt:adam[]]*",
            "*hparams baseline gate: FAILED*",
        ]
    )
    merged = run_merge(
        sweep,
        "r.json",
        "--baseline=baseline.json",
        "--gate=best",
    )
    assert merged.ret == 1
    assert "Traceback" not in merged.stdout.str() + merged.stderr.str()
    merged.stdout.fnmatch_lines(["*regressed vs best", "baseline (gate best): the best*"])


def test_gate_best_without_a_baseline_says_what_it_needs(sweep: pytest.Pytester) -> None:
    result = sweep.runpytest("--hparams-gate=best")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        ["--hparams-gate best compares each sweep's best*--hparams-baseline"]
    )


def test_a_baseline_with_repeats_and_no_scipy_is_a_usage_error_before_any_trial(
    sweep: pytest.Pytester,
) -> None:
    sweep.runpytest("--hparams-repeats=3", "--hparams-save-baseline=baseline.json")
    sweep.makeconftest("import sys\nsys.modules['scipy'] = None  # as if not installed\n")
    result = sweep.runpytest_subprocess("--hparams-repeats=3", "--hparams-baseline=baseline.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: the baseline holds repeats*needs scipy*pip install 'pytest-hparams[[]stats[]]'"]
    )
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    result.stdout.no_fnmatch_line("*passed*")


def test_saving_over_regressions_says_how_many_entries_were_kept_and_how_to_accept(
    sweep: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep.runpytest("--hparams-save-baseline=baseline.json")
    monkeypatch.setenv("SHIFT", "-0.1")
    result = sweep.runpytest(
        "--hparams-baseline=baseline.json", "--hparams-save-baseline=baseline.json"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "baseline saved: baseline.json (4 trials); 1 kept at their old values, as their "
            "trials regressed or failed: to accept the new values, save without a baseline to "
            "compare with (leave out --hparams-baseline, or add -o hparams_baseline=)"
        ]
    )


def test_a_nan_repeat_is_flagged_in_its_combinations_mean(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_n="""
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1], repeats=3, metrics=["m"])
        def test_n(a, trial):
            return {"m": float("nan") if trial.repeat == 1 else 0.5}
        """
    )
    result = pytester.runpytest("-W", "ignore::pytest.PytestWarning")  # the NaN's own warning
    result.stdout.fnmatch_lines(["*0.5 ± 0 (n=2) +1 nan!*3/3 passed"])


def test_junit_xml_carries_the_baseline_verdict_of_each_trial(
    sweep: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep.runpytest("--hparams-save-baseline=baseline.json")
    monkeypatch.setenv("SHIFT", "-0.1")
    sweep.runpytest("--hparams-baseline=baseline.json", "--junitxml=junit.xml")
    root = ET.parse(sweep.path / "junit.xml").getroot()
    verdicts = {
        c.get("name"): {p.get("name"): p.get("value") for p in c.iter("property")}["baseline"]
        for c in root.iter("testcase")
    }
    assert verdicts == {
        "test_model[units:16-opt:adam]": "ok",
        "test_model[units:16-opt:sgd]": "ok",
        "test_model[units:32-opt:adam]": "regressed",
        "test_model[units:32-opt:sgd]": "ok",
    }


def test_a_run_of_only_trials_the_baseline_lacks_is_not_called_another_projects(
    sweep: pytest.Pytester,
) -> None:
    sweep.runpytest("--hparams-save-baseline=baseline.json", "-k", "opt:adam")
    result = sweep.runpytest("--hparams-baseline=baseline.json", "-k", "opt:sgd")
    result.assert_outcomes(passed=2, deselected=2)
    result.stdout.fnmatch_lines(["baseline: 0 regressed, 0 improved, 2 new, 0 ok; 2 not run*"])
    result.stdout.no_fnmatch_line("*another project's*")


def test_gate_best_fails_when_every_trial_returns_nan_for_the_primary_metric(
    sweep: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep.runpytest("--hparams-save-baseline=baseline.json")
    sweep.makepyfile(test_model=SWEEP.replace("return {", "acc = float('nan')\n    return {"))
    result = sweep.runpytest(
        "--hparams-baseline=baseline.json",
        "--hparams-gate=best",
        "-W",
        "ignore::pytest.PytestWarning",
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["*--hparams-gate best found no trial with a finite 'accuracy', the primary metric*"]
    )


def test_merge_with_a_baseline_compares_every_single_trial_again(
    sweep: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep.runpytest("--hparams-save-baseline=baseline.json")
    for k in (1, 2):
        sweep.runpytest(f"--hparams-shard={k}/2", f"--hparams-json=s{k}.json")
    monkeypatch.setenv("SHIFT", "-0.1")
    for k in (1, 2):
        sweep.runpytest(f"--hparams-shard={k}/2", f"--hparams-json=w{k}.json")
    same = run_merge(
        sweep,
        "s1.json",
        "s2.json",
        "--baseline=baseline.json",
    )
    assert same.ret == 0
    same.stdout.fnmatch_lines(["baseline: 0 regressed, 0 improved, 0 new, 4 ok"])
    worse = run_merge(
        sweep,
        "w1.json",
        "w2.json",
        "--baseline=baseline.json",
    )
    assert worse.ret == 1
    worse.stdout.fnmatch_lines(
        ["baseline: 1 regressed, 0 improved, 0 new, 3 ok", f"{REGRESSED} accuracy regressed: *"]
    )


def test_merge_refuses_reports_of_another_sweep_under_the_same_name(
    sweep: pytest.Pytester,
) -> None:
    sweep.runpytest("--hparams-json=a.json")
    sweep.makepyfile(test_model=SWEEP.replace('opt=["adam", "sgd"]', 'opt=["adam", "rms"]'))
    sweep.runpytest("--hparams-json=b.json", "-k", "rms")
    result = run_merge(sweep, "a.json", "b.json")
    assert result.ret == 2
    result.stderr.fnmatch_lines(
        ["error: b.json: its sweep test_model.py::test_model is not the one in the reports*"]
    )


def test_saving_to_another_file_keeps_the_entry_a_regressed_trial_was_judged_against(
    sweep: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep.runpytest("--hparams-save-baseline=baseline.json")
    monkeypatch.setenv("SHIFT", "-0.1")
    result = sweep.runpytest("--hparams-baseline=baseline.json", "--hparams-save-baseline=new.json")
    result.stdout.fnmatch_lines(
        ["baseline saved: new.json (4 trials); 1 kept at their old values*"]
    )
    old = json.loads((sweep.path / "baseline.json").read_text())["trials"]
    new = json.loads((sweep.path / "new.json").read_text())["trials"]
    key = "test_model.py::test_model[units:32-opt:adam]"
    assert new[key] == old[key]
