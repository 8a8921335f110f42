"""Pruning on Optuna's pruners: a pruned trial is its own outcome in pytest,
the table, the reports and TensorBoard, and its sweep's study is shared."""

from __future__ import annotations

import json
import sqlite3
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from conftest import Dashboard, latest_study, sweep_studies

Read = Callable[[Path], Dashboard]

# Later trials are worse: the median pruner, having seen the first five
# curves, stops the last three at their first report.
CURVES = """
from pytest_hparams import hparam_grid

@hparam_grid(lr=[0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1], pruner={pruner!r}, metrics=["acc"])
def test_train(lr, trial):
    acc = 0.0
    for step in range(10):
        acc = lr * (1 - 0.5 ** (step + 1))
        trial.log(step, acc=acc)
    return {{"acc": acc}}
"""
PRUNED = ["lr:0.3", "lr:0.2", "lr:0.1"]


@pytest.fixture
def curves(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_curves=CURVES.format(pruner="median"))
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:randomly", *args)


def test_a_pruned_trial_is_counted_apart_and_the_run_passes(curves: pytest.Pytester) -> None:
    result = run(curves, "--hparams-logdir=logs", "--hparams-json=r.json", "--junitxml=j.xml")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "test_curves.py .....ppp*",
            "  0.1 * 0.05 * pruned at 0",
            "8 trials: 5 passed, 3 pruned; best acc=0.7992 at [[]lr:0.8[]]",
            "*= 5 passed, 3 pruned in *",
        ]
    )
    trials = json.loads((curves.path / "r.json").read_text())["sweeps"][0]["trials"]
    pruned = {t["params"]: t["pruned_at"] for t in trials if t["outcome"] == "pruned"}
    assert pruned == dict.fromkeys(PRUNED, 0)
    cases = {c.get("name"): c for c in ET.parse(curves.path / "j.xml").getroot().iter("testcase")}
    skipped = cases["test_train[lr:0.1]"].find("skipped")
    assert skipped is not None and skipped.get("message") == "pruned at step 0"


def test_tensorboard_shows_a_pruned_trials_curve_and_tells_its_session_apart(
    curves: pytest.Pytester, dashboard: Read
) -> None:
    run(curves, "--hparams-logdir=logs")
    board = dashboard(curves.path / "logs")
    statuses = {g.name.split("[")[-1].rstrip("]"): board.status(g) for g in board.groups}
    assert {k for k, v in statuses.items() if v == "STATUS_FAILURE"} == set(PRUNED)
    assert {k for k, v in statuses.items() if v == "STATUS_SUCCESS"} == {
        f"lr:{x}" for x in ("0.8", "0.7", "0.6", "0.5", "0.4")
    }
    pruned = board.group("[lr:0.1]")
    # Its value where it stopped, and the column that tells it from a failure.
    assert board.metrics(pruned) == {"acc": pytest.approx(0.05), "pytest.pruned": 1.0}
    assert board.metrics(board.group("[lr:0.8]"))["pytest.pruned"] == 0.0


def test_lf_does_not_rerun_a_pruned_trial_and_resume_keeps_it_pruned(
    pytester: pytest.Pytester,
) -> None:
    flaky = CURVES.format(pruner="median").replace(
        "    return {", "    assert lr != 0.7 or os.path.exists('fixed')\n    return {"
    )
    pytester.makepyfile(test_curves="import os\n" + flaky)
    first = run(pytester, "--hparams-logdir=logs")
    first.stdout.fnmatch_lines(["*1 failed, 5 passed, 2 pruned*"])
    pytester.path.joinpath("fixed").touch()
    again = run(pytester, "--hparams-logdir=logs", "--lf")
    again.stdout.fnmatch_lines(  # the failure only, not the pruned trials
        ["collected 1 item", "run-last-failure: rerun previous 1 failure", "*= 1 passed in *"]
    )
    resumed = run(pytester, "--hparams-logdir=logs", "--hparams-resume")
    resumed.stdout.fnmatch_lines(
        [
            "test_curves.py sssssspp*",
            "8 trials: 6 resumed, 2 pruned*",
            "*= 6 skipped, 2 pruned in *",
        ]
    )


def test_a_primary_metric_reported_but_not_returned_ranks_the_passed_trials(
    pytester: pytest.Pytester,
) -> None:
    # As a Keras validation metric is, through trial.keras_callbacks(): the
    # pruner and TensorBoard have its last value, and so must the table and
    # the report, for the trials that ran to the end as for the pruned ones.
    reported = CURVES.format(pruner="median").replace('return {"acc": acc}', "return None")
    pytester.makepyfile(test_curves=reported)
    for args in [(), ("--hparams-no-prune",)]:
        result = run(pytester, "--hparams-json=r.json", *args)
        assert result.ret == pytest.ExitCode.OK
        ran = "8 passed" if args else "5 passed, 3 pruned"
        result.stdout.fnmatch_lines(
            [
                "* acc (max) *",
                "[*] 0.8 * 0.7992 *",
                f"8 trials: {ran}; best acc=0.7992 at [[]lr:0.8[]]",
            ]
        )
        trials = json.loads((pytester.path / "r.json").read_text())["sweeps"][0]["trials"]
        assert trials[0]["metrics"] == {"acc": pytest.approx(0.8 * (1 - 0.5**10))}


def test_no_prune_runs_every_trial_to_the_end(curves: pytest.Pytester) -> None:
    run(curves, "--hparams-logdir=logs").assert_outcomes(passed=5)
    result = run(curves, "--hparams-logdir=logs", "--hparams-no-prune")
    result.assert_outcomes(passed=8)


def test_the_pruner_option_prunes_a_sweep_that_sets_none(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_curves=CURVES.format(pruner=None))
    run(pytester).assert_outcomes(passed=8)
    result = run(pytester, "--hparams-pruner=median")
    result.stdout.fnmatch_lines(["*5 passed, 3 pruned*"])


def test_a_baseline_entry_whose_trial_is_pruned_is_reported_so_not_as_a_regression(
    curves: pytest.Pytester,
) -> None:
    run(curves, "--hparams-no-prune", "--hparams-save-baseline=b.json").assert_outcomes(passed=8)
    result = run(curves, "--hparams-baseline=b.json", "--hparams-prune-baseline")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["baseline: 0 regressed, 0 improved, 0 new, 5 ok, 3 pruned"])


def test_xdist_workers_share_one_study_in_the_logdir(curves: pytest.Pytester) -> None:
    result = run(curves, "-n", "2", "--hparams-logdir=logs", "--hparams-json=r.json")
    assert result.ret == pytest.ExitCode.OK
    trials = json.loads((curves.path / "r.json").read_text())["sweeps"][0]["trials"]
    outcomes = {t["params"]: t["outcome"] for t in trials}
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(
            str(curves.path / "logs" / ".pytest-hparams-optuna.journal")
        )
    )
    study = latest_study(storage, "test_curves.py::test_train")
    states = {t.user_attrs["pytest_nodeid"].split("[")[1][:-1]: t.state.name for t in study.trials}
    assert states == {p: "PRUNED" if o == "pruned" else "COMPLETE" for p, o in outcomes.items()}
    assert len(study.trials) == 8


def test_a_storage_url_keeps_the_study(curves: pytest.Pytester) -> None:
    run(curves, "--hparams-storage=sqlite:///study.db").stdout.fnmatch_lines(
        ["*5 passed, 3 pruned*"]
    )
    with sqlite3.connect(curves.path / "study.db") as db:
        (count,) = db.execute("select count(*) from trials").fetchone()
    assert count == 8


def test_a_bad_pruner_is_a_collection_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_curves=CURVES.format(pruner="fast"))
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*In test_curves.py::test_train: pruner must be one of median, halving, hyperband*"]
    )


def test_pruning_without_optuna_is_a_usage_error_naming_the_extra(
    curves: pytest.Pytester,
) -> None:
    curves.makeconftest("import sys\nsys.modules['optuna'] = None  # as if not installed\n")
    result = run(curves)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: pruning needs Optuna; install it with: pip install 'pytest-hparams[[]optuna[]]'*"]
    )


def test_pruning_into_a_remote_logdir_needs_a_storage_url(curves: pytest.Pytester) -> None:
    result = run(curves, "--hparams-logdir=memory://bucket/logs")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: pruning with a remote logdir*--hparams-storage=URL*"])


def test_a_pruned_repeat_counts_as_pruned_in_its_combinations_summary(
    pytester: pytest.Pytester,
) -> None:
    # Each repeat is its own Optuna trial: lr 0.6's second repeat and both
    # of lr 0.1's fall behind the median of the curves before them.
    pytester.makepyfile(
        test_repeats="""
        from pytest_hparams import hparam_grid

        @hparam_grid(lr=[0.8, 0.7, 0.6, 0.1], pruner="median", metrics=["acc"], repeats=2)
        def test_train(lr, trial):
            for step in range(5):
                acc = lr * (1 - 0.5 ** (step + 1)) + trial.repeat * 0.01
                trial.log(step, acc=acc)
            return {"acc": acc}
        """
    )
    result = run(pytester, "--hparams-json=r.json")
    result.stdout.fnmatch_lines(
        [
            "* 0.6 0.5812 (n=1) * 1/2 passed, 1 pruned",
            "* 0.1 - * 2 pruned",
            "4 combinations, 8 trials: 5 passed, 3 pruned; *",
            "*= 5 passed, 3 pruned in *",
        ]
    )
    combos = json.loads((pytester.path / "r.json").read_text())["sweeps"][0]["combinations"]
    summary = {c["hparams"]["lr"]: (c["outcomes"], c["metrics"]["acc"]["n"]) for c in combos}
    assert summary == {
        0.8: ("2/2 passed", 2),
        0.7: ("2/2 passed", 2),
        0.6: ("1/2 passed, 1 pruned", 1),
        0.1: ("2 pruned", 0),
    }


def test_a_torn_journal_line_is_cut_and_a_corrupt_journal_is_a_usage_error(
    curves: pytest.Pytester,
) -> None:
    run(curves, "--hparams-logdir=logs").stdout.fnmatch_lines(["*= 5 passed, 3 pruned in *"])
    journal = curves.path / "logs" / ".pytest-hparams-optuna.journal"
    whole = journal.read_bytes()
    # A writer killed mid-append leaves its record without its newline.
    journal.write_bytes(whole + b'{"op_code": 4, "worker_id": "x", "tri')
    result = run(curves, "--hparams-logdir=logs")
    assert result.ret == pytest.ExitCode.OK
    assert journal.read_bytes().startswith(whole)
    studies = sweep_studies(
        optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal))),
        "test_curves.py::test_train",
    )
    assert [len(study.trials) for study in studies] == [8, 8]
    # A line no reader can parse, with records after it: refused before any trial runs.
    journal.write_bytes(whole + b"garbage\n" + whole.splitlines(keepends=True)[-1])
    result = run(curves, "--hparams-logdir=logs")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: the Optuna study of test_curves.py::test_train cannot be opened from "
            f"{journal} (JSONDecodeError: *); move it aside to start the study over"
        ]
    )


def test_a_journal_lock_a_killed_run_left_is_dropped_when_no_other_run_is_live(
    curves: pytest.Pytester,
) -> None:
    run(curves, "--hparams-logdir=logs").assert_outcomes(passed=5, skipped=0)
    journal = curves.path / "logs" / ".pytest-hparams-optuna.journal"
    lock = journal.with_name(journal.name + ".lock")
    lock.symlink_to(journal)  # as Optuna's JournalFileSymlinkLock leaves it, killed mid-append
    again = run(curves, "--hparams-logdir=logs")
    again.stdout.fnmatch_lines(["*= 5 passed, 3 pruned in *"])
    assert not lock.is_symlink()
    # Optuna would wait out its grace period, 30 s, before breaking the lock.
    assert again.duration < 20, again.duration


def test_an_unreachable_storage_is_a_usage_error_that_hides_the_password(
    curves: pytest.Pytester,
) -> None:
    result = run(curves, "--hparams-storage=sqlite:////nonexistent/dir/study.db?x=1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: the Optuna study of *check --hparams-storage*"])
    result = run(curves, "--hparams-storage=postgresql://user:s3cret@127.0.0.1:1/db")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "s3cret" not in result.stderr.str()
    result.stderr.fnmatch_lines(["*postgresql://user:***@127.0.0.1:1/db*"])


def test_a_sweep_that_neither_prunes_nor_searches_loads_no_optuna_code(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_plain="""
        import sys
        from pytest_hparams import hparam_grid

        @hparam_grid(lr=[0.1, 0.2], metrics=["acc"])
        def test_train(lr, trial):
            trial.log(0, acc=lr)
            return {"acc": lr}

        def test_after():
            loaded = [m for m in sys.modules if m.split(".")[0] in ("optuna", "sqlalchemy")]
            assert loaded == []
        """
    )
    run(pytester, "--hparams-logdir=logs").assert_outcomes(passed=3)


def test_resume_after_a_run_without_pruning_keeps_the_trials_it_finished(
    curves: pytest.Pytester,
) -> None:
    run(curves, "--hparams-logdir=logs")  # lr 0.3, 0.2, 0.1 pruned
    run(curves, "--hparams-logdir=logs", "--hparams-no-prune").assert_outcomes(passed=8)
    result = run(curves, "--hparams-logdir=logs", "--hparams-resume", "--hparams-json=r.json")
    trials = json.loads((curves.path / "r.json").read_text())["sweeps"][0]["trials"]
    assert {t["outcome"] for t in trials} == {"resumed"}
    result.stdout.fnmatch_lines(["*8 trials: 8 resumed*"])


def test_a_pruner_takes_the_steps_trial_log_takes(pytester: pytest.Pytester) -> None:
    # Optuna refuses a negative step and warns of a step reported twice;
    # trial.log takes both, with a pruner as without one.
    pytester.makepyfile(
        test_steps="""
        from pytest_hparams import hparam_grid

        @hparam_grid(lr=[0.1, 0.2], pruner="median", metrics=["acc"])
        def test_train(lr, trial):
            trial.log(-1, acc=lr)
            trial.log(0, acc=lr)
            trial.log(0, acc=lr)
            return {"acc": lr}
        """
    )
    run(pytester, "-W", "error").assert_outcomes(passed=2)
