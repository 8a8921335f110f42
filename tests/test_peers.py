"""The pytest plugins users already have (pytest-randomly, pytest-rerunfailures,
pytest-repeat, pytest-xdist): whatever reorders, reruns, repeats or crashes
a trial, pytest, the table, the JSON report and the logdir keep one record
of it, with its final outcome."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree

import pytest
from conftest import (
    GRID,
    Dashboard,
    assert_agree,
    dashboard_statuses,
    json_outcomes,
)


def test_a_sweep_under_pytest_randomly_agrees_trial_by_trial(
    pytester: pytest.Pytester,
    dashboard: Callable[[Path], Dashboard],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PYTEST_ADDOPTS")
    pytester.makepyfile(test_grid=GRID.replace("return {", "assert num_units != 32\n    return {"))
    said = assert_agree(pytester, dashboard, "-p", "randomly", "--randomly-seed=7")
    assert list(said.values()).count("failed") == 4


def test_a_trial_rerun_by_pytest_rerunfailures_is_one_record_with_its_final_outcome(
    pytester: pytest.Pytester, dashboard: Callable[[Path], Dashboard]
) -> None:
    pytester.makepyfile(
        test_flaky="""
        from pathlib import Path
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1, 2])
        def test_flaky(a, trial):
            tries = Path(f"tries-{a}")
            tries.write_text(tries.read_text() + "x" if tries.exists() else "x")
            trial.log(len(tries.read_text()), score=a)
            assert a == 1 or len(tries.read_text()) == 3, "flaky"
            return {"score": a}
        """
    )
    said = assert_agree(pytester, dashboard, "-p", "rerunfailures", "--reruns", "2")
    assert said == {
        "test_flaky.py::test_flaky[a:1]": "passed",
        "test_flaky.py::test_flaky[a:2]": "passed",
    }
    for tries in pytester.path.glob("tries-*"):
        tries.unlink()
    result = pytester.runpytest("-p", "rerunfailures", "--reruns", "2")
    result.stdout.fnmatch_lines(["2 trials: 2 passed*", "*2 passed, 2 rerun*"])
    board = dashboard(pytester.path / "logs")
    assert Dashboard.metrics(board.group("[a:2]"))["score"] == 2


def test_a_worker_that_dies_under_pytest_rerunfailures_leaves_its_trial_in_every_account(
    pytester: pytest.Pytester, dashboard: Callable[[Path], Dashboard]
) -> None:
    # pytest-rerunfailures sends a trial's setup report only after its
    # teardown, so the controller hears nothing of a trial whose worker dies.
    pytester.makepyfile(
        test_die="""
        import os
        from pathlib import Path
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1, 2, 3], metrics=["score"])
        def test_die(a, trial):
            tries = Path(f"tries-{a}")
            tries.write_text(tries.read_text() + "x" if tries.exists() else "x")
            trial.log(0, score=0.0)
            if a == 2 or (a == 3 and len(tries.read_text()) == 1):
                os._exit(1)  # a=2 in every attempt, a=3 in its first only
            return {"score": a}
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "rerunfailures", "--reruns", "1", "-n", "2", "-p", "no:randomly",
        "--hparams-logdir=logs", "--hparams-json=report.json",
    )  # fmt: skip
    result.stdout.fnmatch_lines(["*1 failed, 2 passed, 2 rerun*"])
    result.stdout.fnmatch_lines(["  2 * 0 * crashed", "3 trials: 2 passed, 1 crashed*"])
    assert json_outcomes(pytester.path / "report.json") == {
        "test_die.py::test_die[a:1]": "passed",
        "test_die.py::test_die[a:2]": "crashed",
        "test_die.py::test_die[a:3]": "passed",
    }
    assert dashboard_statuses(dashboard, pytester.path / "logs") == {
        "test_die.py::test_die[a:1]": "STATUS_SUCCESS",
        "test_die.py::test_die[a:2]": "STATUS_FAILURE",
        "test_die.py::test_die[a:3]": "STATUS_SUCCESS",
    }


# Which worker takes a rerun, or whether one is left to, is xdist's timing:
# on a loaded machine the inner run can end otherwise, so the test may retry.
@pytest.mark.flaky(reruns=2)
def test_a_crashed_trial_whose_rerun_never_runs_is_crashed_and_fails_the_run(
    pytester: pytest.Pytester, dashboard: Callable[[Path], Dashboard]
) -> None:
    # pytest-rerunfailures puts the trial back in the queue; with worker
    # restarts spent, xdist never runs it, and pytest alone would exit 0.
    pytester.makepyfile(
        test_die="""
        import os
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1, 2, 3, 4, 5, 6])
        def test_die(a, trial):
            trial.log(0, score=0.0)
            if a == 3:
                os._exit(1)
            return {"score": a}
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "rerunfailures", "--reruns", "1", "-n", "2", "--max-worker-restart", "0",
        "-p", "no:randomly", "--hparams-logdir=logs", "--hparams-json=report.json",
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["  3 * 0 * crashed", "test_die.py::test_die[[]a:3[]]: its worker died, and the rerun *"]
    )
    recorded = json_outcomes(pytester.path / "report.json")
    assert recorded["test_die.py::test_die[a:3]"] == "crashed"
    statuses = dashboard_statuses(dashboard, pytester.path / "logs")
    assert statuses["test_die.py::test_die[a:3]"] == "STATUS_FAILURE"
    assert {n for n, o in recorded.items() if o == "passed"} == {
        n for n, s in statuses.items() if s == "STATUS_SUCCESS"
    }


def test_a_crashed_search_trial_under_pytest_rerunfailures_keeps_the_values_it_was_asked(
    pytester: pytest.Pytester, dashboard: Callable[[Path], Dashboard]
) -> None:
    pytester.makepyfile(
        test_ask="""
        import os
        from pytest_hparams import hparam_search

        @hparam_search(3, sampler="random", x=[1, 2, 3, 4, 5], metrics=["acc"])
        def test_ask(x, trial):
            trial.log(0, acc=0.0)
            if trial.id.endswith("[trial:1]"):
                os._exit(1)
            return {"acc": x}
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "rerunfailures", "--reruns", "1", "-n", "2", "-p", "no:randomly",
        "--hparams-logdir=logs", "--hparams-json=report.json",
    )  # fmt: skip
    result.stdout.fnmatch_lines(["*1 failed, 2 passed, 1 rerun*"])
    data = json.loads((pytester.path / "report.json").read_text())
    (crashed,) = [t for t in data["sweeps"][0]["trials"] if t["outcome"] == "crashed"]
    assert crashed["nodeid"] == "test_ask.py::test_ask[trial:1]"
    # What its worker recorded when it began, as TensorBoard reads it.
    group = dashboard(pytester.path / "logs").group("[trial:1]")
    assert Dashboard.status(group) == "STATUS_FAILURE"
    assert crashed["hparams"] == {"x": Dashboard.hparams(group)["x"]} != {}


# Which worker takes a rerun, or whether one is left to, is xdist's timing:
# on a loaded machine the inner run can end otherwise, so the test may retry.
@pytest.mark.flaky(reruns=2)
def test_a_crashed_trial_no_living_worker_could_name_is_said_to_be_missing(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_die="""
        import os
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1, 2])
        def test_die(a):
            os._exit(1)
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "rerunfailures", "--reruns", "1", "-n", "1", "--max-worker-restart", "1",
        "-p", "no:randomly", "--hparams-json=report.json",
    )  # fmt: skip
    result.stdout.fnmatch_lines(["*1 failed, 1 rerun*"])
    result.stdout.fnmatch_lines(["test_die.py::test_die[[]a:1[]]: its worker died; not in *"])


def test_a_sweep_repeated_by_pytest_repeat_records_each_repetition(
    pytester: pytest.Pytester, dashboard: Callable[[Path], Dashboard]
) -> None:
    pytester.makepyfile(test_grid=GRID)
    said = assert_agree(pytester, dashboard, "-p", "repeat", "--count", "2")
    assert len(said) == 24


def test_shards_partition_the_sweep_whatever_order_pytest_randomly_gives_each_job(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTEST_ADDOPTS")
    pytester.makepyfile(
        test_s="""
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1, 2, 3], b=["x", "y", "z"])
        def test_s(a, b):
            return {"score": a}
        """
    )
    reports = []
    for k, seed in ((1, 11), (2, 22), (3, 33)):
        name = f"shard{k}.json"
        pytester.runpytest(
            "-p",
            "randomly",
            f"--randomly-seed={seed}",
            "--hparams-shard",
            f"{k}/3",
            f"--hparams-json={name}",
        ).assert_outcomes(passed=3)
        reports.append(name)
    merged = pytester.run(
        sys.executable, "-m", "pytest_hparams", "merge", *reports, "-o", "all.json"
    )
    assert merged.ret == 0
    assert len(json_outcomes(pytester.path / "all.json")) == 9


def test_a_rerun_trial_carries_only_its_last_metrics_in_junit_xml(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_r="""
        from pathlib import Path
        from pytest_hparams import hparam_grid, Metric

        @hparam_grid(a=[1], metrics=[Metric("score", min=0.5)])
        def test_r(a):
            first = not Path("ran").exists()
            Path("ran").write_text("x")
            return {"score": 0.1 if first else 0.9}
        """
    )
    result = pytester.runpytest("-p", "rerunfailures", "--reruns", "1", "--junitxml", "j.xml")
    result.assert_outcomes(passed=1)
    # JUnit XML has a testcase per attempt; the passing one carries its own metric only.
    cases = ElementTree.parse(pytester.path / "j.xml").getroot().iter("testcase")
    last = list(cases)[-1]
    props = [(p.get("name"), p.get("value")) for p in last.iter("property")]
    assert props == [("hparam.a", "1"), ("metric.score", "0.9")]
