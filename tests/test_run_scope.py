"""No run weakens another: a run prunes and searches against its own trials
only, unless it names a study or resumes; a baseline's trials run to the end
under the gate; a study that changed its metric is refused before any trial."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import optuna
import pytest
from conftest import sweep_studies

# As in test_pruning.py: the median pruner stops the last three.
CURVES = """
from pytest_hparams import hparam_grid

@hparam_grid(lr=[0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1], pruner="median",
             metrics=[{metric!r}])
def test_train(lr, trial):
    value = 0.0
    for step in range(10):
        value = lr * (1 - 0.5 ** (step + 1))
        trial.log(step, {metric}=value)
    return {{{metric!r}: value}}
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:randomly", "--hparams-logdir=logs", *args)


def journal(path: Path) -> optuna.storages.JournalStorage:
    return optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(path / ".pytest-hparams-optuna.journal"))
    )


def outcomes(path: Path) -> dict[str, str]:
    trials = json.loads(path.read_text())["sweeps"][0]["trials"]
    return {t["params"]: t["outcome"] for t in trials}


def test_a_second_run_into_the_same_logdir_prunes_as_the_first(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_curves=CURVES.format(metric="acc"))
    run(pytester, "--hparams-json=1.json").stdout.fnmatch_lines(["*5 passed, 3 pruned*"])
    run(pytester, "--hparams-json=2.json").stdout.fnmatch_lines(["*5 passed, 3 pruned*"])
    assert outcomes(pytester.path / "1.json") == outcomes(pytester.path / "2.json")
    studies = sweep_studies(journal(pytester.path / "logs"), "test_curves.py::test_train")
    assert [len(s.trials) for s in studies] == [8, 8]  # one study per run


def test_runs_that_name_one_study_prune_against_each_other(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_curves=CURVES.format(metric="acc"))
    run(pytester, "--hparams-study=nightly").stdout.fnmatch_lines(["*5 passed, 3 pruned*"])
    again = run(pytester, "--hparams-study=nightly")
    again.stdout.fnmatch_lines(["*2 passed, 6 pruned*"])  # against 13 curves, not 5
    (study,) = sweep_studies(journal(pytester.path / "logs"), "test_curves.py::test_train")
    assert study.study_name == "test_curves.py::test_train @ nightly"


def test_a_renamed_primary_metric_is_refused_before_any_trial(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_curves=CURVES.format(metric="acc"))
    run(pytester, "--hparams-study=s").assert_outcomes(passed=5)
    pytester.makepyfile(test_curves=CURVES.format(metric="accuracy"))
    result = run(pytester, "--hparams-study=s")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: the Optuna study 'test_curves.py::test_train @ s' in * ranks trials by "
            "'acc', and the sweep's primary metric is now 'accuracy'; name another study "
            "with --hparams-study, or undo the change"
        ]
    )


def test_each_parametrize_case_has_its_own_study(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_cases="""
        import pytest
        from pytest_hparams import hparam_grid

        @pytest.mark.parametrize("data", ["easy", "hard"])
        @hparam_grid(lr=[0.8, 0.6, 0.4, 0.2, 0.1, 0.05], pruner="median", metrics=["acc"])
        def test_train(lr, data, trial):
            scale = 1.0 if data == "easy" else 0.1
            for step in range(5):
                trial.log(step, acc=lr * scale)
            return {"acc": lr * scale}
        """
    )
    run(pytester, "--hparams-study=s").assert_outcomes(passed=10, skipped=0)
    summaries = optuna.get_all_study_summaries(journal(pytester.path / "logs"))
    assert sorted((s.study_name, s.n_trials) for s in summaries) == [
        ("test_cases.py::test_train[data=easy] @ s", 6),
        ("test_cases.py::test_train[data=hard] @ s", 6),
    ]


def test_trials_with_a_baseline_entry_run_to_the_end_under_the_gate(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_curves=CURVES.format(metric="acc"))
    run(pytester, "--hparams-no-prune", "--hparams-save-baseline=b.json").assert_outcomes(passed=8)
    result = run(pytester, "--hparams-baseline=b.json")
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines(
        [
            "baseline: 0 regressed, 0 improved, 0 new, 8 ok",
            "baseline: 8 trials with a baseline entry ran unpruned, so the gate judges every "
            "entry (--hparams-prune-baseline lets the pruner stop them)",
        ]
    )
    pruned = run(pytester, "--hparams-baseline=b.json", "--hparams-prune-baseline")
    pruned.stdout.fnmatch_lines(["*5 passed, 3 pruned*"])


def test_a_pruned_sweep_that_never_reports_its_metric_is_warned_once(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_curves=CURVES.format(metric="acc").replace(
            "trial.log(step, acc=", "trial.log(step, a="
        )
    )
    result = run(pytester)
    result.assert_outcomes(passed=8, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*test_curves.py::test_train prunes on 'acc', but its trials never reported it "
            "(trial.log logged: a); nothing can be pruned*"
        ]
    )


def test_a_relative_sqlite_storage_in_the_ini_is_the_ini_folder_s(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\nhparams_logdir = logs\nhparams_storage = sqlite:///study.db\n")
    pytester.mkdir("sub").joinpath("test_curves.py").write_text(CURVES.format(metric="acc"))
    pytester.runpytest_subprocess("-p", "no:randomly", "sub").assert_outcomes(passed=5)
    assert (pytester.path / "study.db").exists()
    monkeypatch.chdir(pytester.path / "sub")  # resumed from a subfolder: the same study
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--hparams-resume", ".")
    result.stdout.fnmatch_lines(["*5 resumed, 3 pruned*"])
    assert not (pytester.path / "sub" / "study.db").exists()


def test_only_best_on_a_search_trains_the_values_the_report_gave_its_best(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        test_search="""
        import os
        from pytest_hparams import RealInterval, hparam_search

        @hparam_search(6, x=RealInterval(0.0, 1.0), metrics=["acc"], sampler="random",
                       seed=int(os.environ["SEED"]))
        def test_fit(x):
            print("TRAINED", x)
            return {"acc": x}
        """
    )
    monkeypatch.setenv("SEED", "1")
    run(pytester, "--hparams-json=r.json").assert_outcomes(passed=6)
    (sweep,) = json.loads((pytester.path / "r.json").read_text())["sweeps"]
    best = sweep["trials"][0]["hparams"]["x"]
    monkeypatch.setenv("SEED", "2")  # another sampler: only the report's values are the best's
    result = pytester.runpytest_subprocess("-s", "--hparams-only-best=r.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*TRAINED {best}*"])


SLOW = """
import time
from pytest_hparams import hparam_grid

@hparam_grid(a=[1, 2, 3, 4, 5, 6], metrics=["m"])
def test_slow(a):
    time.sleep(0.4)
    return {"m": a}
"""


@pytest.mark.parametrize(
    ("shards", "warned"), [((), True), (("1/2", "2/2"), False)], ids=["unsharded", "sharded"]
)
def test_two_runs_at_once_into_one_logdir_are_told_to_shard(
    pytester: pytest.Pytester, shards: tuple[str, ...], warned: bool
) -> None:
    pytester.makepyfile(test_slow=SLOW)
    processes = []
    for i in range(2):
        shard = [f"--hparams-shard={shards[i]}"] if shards else []
        command = [sys.executable, "-m", "pytest", "-p", "no:randomly", "--hparams-logdir=logs"]
        with (pytester.path / f"out{i}").open("w") as out:
            processes.append(pytester.popen([*command, *shard], stdout=out, stderr=out))
    assert [p.wait(timeout=120) for p in processes] == [0, 0]
    said = [(pytester.path / f"out{i}").read_text() for i in range(2)]
    line = (
        "hparams: another pytest run recorded test_slow.py::test_slow into this logdir at the "
        "same time, and each ran every trial; split the trials between the runs with "
        "--hparams-shard=1/2 and --hparams-shard=2/2"
    )
    assert any(line in out for out in said) is warned, said
    assert not (pytester.path / "logs" / ".pytest-hparams-runs").exists()  # the last one out


def test_a_resumed_trial_s_metrics_leave_out_the_dashboard_s_pruned_column(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_curves=CURVES.format(metric="acc"))
    run(pytester).assert_outcomes(passed=5)
    run(pytester, "--hparams-resume", "--hparams-json=r.json").assert_outcomes(skipped=5)
    trials = json.loads((pytester.path / "r.json").read_text())["sweeps"][0]["trials"]
    assert all(set(t["metrics"]) == {"acc"} for t in trials), trials
