"""Baseline files, and the comparisons of gates.py, as pure functions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import GRID, put_huge

from pytest_hparams import baseline, gates
from pytest_hparams.metrics import Metric, Tolerance
from pytest_hparams.records import Outcome, TrialKey, TrialRecord
from pytest_hparams.verdicts import Comparison, Verdict


def record(
    nodeid: str, outcome: Outcome = Outcome.PASSED, verdict: str = "", **metrics: float
) -> TrialRecord:
    test, _, params = nodeid.partition("[")
    key = TrialKey(nodeid, test, params.rstrip("]"), {"a": 1})
    comparison = Comparison(Verdict(verdict)) if verdict else None
    return TrialRecord(key, outcome, metrics, comparison=comparison)


def updated(
    existing: dict[str, baseline.Entry], records: list[TrialRecord]
) -> dict[str, baseline.Entry]:
    return baseline.updated(existing, records)[0]


def test_an_unchanged_run_writes_an_identical_sorted_file(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    trials = updated({}, [record("t.py::t[a:2]", loss=0.5), record("t.py::t[a:1]", acc=0.1)])
    baseline.save(path, trials)
    first = path.read_bytes()
    baseline.save(path, updated(baseline.load(path), []))
    assert path.read_bytes() == first
    data = json.loads(first)
    assert list(data["trials"]) == ["t.py::t[a:1]", "t.py::t[a:2]"]
    assert data["trials"]["t.py::t[a:1]"] == {
        "test": "t.py::t",
        "hparams": {"a": 1},
        "metrics": {"acc": 0.1},
    }
    assert first.endswith(b"}\n")


def test_updating_replaces_trials_that_ran_and_keeps_the_rest() -> None:
    old = updated({}, [record("t[a:1]", acc=0.1), record("t[a:2]", acc=0.2)])
    new = updated(old, [record("t[a:2]", acc=0.9), record("t[a:3]")])
    assert {k: v["metrics"] for k, v in new.items()} == {
        "t[a:1]": {"acc": 0.1},
        "t[a:2]": {"acc": 0.9},
    }


def test_a_regressed_or_failed_trial_never_moves_its_own_entry() -> None:
    old = updated({}, [record("t[a:1]", acc=0.9), record("t[a:2]", acc=0.9)])
    new = updated(
        old,
        [
            record("t[a:1]", Outcome.FAILED, "regressed", acc=0.1),
            record("t[a:2]", Outcome.ERROR, acc=0.2),
        ],
    )
    assert new == old


def test_a_nan_never_replaces_a_finite_baseline_value() -> None:
    old = updated({}, [record("t[a:1]", acc=0.9, loss=0.5)])
    new = updated(old, [record("t[a:1]", acc=float("nan"), loss=0.4)])
    assert new["t[a:1]"]["metrics"] == {"acc": 0.9, "loss": 0.4}


def test_a_float32_round_trip_is_the_same_value_not_a_regression() -> None:
    base = 0.13880000000000001
    read_back = 0.1387999951839447  # what TensorBoard's float32 gives back
    comparison = gates.compare_trial(
        {"acc": read_back}, {"metrics": {"acc": base}}, [Metric("acc")], lambda m: Tolerance(0.0)
    )
    assert comparison.verdict is Verdict.OK


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("{not json", "is not valid JSON"),
        (
            '{"trials": {}}',
            'is not a pytest-hparams baseline (no "format": "pytest-hparams-baseline")',
        ),
        (
            '{"format": "pytest-hparams-baseline", "version": 99, "trials": {}}',
            "has version 99; this pytest-hparams reads version 1",
        ),
        (
            '{"format": "pytest-hparams-baseline", "version": 1,'
            ' "trials": {"x": {"metrics": {"a": "b"}}}}',
            'has a malformed "trials" table',
        ),
    ],
)
def test_unusable_files_are_refused_with_the_reason(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "baseline.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(baseline.BaselineError) as excinfo:
        baseline.load(path)
    assert message in str(excinfo.value)


def compare(value: float | None, base: float, goal: str, tol: Tolerance | None) -> Comparison:
    metrics = {} if value is None else {"m": value}
    return gates.compare_trial(
        metrics, {"metrics": {"m": base}}, [Metric("m", goal)], lambda _: tol
    )


@pytest.mark.parametrize(
    ("value", "base", "goal", "tol", "verdict"),
    [
        (0.85, 0.861, "max", Tolerance(0.02), "ok"),
        (0.812, 0.861, "max", Tolerance(0.02), "regressed"),
        (0.90, 0.861, "max", Tolerance(0.02), "improved"),
        (0.52, 0.5, "min", Tolerance(0.05, relative=True), "ok"),
        (0.53, 0.5, "min", Tolerance(0.05, relative=True), "regressed"),
        (0.40, 0.5, "min", Tolerance(0.05, relative=True), "improved"),
        (float("nan"), 0.5, "min", Tolerance(1.0), "regressed"),
        (None, 0.5, "max", Tolerance(1.0), "regressed"),
        (0.5, 0.5, "max", Tolerance(0.0), "ok"),
    ],
)
def test_the_direction_comes_from_the_goal_and_the_margin_from_the_tolerance(
    value: float | None, base: float, goal: str, tol: Tolerance, verdict: str
) -> None:
    assert compare(value, base, goal, tol).verdict == verdict


def test_a_regression_message_names_metric_value_baseline_and_tolerance() -> None:
    assert compare(0.812, 0.861, "max", Tolerance(0.02)).messages == [
        "accuracy regressed: 0.812 < baseline 0.861 - tolerance 0.02".replace("accuracy", "m")
    ]
    assert compare(0.53, 0.5, "min", Tolerance(0.05, True)).messages == [
        "m regressed: 0.53 > baseline 0.5 + tolerance 5% (0.025)"
    ]
    assert compare(None, 0.5, "max", Tolerance(0.0)).messages == ["m is missing (baseline 0.5)"]


def test_a_regression_with_no_tolerance_set_says_so_and_how_to_set_one() -> None:
    assert compare(0.6, 0.5, "min", None).messages == [
        "m regressed: 0.6 > baseline 0.5 + tolerance 0 (none set for m: "
        "--hparams-tolerance m:VALUE, or --hparams-tolerance 5% for every metric)"
    ]


def test_a_trial_without_an_entry_is_new() -> None:
    result = gates.compare_trial({"m": 1.0}, None, [], lambda _: Tolerance(0.0))
    assert result == Comparison(Verdict.NEW)


def test_a_comparison_reads_back_from_its_json_form() -> None:
    comparison = compare(0.812, 0.861, "max", Tolerance(0.02))
    assert Comparison.from_dict(json.loads(json.dumps(comparison.to_dict()))) == comparison


def test_a_save_over_regressions_says_how_many_entries_it_kept(tmp_path: Path) -> None:
    old = updated({}, [record("t[a:1]", acc=0.9), record("t[a:2]", acc=0.9)])
    detail = baseline.save_records(
        tmp_path / "b.json",
        old,
        [record("t[a:1]", Outcome.FAILED, "regressed", acc=0.1), record("t[a:2]", acc=0.95)],
    )
    assert detail.startswith(" (2 trials); 1 kept at their old values")
    assert "-o hparams_baseline=" in detail


def test_combinations_whose_ids_read_alike_are_a_collection_error(
    pytester: pytest.Pytester,
) -> None:
    # pytest would number the two ids by their order (...c0, ...c1): a
    # reordered grid would then compare each with the other's baseline entry.
    pytester.makepyfile(
        test_w="""
        from pytest_hparams import hparam_grid

        @hparam_grid(x=["a", "a-y:b"], y=["b-y:c", "c"], metrics=["acc"])
        def test_w(x, y):
            return {"acc": 1.0}
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "In test_w.py::test_w: {'x': 'a', 'y': 'b-y:c'} and {'x': 'a-y:b', 'y': 'c'} both "
            "read as [[]x:a-y:b-y:c[]]: a value holds '-NAME:'; change it so each "
            "combination's id is its own"
        ]
    )


def test_a_regression_saved_into_its_own_baseline_never_moves_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_grid=GRID)
    pytester.runpytest("--hparams-save-baseline=base.json").assert_outcomes(passed=12)
    saved = (pytester.path / "base.json").read_text()
    monkeypatch.setenv("BONUS", "-0.5")
    both = ("--hparams-baseline=base.json", "--hparams-save-baseline=base.json")
    pytester.runpytest(*both).assert_outcomes(failed=12)
    assert (pytester.path / "base.json").read_text() == saved
    monkeypatch.delenv("BONUS")
    pytester.runpytest(*both).assert_outcomes(passed=12)


def test_resumed_trials_keep_their_place_in_a_saved_baseline(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_grid=GRID)
    pytester.runpytest("--hparams-logdir=logs").assert_outcomes(passed=12)
    result = pytester.runpytest(
        "--hparams-logdir=logs", "--hparams-resume", "--hparams-save-baseline=b.json"
    )
    result.stdout.fnmatch_lines(["baseline saved: b.json (12 trials)"])


def test_a_baseline_with_a_number_beyond_float64_is_malformed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_grid=GRID)
    pytester.runpytest("--hparams-save-baseline=base.json").assert_outcomes(passed=12)
    put_huge(pytester.path / "base.json")
    result = pytester.runpytest("--hparams-baseline=base.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: --hparams-baseline: {pytester.path / 'base.json'} has a malformed "
            '"trials" table*'
        ]
    )
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


@pytest.mark.parametrize("option", ["--hparams-save-baseline", "--hparams-json"])
def test_only_best_refuses_a_file_with_a_number_beyond_float64(
    pytester: pytest.Pytester, option: str
) -> None:
    pytester.makepyfile(test_grid=GRID)
    pytester.runpytest(f"{option}=f.json").assert_outcomes(passed=12)
    put_huge(pytester.path / "f.json")
    result = pytester.runpytest("--hparams-only-best=f.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: --hparams-only-best: {pytester.path / 'f.json'} is not a pytest-hparams *"]
    )
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
