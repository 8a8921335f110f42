"""`@hparam_search`: n items whose hparams an Optuna sampler proposes as
each starts, learning from the trials the study holds; ids keep their values
across reruns, and the table, reports and TensorBoard show the asked values."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
from conftest import Dashboard, latest_study, sweep_studies

Read = Callable[[Path], Dashboard]

SEARCH = """
import math
from pytest_hparams import LogUniform, hparam_search

@hparam_search(6, lr=LogUniform(1e-4, 1.0), units=[16, 32, 64], metrics=["acc"], {extra})
def test_fit(lr, units, hparams, trial):
    assert hparams == trial.hparams == {{"lr": lr, "units": units}}
    print("ASKED", trial.id, lr, units)
    acc = 1 - abs(math.log10(lr) + 2) / 4 + units / 1000
    for step in range(3):
        trial.log(step, acc=acc - (2 - step) * 0.01)
    return {{"acc": acc}}
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:randomly", *args)


def asked(result: pytest.RunResult) -> dict[str, tuple[float, int]]:
    """What each trial's function was given, from its own printed line."""
    found = re.findall(r"ASKED \S+\[(trial:\d+)\] (\S+) (\d+)", result.stdout.str())
    return {trial: (float(lr), int(units)) for trial, lr, units in found}


def trials_of(path: Path) -> list[dict[str, Any]]:
    trials: list[dict[str, Any]] = json.loads(path.read_text())["sweeps"][0]["trials"]
    return trials


def journal(path: Path) -> optuna.storages.JournalStorage:
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(
        JournalFileBackend(str(path / ".pytest-hparams-optuna.journal"))
    )


def load(path: Path) -> optuna.Study:
    return latest_study(journal(path), "test_search.py::test_fit")


@pytest.fixture
def search(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_search=SEARCH.format(extra=""))
    return pytester


def test_a_search_collects_n_trials_selectable_by_index(search: pytest.Pytester) -> None:
    result = run(search, "--collect-only", "-q")
    result.stdout.fnmatch_lines([f"test_search.py::test_fit[[]trial:{k}[]]" for k in range(6)])
    result = run(search, "-s", "-k", "trial:3")
    result.assert_outcomes(passed=1, deselected=5)
    assert list(asked(result)) == ["trial:3"]


def test_asked_values_reach_the_function_the_table_and_the_json(
    search: pytest.Pytester,
) -> None:
    result = run(search, "-s", "--hparams-json=r.json")
    result.assert_outcomes(passed=6)
    given = asked(result)
    assert len(given) == 6
    for lr, units in given.values():
        assert 1e-4 <= lr <= 1.0 and units in (16, 32, 64)
    trials = trials_of(search.path / "r.json")
    assert {t["params"]: (t["hparams"]["lr"], t["hparams"]["units"]) for t in trials} == given
    best = trials[0]
    lr, units = given[best["params"]]
    result.stdout.fnmatch_lines(
        [
            "*lr units acc (max)*",
            f"* {lr!r} * {units} *passed",
            f"6 trials: 6 passed; best acc=* at [[]{best['params']}[]]",
        ]
    )


def test_tensorboard_shows_asked_values_and_the_declared_domains(
    search: pytest.Pytester, dashboard: Read
) -> None:
    result = run(search, "-s", "--hparams-logdir=logs")
    given = asked(result)
    board = dashboard(search.path / "logs")
    for trial, (lr, units) in given.items():
        group = board.group(f"[{trial}]")
        assert board.hparams(group) == {
            "lr": pytest.approx(lr),
            "units": units,
            "pytest.sweep": "test_fit in test_search.py",
        }
        assert board.status(group) == "STATUS_SUCCESS"
    infos = {h.name: h for h in board.experiment.hparam_infos}
    assert (infos["lr"].domain_interval.min_value, infos["lr"].domain_interval.max_value) == (
        1e-4,
        1.0,
    )
    assert [v.number_value for v in infos["units"].domain_discrete.values] == [16, 32, 64]


def test_later_trials_learn_from_earlier_ones(pytester: pytest.Pytester) -> None:
    # TPE after 5 random trials: its proposals close in on x = 0.8.
    pytester.makepyfile(
        test_learn="""
        from pytest_hparams import RealInterval, hparam_search
        import optuna

        @hparam_search(
            30, x=RealInterval(0.0, 1.0), metrics=["score"],
            sampler=optuna.samplers.TPESampler(n_startup_trials=5, seed=3),
        )
        def test_learn(x):
            print(f"X={x}")
            return {"score": -(x - 0.8) ** 2}
        """
    )
    result = run(pytester, "-s")
    result.assert_outcomes(passed=30)
    xs = [float(x) for x in re.findall(r"X=(\S+)", result.stdout.str())]
    first, last = xs[:5], xs[-10:]
    distance = [sum(abs(x - 0.8) for x in part) / len(part) for part in (first, last)]
    assert distance[1] < distance[0] / 2, distance


def test_a_rerun_and_lf_give_each_trial_the_hparams_it_was_given(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        test_search=SEARCH.format(extra="").replace(
            '    print("ASKED"',
            "    import os\n"
            '    assert not (os.environ.get("FAIL") and lr > 0.01)\n'
            '    print("ASKED"',
        )
    )
    monkeypatch.setenv("FAIL", "1")
    first = run(pytester, "-s", "--hparams-logdir=logs")
    outcomes = first.parseoutcomes()
    assert outcomes.get("failed") and outcomes.get("passed")
    monkeypatch.delenv("FAIL")
    rerun = run(pytester, "-s", "--hparams-logdir=logs", "--lf")
    again = asked(rerun)
    # Only the failed ones, with the values they failed with.
    assert len(again) == outcomes["failed"]
    assert all(lr > 0.01 for lr, _ in again.values())
    whole = asked(run(pytester, "-s", "--hparams-logdir=logs"))
    assert {k: whole[k] for k in again} == again
    studies = sweep_studies(journal(pytester.path / "logs"), "test_search.py::test_fit")
    assert [len(s.trials) for s in studies] == [6, outcomes["failed"], 6]  # one per run


def test_resume_continues_the_study_and_runs_no_finished_trial_again(
    search: pytest.Pytester,
) -> None:
    first = asked(run(search, "-s", "--hparams-logdir=logs", "-k", "trial:0 or trial:1"))
    assert set(first) == {"trial:0", "trial:1"}
    result = run(search, "-s", "--hparams-logdir=logs", "--hparams-resume", "--hparams-json=r.json")
    result.assert_outcomes(passed=4, skipped=2)
    assert set(asked(result)) == {f"trial:{k}" for k in range(2, 6)}
    trials = {t["params"]: t for t in trials_of(search.path / "r.json")}
    for k in ("trial:0", "trial:1"):
        assert trials[k]["outcome"] == "resumed"
        assert (trials[k]["hparams"]["lr"], trials[k]["hparams"]["units"]) == first[k]
    study = load(search.path / "logs")
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 6


def test_xdist_workers_share_one_study(search: pytest.Pytester) -> None:
    result = run(search, "-n", "2", "--hparams-logdir=logs", "--hparams-json=r.json")
    result.assert_outcomes(passed=6)
    study = load(search.path / "logs")
    nodeids = [t.user_attrs["pytest_nodeid"] for t in study.trials]
    assert sorted(nodeids) == sorted(f"test_search.py::test_fit[trial:{k}]" for k in range(6))
    by_id = {t.user_attrs["pytest_nodeid"]: t for t in study.trials}
    for trial in trials_of(search.path / "r.json"):
        asked_params = by_id[trial["nodeid"]].params
        assert trial["hparams"]["units"] == asked_params["units"]
        assert trial["hparams"]["lr"] == pytest.approx(asked_params["lr"], rel=1e-5)
        assert trial["metrics"]["acc"] == pytest.approx(by_id[trial["nodeid"]].value)


def test_a_search_prunes_with_a_pruner(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_search="""
        from pytest_hparams import RealInterval, hparam_search

        @hparam_search(12, x=RealInterval(0.0, 1.0), metrics=["acc"], pruner="median",
                       sampler="random")
        def test_fit(x, trial):
            for step in range(5):
                trial.log(step, acc=x)
            return {"acc": x}
        """
    )
    result = run(pytester, "--hparams-json=r.json")
    outcomes = result.parseoutcomes()
    assert outcomes.get("pruned", 0) > 0 and outcomes["passed"] + outcomes["pruned"] == 12
    trials = json.loads((pytester.path / "r.json").read_text())["sweeps"][0]["trials"]
    assert sum(t["outcome"] == "pruned" for t in trials) == outcomes["pruned"]


def test_gates_on_a_search_bounds_per_trial_and_best_against_the_baselines_best(
    search: pytest.Pytester,
) -> None:
    run(search, "--hparams-logdir=logs", "--hparams-save-baseline=base.json").assert_outcomes(
        passed=6
    )
    each = run(search, "--hparams-baseline=base.json")
    assert each.ret == pytest.ExitCode.OK
    each.stdout.fnmatch_lines(
        [
            "*test_search.py::test_fit: @hparam_search asks each trial's hparams, so the "
            "baseline's entries per trial do not apply; gate it with --hparams-gate best"
        ]
    )
    # Nor are they counted or listed as not run: only the note speaks of them.
    each.stdout.no_fnmatch_line("*baseline: *")
    part = run(search, "--hparams-baseline=base.json", "-k", "trial:0")
    part.stdout.no_fnmatch_line("*not run*")
    # The same study gives the same values: the best equals the baseline's best.
    best = run(
        search, "--hparams-logdir=logs", "--hparams-baseline=base.json", "--hparams-gate=best"
    )
    assert best.ret == pytest.ExitCode.OK
    # A search that finds less than the baseline's best fails the run.
    search.makepyfile(test_search=SEARCH.format(extra="").replace("acc}", "acc - 0.5}"))
    worse = run(search, "--hparams-baseline=base.json", "--hparams-gate=best")
    assert worse.ret == pytest.ExitCode.TESTS_FAILED
    worse.stdout.fnmatch_lines(["*test_search.py::test_fit: best *against the baseline's best*"])
    bounded = SEARCH.format(extra="").replace('metrics=["acc"]', 'metrics=[Metric("acc", min=0.9)]')
    search.makepyfile(test_search=bounded.replace("import LogUniform", "import LogUniform, Metric"))
    result = run(search, "--hparams-json=r.json")
    failed = {t["params"] for t in trials_of(search.path / "r.json") if t["outcome"] == "failed"}
    low = {t["params"] for t in trials_of(search.path / "r.json") if t["metrics"]["acc"] < 0.9}
    assert failed == low and result.parseoutcomes().get("failed", 0) == len(low)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            "6, x=[1, 2], metrics=['a'], sampler='grid'",
            "sampler must be one of tpe, random, cmaes, gp*",
        ),
        ("6, x=[1, 2]", "@hparam_search needs metrics=[[]...[]]: the sampler maximizes the first*"),
        ("0, x=[1, 2], metrics=['a']", "@hparam_search needs a number of trials >= 1 (got 0)"),
        ("6, metrics=['a']", "@hparam_search needs at least one hparam*"),
    ],
)
def test_a_misused_search_is_a_collection_error(
    pytester: pytest.Pytester, arguments: str, message: str
) -> None:
    pytester.makepyfile(
        test_bad=f"""
        from pytest_hparams import hparam_search

        @hparam_search({arguments})
        def test_x(x=None):
            pass
        """
    )
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*In test_bad.py::test_x: {message}"])


def test_a_search_without_optuna_or_its_sampler_is_a_usage_error(
    search: pytest.Pytester,
) -> None:
    search.makeconftest("import sys\nsys.modules['optuna'] = None  # as if not installed\n")
    result = run(search)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: @hparam_search needs Optuna; install it with: "
            "pip install 'pytest-hparams[[]optuna[]]'"
        ]
    )
    search.makeconftest("")
    search.makepyfile(test_search=SEARCH.format(extra="sampler='gp'"))
    result = run(search)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: @hparam_search(sampler='gp') needs torch*"])


@pytest.mark.parametrize("sampler", ["random", "cmaes"])
def test_the_named_samplers_run(search: pytest.Pytester, sampler: str) -> None:
    search.makepyfile(test_search=SEARCH.format(extra=f"sampler={sampler!r}"))
    result = run(search, "-s", "-W", "error::pytest_hparams.HParamsWarning")
    result.assert_outcomes(passed=6)
    assert len(set(asked(result).values())) > 1


def test_an_edited_choice_or_set_on_a_searched_hparam_needs_a_new_study(
    search: pytest.Pytester,
) -> None:
    run(search, "--hparams-logdir=logs", "--hparams-study=s").assert_outcomes(passed=6)
    search.makepyfile(test_search=SEARCH.format(extra="").replace("[16, 32, 64]", "[16, 32]"))
    result = run(search, "--hparams-logdir=logs", "--hparams-study=s")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: the Optuna study 'test_search.py::test_fit @ s' in * holds 'units' as "
            "CategoricalDistribution(choices=(16, 32, 64)), where the sweep declares "
            "CategoricalDistribution(choices=(16, 32)), and a study cannot change it "
            "(--hparams-set on a searched hparam does); name another study with --hparams-study, *"
        ]
    )
    search.makepyfile(test_search=SEARCH.format(extra=""))
    result = run(search, "--hparams-logdir=logs", "--hparams-study=s", "--hparams-set", "lr=0.01")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: * holds 'lr' as FloatDistribution(*"])
    # Nothing was asked of the study by the refused runs.
    assert len(load(search.path / "logs").trials) == 6
    # A range may change: the study goes on.
    search.makepyfile(test_search=SEARCH.format(extra="").replace("1e-4, 1.0", "1e-3, 1.0"))
    run(search, "--hparams-logdir=logs", "--hparams-study=s").assert_outcomes(passed=6)


def test_a_flipped_goal_needs_a_new_study(search: pytest.Pytester) -> None:
    run(search, "--hparams-logdir=logs", "--hparams-study=s").assert_outcomes(passed=6)
    flipped = SEARCH.format(extra="").replace(
        'metrics=["acc"]', 'metrics=[Metric("acc", goal="min")]'
    )
    search.makepyfile(test_search=flipped.replace("import LogUniform", "import LogUniform, Metric"))
    result = run(search, "--hparams-logdir=logs", "--hparams-study=s")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: the Optuna study 'test_search.py::test_fit @ s' in * maximizes 'acc', "
            "which the sweep now declares with goal='min'; name another study *"
        ]
    )


def test_a_trial_resumed_as_pruned_keeps_its_hparams_and_last_value(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_search="""
        from pytest_hparams import RealInterval, hparam_search

        @hparam_search(12, x=RealInterval(0.0, 1.0), metrics=["acc"], pruner="median",
                       sampler="random")
        def test_fit(x, trial):
            for step in range(3):
                trial.log(step, acc=x)
            return {"acc": x}
        """
    )
    run(pytester, "--hparams-logdir=logs", "--hparams-json=first.json")
    first = {t["params"]: t for t in trials_of(pytester.path / "first.json")}
    pruned = {k for k, t in first.items() if t["outcome"] == "pruned"}
    assert pruned
    run(pytester, "--hparams-logdir=logs", "--hparams-resume", "--hparams-json=again.json")
    again = {t["params"]: t for t in trials_of(pytester.path / "again.json")}
    for k in pruned:
        assert again[k]["outcome"] == "pruned"
        assert again[k]["hparams"] == first[k]["hparams"]
        assert again[k]["metrics"] == first[k]["metrics"]


@pytest.mark.parametrize("option", ["--setup-only", "--setup-plan"])
def test_a_run_that_runs_no_test_body_asks_the_study_nothing_and_leaves_no_study(
    search: pytest.Pytester, option: str
) -> None:
    run(search, "--hparams-logdir=logs", option).assert_outcomes()
    assert not (search.path / "logs" / ".pytest-hparams-optuna.journal").exists()
    run(search, "--hparams-logdir=logs", "-k", "trial:0").assert_outcomes(passed=1)
    study = load(search.path / "logs")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE]


def test_collect_only_lists_the_trials_and_leaves_no_study(search: pytest.Pytester) -> None:
    # Editors list the tests with --collect-only whenever a file changes.
    for resume in ((), ("--hparams-resume",)):
        result = run(search, "--hparams-logdir=logs", "--collect-only", "-q", *resume)
        result.stdout.fnmatch_lines(["test_search.py::test_fit[[]trial:5[]]", "6 tests collected*"])
        assert not (search.path / "logs" / ".pytest-hparams-optuna.journal").exists()
    run(search, "--hparams-logdir=logs").assert_outcomes(passed=6)
    assert len(load(search.path / "logs").trials) == 6
