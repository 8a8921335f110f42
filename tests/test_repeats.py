"""Repeats over seeds: items, TensorBoard session groups, tables, reports, and
the baseline gate that knows the noise."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Dashboard, run_merge

from pytest_hparams.gates import judge_repeats as judge
from pytest_hparams.metrics import Metric, Tolerance
from pytest_hparams.verdicts import Summary

# Each trial's accuracy: a value per combination plus seeded noise (std 0.01);
# SHIFT moves every value, as a degraded model would.
NOISY = """
import os, random
from pytest_hparams import hparam_grid

SHIFT = float(os.environ.get("SHIFT", "0"))

@hparam_grid(units=[16, 32], opt=["adam", "sgd"], repeats={repeats}, metrics=["acc"])
def test_r(units, opt, trial):
    rng = random.Random(trial.seed)
    base = units / 100 + (0.1 if opt == "adam" else 0.0)
    return {{"acc": base + rng.gauss(0, 0.01) + SHIFT}}
"""

# What each repeat got: its seed and its number.
SEEDS = """
from pytest_hparams import hparam_grid

@hparam_grid(units=[16, 32], opt=["adam", "sgd"], repeats=5)
def test_s(units, opt, trial):
    return {"seed": trial.seed, "repeat": trial.repeat}
"""


@pytest.fixture
def noisy(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_r=NOISY.format(repeats=5))
    return pytester


def test_each_repeat_is_an_item_with_its_own_id_repeat_and_seed(
    noisy: pytest.Pytester,
) -> None:
    result = noisy.runpytest("--collect-only", "-q", "test_r.py")
    result.stdout.fnmatch_lines(
        [
            "test_r.py::test_r[[]units:16-opt:adam-repeat:0[]]",
            "test_r.py::test_r[[]units:16-opt:adam-repeat:1[]]",
            "*",
            "test_r.py::test_r[[]units:32-opt:sgd-repeat:4[]]",
            "20 tests collected*",
        ]
    )
    noisy.makepyfile(test_s=SEEDS)
    noisy.runpytest("test_s.py", "--hparams-json=r.json").assert_outcomes(passed=20)
    trials = json.loads((noisy.path / "r.json").read_text())["sweeps"][0]["trials"]
    assert sorted(t["metrics"]["repeat"] for t in trials) == sorted([0.0, 1.0, 2.0, 3.0, 4.0] * 4)
    assert len({t["metrics"]["seed"] for t in trials}) == 20


def test_one_repeat_keeps_todays_ids(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_r=NOISY.format(repeats=1))
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["test_r.py::test_r[[]units:16-opt:adam[]]", "4 tests collected*"])


def test_the_command_line_sets_repeats_for_every_sweep_and_k_selects_one(
    noisy: pytest.Pytester,
) -> None:
    noisy.runpytest("--hparams-repeats", "2").assert_outcomes(passed=8)
    noisy.runpytest("-k", "repeat:0").assert_outcomes(passed=4)
    result = noisy.runpytest("--hparams-repeats", "0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_a_bad_repeats_is_a_one_line_collection_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_r=NOISY.format(repeats="0"))
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["In test_r.py::test_r: repeats must be a whole number >= 1 (got 0)"]
    )


def test_the_seed_salt_changes_every_seed_and_no_id(pytester: pytest.Pytester) -> None:
    noisy = pytester
    noisy.makepyfile(test_s=SEEDS)
    noisy.runpytest("--hparams-json=a.json").assert_outcomes(passed=20)
    noisy.runpytest("--hparams-json=b.json", "--hparams-seed", "1").assert_outcomes(passed=20)

    def seeds(name: str) -> dict[str, float]:
        data = json.loads((noisy.path / name).read_text())
        return {t["nodeid"]: t["metrics"]["seed"] for t in data["sweeps"][0]["trials"]}

    a, b = seeds("a.json"), seeds("b.json")
    assert a.keys() == b.keys()
    assert all(a[k] != b[k] for k in a)


def test_tensorboard_groups_a_combinations_repeats_and_averages_them(
    noisy: pytest.Pytester, dashboard: Callable[[Path], Dashboard]
) -> None:
    noisy.runpytest("--hparams-logdir=logs", "--hparams-json=r.json").assert_outcomes(passed=20)
    board = dashboard(noisy.path / "logs")
    assert len(board.groups) == 4
    assert all(len(g.sessions) == 5 for g in board.groups)
    assert "repeat" not in board.hparam_names and "hparams_repeat" not in board.hparam_names
    data = json.loads((noisy.path / "r.json").read_text())
    means = {
        (c["hparams"]["units"], c["hparams"]["opt"]): c["metrics"]["acc"]["mean"]
        for c in data["sweeps"][0]["combinations"]
    }
    group = board.group("[units:32-opt:adam]")
    assert group.name.startswith("32, adam · test_r.py::test_r[units:32-opt:adam]")
    # TensorBoard stores float32; its mean is the mean of the repeats.
    assert Dashboard.metrics(group)["acc"] == pytest.approx(means[(32, "adam")], rel=1e-6)


def test_a_real_tensorboard_server_serves_one_group_per_combination(
    noisy: pytest.Pytester, tensorboard_server: Callable[[Path], Any]
) -> None:
    noisy.runpytest("--hparams-logdir=logs", "--hparams-repeats", "3").assert_outcomes(passed=12)
    server = tensorboard_server(noisy.path / "logs")
    groups = server.session_groups(expected=4, with_metrics=4)
    assert len(groups) == 4
    assert sorted(len(g["sessions"]) for g in groups) == [3, 3, 3, 3]


def test_the_table_has_a_row_per_combination_with_mean_std_and_outcomes(
    noisy: pytest.Pytester,
) -> None:
    result = noisy.runpytest()
    result.stdout.fnmatch_lines(
        [
            "  units opt  acc (max) * duration outcome",
            "*    32 adam 0.4* ± 0.0* (n=5) *s 5/5 passed",
            "     32 sgd  0.3* ± 0.0* (n=5) *s 5/5 passed",
            "     16 adam 0.2* ± 0.0* (n=5) *s 5/5 passed",
            "     16 sgd  0.1* ± 0.0* (n=5) *s 5/5 passed",
            "4 combinations, 20 trials: 20 passed; "
            "best acc=0.4* ± * (n=5) at [[]units:32-opt:adam[]]",
        ]
    )


def test_the_json_report_keeps_every_repeat_and_sums_up_each_combination(
    noisy: pytest.Pytester,
) -> None:
    noisy.runpytest("--hparams-json=r.json", "--hparams-markdown=r.md")
    (sweep,) = json.loads((noisy.path / "r.json").read_text())["sweeps"]
    assert len(sweep["trials"]) == 20
    combos = {c["combo"]: c for c in sweep["combinations"]}
    combo = combos["test_r.py::test_r[units:16-opt:sgd]"]
    values = [t["metrics"]["acc"] for t in sweep["trials"] if t["combo"] == combo["combo"]]
    assert combo["repeats"] == 5 and combo["outcomes"] == "5/5 passed"
    assert combo["metrics"]["acc"]["n"] == 5
    assert combo["metrics"]["acc"]["mean"] == pytest.approx(sum(values) / 5)
    markdown = (noisy.path / "r.md").read_text()
    assert (
        "| 🏆 | 32 | adam | 0.4" in markdown
        and "(n=5) | " in markdown
        and "| 5/5 passed |" in markdown
    )


# --- the gate -------------------------------------------------------------------


def gate(noisy: pytest.Pytester, *args: str) -> pytest.RunResult:
    return noisy.runpytest("--hparams-baseline=base.json", *args)


def merge(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return run_merge(pytester, *args)


def comparisons(report: Path) -> dict[str, Any]:
    """Each combination's baseline comparison in a JSON report, by name."""
    sweep = json.loads(report.read_text())["sweeps"][0]
    return {c["combo"]: c["baseline"] for c in sweep["combinations"]}


@pytest.fixture
def saved(noisy: pytest.Pytester) -> pytest.Pytester:
    noisy.runpytest("--hparams-save-baseline=base.json").assert_outcomes(passed=20)
    entry = json.loads((noisy.path / "base.json").read_text())["trials"][
        "test_r.py::test_r[units:32-opt:adam]"
    ]
    assert entry["stats"]["acc"]["n"] == 5 and len(entry["stats"]["acc"]["values"]) == 5
    return noisy


def test_new_seeds_from_the_same_model_pass_the_gate(saved: pytest.Pytester) -> None:
    # One A/A draw (the noise is seeded, so it is the same draw on every run);
    # how often A/A fails over many draws is what benchmarks/noise.py measures.
    result = gate(saved, "--hparams-seed", "1")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.no_fnmatch_line("*acc regressed*")


def test_a_degraded_model_fails_the_run_with_means_stds_ns_and_p(
    saved: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIFT", "-0.05")
    result = gate(saved, "--hparams-seed", "1")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=20)  # no single item carries the verdict
    result.stdout.fnmatch_lines(
        [
            "*baseline: 4 regressed, 0 improved, 0 new, 0 ok",
            "*hparams baseline gate: FAILED*",
            "test_r.py::test_r[[]units:16-opt:adam[]] acc regressed: 0.2* ± 0.0* (n=5) vs "
            "baseline 0.2* ± 0.0* (n=5); one-sided Welch's t-test p=* < alpha 0.05, beyond "
            "tolerance 0 (none set for acc: *)",
        ]
    )


def test_a_change_within_the_tolerance_passes_however_significant(
    saved: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIFT", "-0.05")
    assert gate(saved, "--hparams-tolerance", "acc:0.1").ret == pytest.ExitCode.OK


def test_the_gate_gives_the_same_verdicts_under_xdist(
    saved: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIFT", "-0.012")
    serial = gate(saved, "--hparams-seed", "1", "--hparams-json=serial.json")
    parallel = saved.runpytest_subprocess(
        "-n",
        "2",
        "--hparams-baseline=base.json",
        "--hparams-seed",
        "1",
        "--hparams-json=parallel.json",
    )
    assert serial.ret == parallel.ret
    serial_verdicts = comparisons(saved.path / "serial.json")
    assert serial_verdicts == comparisons(saved.path / "parallel.json")


def test_shards_keep_repeats_together_and_merge_gives_the_same_verdicts(
    saved: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIFT", "-0.012")
    gate(saved, "--hparams-seed", "1", "--hparams-json=all.json")
    for k in (1, 2, 3):
        name = f"s{k}.json"
        gate(saved, "--hparams-seed", "1", "--hparams-shard", f"{k}/3", f"--hparams-json={name}")
        sweeps = json.loads((saved.path / name).read_text())["sweeps"]
        combos = [t["combo"] for sweep in sweeps for t in sweep["trials"]]
        assert all(combos.count(c) == 5 for c in combos)  # every repeat in one shard
    merged = merge(
        saved,
        "s1.json",
        "s2.json",
        "s3.json",
        "--baseline",
        "base.json",
        "-o",
        "merged.json",
    )

    verdicts = {c: v["verdict"] for c, v in comparisons(saved.path / "all.json").items()}
    merged_verdicts = comparisons(saved.path / "merged.json")
    assert {c: v["verdict"] for c, v in merged_verdicts.items()} == verdicts
    assert (merged.ret == 1) == ("regressed" in verdicts.values())


def test_a_baseline_of_single_values_judges_each_repeat_by_todays_rule(
    noisy: pytest.Pytester,
) -> None:
    noisy.runpytest("--hparams-repeats", "1", "--hparams-save-baseline=base.json")
    result = gate(noisy, "--hparams-tolerance", "acc:0.005")
    # Each repeat against the single value: noise alone fails some of them.
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) > 0
    result.stdout.fnmatch_lines(
        ["test_r.py::test_r[[]*-repeat:*[]] acc regressed: * < baseline * - tolerance 0.005"]
    )


def test_gate_best_compares_only_the_best_combination(
    saved: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sgd combinations degrade; the best (32, adam) does not: best passes.
    saved.makepyfile(
        test_r=NOISY.format(repeats=5).replace("+ SHIFT}", "+ (SHIFT if opt == 'sgd' else 0.0)}")
    )
    monkeypatch.setenv("SHIFT", "-0.05")
    assert gate(saved, "--hparams-gate", "best", "--hparams-seed", "1").ret == 0
    assert gate(saved, "--hparams-gate", "each", "--hparams-seed", "1").ret == 1
    monkeypatch.setenv("SHIFT", "-0.2")  # now sgd sinks further, adam too below
    saved.makepyfile(test_r=NOISY.format(repeats=5))
    result = gate(saved, "--hparams-gate", "best", "--hparams-seed", "1")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "test_r.py::test_r: best test_r.py::test_r[[]units:32-opt:adam[]] against the "
            "baseline's best test_r.py::test_r[[]units:32-opt:adam[]]: acc regressed: *"
        ]
    )


# --- the test itself, as a pure function --------------------------------------


def test_judge_needs_both_a_change_that_matters_and_one_that_is_not_noise() -> None:
    rng = random.Random(0)
    base = Summary.of(rng.gauss(0.9, 0.01) for _ in range(10))
    same = Summary.of(rng.gauss(0.9, 0.01) for _ in range(10))
    worse = Summary.of(rng.gauss(0.87, 0.01) for _ in range(10))
    acc = Metric("acc")
    assert judge(acc, same, base, Tolerance(0.0), 0.05)[0] == "ok"
    verdict, message, p = judge(acc, worse, base, Tolerance(0.0), 0.05)
    assert verdict == "regressed" and p is not None and p < 0.05
    assert "(n=10) vs baseline" in message
    assert judge(acc, worse, base, Tolerance(0.05), 0.05)[0] == "ok"  # within tolerance
    loss = Metric("loss", goal="min")
    assert judge(loss, worse, base, Tolerance(0.0), 0.05)[0] == "improved"


def test_judge_with_one_value_on_a_side_uses_the_single_value_rule() -> None:
    base = Summary(1, 0.9, 0.0, (0.9,))
    run = Summary.of([0.85, 0.86, 0.84])
    verdict, message, p = judge(Metric("acc"), run, base, Tolerance(0.02), 0.05)
    assert verdict == "regressed" and p is None and "beyond tolerance 0.02" in message


def test_judge_of_samples_without_variance_is_exact() -> None:
    base = Summary.of([0.9, 0.9, 0.9])
    assert judge(Metric("acc"), Summary.of([0.8] * 3), base, Tolerance(0.0), 0.05)[0] == "regressed"
    assert judge(Metric("acc"), Summary.of([0.9] * 3), base, Tolerance(0.0), 0.05)[0] == "ok"
    assert math.isnan(Summary.of([]).mean)


def test_resume_skips_the_repeats_that_passed_and_keeps_their_values(
    noisy: pytest.Pytester,
) -> None:
    noisy.runpytest("--hparams-logdir=logs", "-k", "repeat:0 or repeat:1").assert_outcomes(
        passed=8, deselected=12
    )
    result = noisy.runpytest("--hparams-logdir=logs", "--hparams-resume", "-rs")
    result.assert_outcomes(passed=12, skipped=8)
    result.stdout.fnmatch_lines(["*4 combinations, 20 trials: 12 passed, 8 resumed*"])


# --- found by an adversarial pass ------------------------------------------------

TWO_METRICS = """
import os, random
from pytest_hparams import hparam_grid, Metric

SHIFT = float(os.environ.get("SHIFT", "0"))
NAN = os.environ.get("NAN", "")
SKIP = os.environ.get("SKIP", "")

@hparam_grid(a=[1, 2], repeats=3,
             metrics=[Metric("acc"), Metric("latency", goal="min", tolerance=0.5)])
def test_m(a, trial, request):
    import pytest
    if SKIP and f"a:{a}-" in request.node.nodeid:
        pytest.skip("not today")
    rng = random.Random(trial.seed)
    acc = 0.8 + a / 100 + rng.gauss(0, 0.001)
    if NAN and f"a:{a}-repeat:0" in request.node.nodeid:
        acc = float("nan")
    return {"acc": acc, "latency": 10.0 - SHIFT * 5 + rng.gauss(0, 0.01)}
"""


@pytest.fixture
def two(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_m=TWO_METRICS)
    pytester.runpytest("--hparams-save-baseline=base.json").assert_outcomes(passed=6)
    return pytester


def test_gate_best_judges_every_metric_by_its_declared_goal_and_tolerance(
    two: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIFT", "1")  # latency halves: better, not worse
    result = gate(two, "--hparams-gate", "best", "--hparams-json=r.json")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    combos = json.loads((two.path / "r.json").read_text())["sweeps"][0]["combinations"]
    best = next(c for c in combos if c["combo"].endswith("[a:2]"))
    assert best["baseline"]["metrics"]["latency"]["verdict"] == "improved"
    assert best["baseline"]["against"] == "test_m.py::test_m[a:2]"
    other = next(c for c in combos if c["combo"].endswith("[a:1]"))
    assert other["baseline"]["verdict"] == "improved"  # shown, though it cannot fail


def test_gate_best_breaks_ties_the_same_way_on_both_sides(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_tie="""
        from pytest_hparams import hparam_grid, Metric

        @hparam_grid(a=[1, 2], repeats=3,
                     metrics=[Metric("acc"), Metric("latency", goal="min")])
        def test_tie(a):
            return {"acc": 0.9, "latency": 5.0 * a}
        """
    )
    pytester.runpytest("--hparams-save-baseline=base.json").assert_outcomes(passed=6)
    assert pytester.runpytest("--hparams-baseline=base.json", "--hparams-gate", "best").ret == 0


def test_a_shard_leaves_gate_best_to_merge(two: pytest.Pytester) -> None:
    for k in (1, 2):
        result = gate(
            two,
            "--hparams-gate",
            "best",
            "--hparams-shard",
            f"{k}/2",
            f"--hparams-json=s{k}.json",
        )
        assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    merged = merge(
        two,
        "s1.json",
        "s2.json",
        "--baseline",
        "base.json",
        "--gate",
        "best",
    )
    assert merged.ret == 0


def test_merge_without_a_baseline_keeps_the_shards_verdicts_on_repeats(
    two: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIFT", "-1")  # latency doubles
    for k in (1, 2):
        assert gate(two, "--hparams-shard", f"{k}/2", f"--hparams-json=s{k}.json").ret == 1
    merged = merge(
        two,
        "s1.json",
        "s2.json",
        "--save-baseline",
        "merged.json",
    )
    assert merged.ret == 1
    merged.stdout.fnmatch_lines(["*latency regressed*"])
    # Both combinations regressed: neither moves into the saved baseline.
    assert json.loads((two.path / "merged.json").read_text())["trials"] == {}


def test_a_repeat_that_returned_nan_is_a_regression_not_a_smaller_sample(
    two: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NAN", "1")
    result = gate(two, "-W", "ignore::pytest_hparams.HParamsWarning")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*acc is missing or not finite in 1 of 3 repeats*"])


def test_gate_best_says_so_when_the_baseline_lacks_the_primary_metric(
    two: pytest.Pytester,
) -> None:
    data = json.loads((two.path / "base.json").read_text())
    for entry in data["trials"].values():
        del entry["metrics"]["acc"]
        del entry["stats"]["acc"]
    (two.path / "base.json").write_text(json.dumps(data))
    result = gate(two, "--hparams-gate", "best")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["*--hparams-gate best cannot compare: the baseline holds no 'acc'*"]
    )


def test_a_combination_whose_repeats_were_all_skipped_is_not_judged(
    two: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SKIP", "1")
    assert gate(two).ret == pytest.ExitCode.OK


def test_saving_a_partial_run_never_shrinks_a_combinations_entry(two: pytest.Pytester) -> None:
    before = json.loads((two.path / "base.json").read_text())["trials"]
    two.runpytest("-k", "repeat:0", "--hparams-save-baseline=base.json")
    assert json.loads((two.path / "base.json").read_text())["trials"] == before


@pytest.mark.parametrize(
    "stats",
    [
        [1],
        "x",
        {"acc": {"n": 3, "mean": 1.0, "std": 0.0, "values": []}},
        {"acc": {"n": 2, "mean": 1.0, "std": -1.0, "values": [1.0, 1.0]}},
    ],
)
def test_malformed_stats_in_a_baseline_are_a_usage_error(two: pytest.Pytester, stats: Any) -> None:
    data = json.loads((two.path / "base.json").read_text())
    next(iter(data["trials"].values()))["stats"] = stats
    (two.path / "base.json").write_text(json.dumps(data))
    result = gate(two)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ['ERROR: --hparams-baseline: *base.json has a malformed "trials" table*']
    )


def test_a_gate_on_near_equal_repeats_survives_warnings_as_errors(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_r=NOISY.format(repeats=3))
    pytester.runpytest("--hparams-save-baseline=base.json").assert_outcomes(passed=12)
    # Every repeat the same: scipy warns of precision loss in its t-test.
    pytester.makepyfile(test_r=NOISY.format(repeats=3).replace("rng.gauss(0, 0.01)", "0.0"))
    result = pytester.runpytest("--hparams-baseline=base.json", "-W", "error")
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.fnmatch_lines(["4 combinations, 12 trials: 12 passed*"])


def test_saving_over_a_repeat_that_returned_nan_keeps_the_recorded_value(
    two: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = json.loads((two.path / "base.json").read_text())["trials"]
    monkeypatch.setenv("NAN", "1")  # each combination's first repeat returns acc NaN
    result = two.runpytest(
        "--hparams-save-baseline=base.json", "-W", "ignore::pytest_hparams.HParamsWarning"
    )
    result.assert_outcomes(passed=6)
    after = json.loads((two.path / "base.json").read_text())["trials"]
    entry = after["test_m.py::test_m[a:1]"]
    # Two survivors would flatter: acc keeps its three recorded repeats.
    assert entry["stats"]["acc"] == before["test_m.py::test_m[a:1]"]["stats"]["acc"]
    assert entry["stats"]["latency"]["n"] == 3  # a finite metric still moves
    # On a fresh file, the metric that came out NaN is left out, as for one trial.
    two.runpytest(
        "--hparams-save-baseline=fresh.json", "-W", "ignore::pytest_hparams.HParamsWarning"
    ).assert_outcomes(passed=6)
    fresh = json.loads((two.path / "fresh.json").read_text())["trials"]
    assert [set(e["stats"]) for e in fresh.values()] == [{"latency"}, {"latency"}]


def test_repeats_whose_values_overflow_a_sum_are_summed_without_a_traceback(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_big="""
        from pytest_hparams import hparam_grid

        @hparam_grid(lr=[0.1, 10.0, 20.0], repeats=2, metrics=["acc", "loss"])
        def test_big(lr, trial):
            huge = {10.0: 1.5e308, 20.0: 1.7e308 * (1 if trial.repeat else -1)}
            return {"acc": 0.9 if lr < 1 else 0.1, "loss": huge.get(lr, 0.3)}
        """
    )
    args = ["--hparams-json=r.json", "--hparams-save-baseline=b.json", "-W", "ignore"]
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(
        ["*10.0*1.5e+308 ± 0 (n=2)*2/2 passed", "3 combinations, 6 trials: 6 passed*"]
    )
    combos = json.loads((pytester.path / "r.json").read_text())["sweeps"][0]["combinations"]
    assert len(combos) == 3
    # A spread past the float limit is not saved as a baseline; the rest is.
    saved = json.loads((pytester.path / "b.json").read_text())["trials"]
    assert saved["test_big.py::test_big[lr:10.0]"]["stats"]["loss"]["mean"] == 1.5e308
    assert set(saved["test_big.py::test_big[lr:20.0]"]["stats"]) == {"acc"}


def test_a_combination_that_failed_or_regressed_is_shown_beyond_top(
    noisy: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    noisy.makepyfile(
        test_r=NOISY.format(repeats=2).replace(
            "rng = random", "assert (units, opt) != (16, 'sgd')\n    rng = random"
        )
    )
    result = noisy.runpytest("--hparams-top=1", "-p", "no:randomly")
    result.stdout.fnmatch_lines(
        [
            "*hparams: test_r.py::test_r*",
            "*",
            "[*] *32 adam*2/2 passed",
            "*16 sgd *2 failed",
            "... 2 more not shown*",
        ]
    )
