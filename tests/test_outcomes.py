"""One story per trial: for every way a trial can end, pytest, the table, the
JSON report, JUnit XML, TensorBoard (through its own hparams backend) and the
Optuna study (through Optuna) say the same. The mapping is the table in the
docs' "How a trial's outcome is told" page (docs/reference/outcomes.md)."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
from conftest import (
    Dashboard,
    dashboard_statuses,
    json_outcomes,
    latest_study,
    sweep_studies,
)

# pytester's in-process run inherits this suite's "error" filter; the user's
# default is what is under test here.
pytestmark = pytest.mark.filterwarnings("default")

SWEEP = """
import optuna
import pytest
from pytest_hparams import hparam_grid

CASES = {cases!r}

@pytest.fixture
def guard(request):
    case = request.node.callspec.params["story"]
    if case == "setup_error":
        raise RuntimeError("fixture setup")
    if case == "pruned_in_setup":  # a warm-up epoch, reported from a fixture
        trial = request.getfixturevalue("trial")
        trial.log(0, acc=0.1)
    yield
    if case in ("teardown_error", "pruned_teardown_error"):
        raise RuntimeError("fixture teardown")
    if case == "logged_in_teardown":  # a last evaluation, after the test returned
        request.getfixturevalue("trial").log(9, acc=0.1)
    if case == "teardown_skip":
        pytest.skip("no GPU to clean up")

@hparam_grid(story=CASES, metrics=["acc"], pruner=optuna.pruners.ThresholdPruner(lower=0.5))
def test_outcome(story, trial, guard):
    case = story
    low = case in ("pruned", "swallowed", "pruned_teardown_error")
    if case == "swallowed":
        try:
            trial.log(0, acc=0.1)
        except BaseException:
            pass
        return {{"acc": 0.1}}
    trial.log(0, acc=0.1 if low else 0.9)
    if case == "failed":
        assert False, "the model got worse"
    if case == "skipped":
        pytest.skip("no data today")
    if case == "xfailed":
        pytest.xfail("a known bug")
    if case == "optuna_prune":
        raise optuna.TrialPruned()
    if case == "nan":
        return {{"acc": float("nan")}}
    if case == "system_exit":  # argparse's way of refusing a flag
        raise SystemExit(2)
    return {{"acc": 0.9}}
"""

# case: (table/JSON outcome, JUnit verdict, TensorBoard status, study state, study's pytest_outcome)
EXPECTED: dict[str, tuple[str, str, str | None, str | None, str | None]] = {
    "passed": ("passed", "ok", "STATUS_SUCCESS", "COMPLETE", None),
    "failed": ("failed", "failure", "STATUS_FAILURE", "FAIL", "failed"),
    "setup_error": ("error", "error", "STATUS_FAILURE", None, None),
    "teardown_error": ("error", "error", "STATUS_FAILURE", "FAIL", "error"),
    "skipped": ("skipped", "skipped", None, "FAIL", "skipped"),
    "xfailed": ("xfailed", "skipped", "STATUS_FAILURE", "FAIL", "xfailed"),
    "pruned": ("pruned", "skipped", "STATUS_FAILURE", "PRUNED", None),
    "optuna_prune": ("pruned", "skipped", "STATUS_FAILURE", "PRUNED", None),
    "swallowed": ("pruned", "skipped", "STATUS_FAILURE", "PRUNED", None),
    "nan": ("failed", "failure", "STATUS_FAILURE", "FAIL", "failed"),
    "pruned_teardown_error": ("error", "error", "STATUS_FAILURE", "FAIL", "error"),
    "pruned_in_setup": ("pruned", "skipped", "STATUS_FAILURE", "PRUNED", None),
    "logged_in_teardown": ("passed", "ok", "STATUS_SUCCESS", "COMPLETE", None),
    "system_exit": ("failed", "failure", "STATUS_FAILURE", "FAIL", "failed"),
    "teardown_skip": ("skipped", "skipped", None, "FAIL", "skipped"),
}


def junit_verdicts(path: Path) -> dict[str, str]:
    """Each testcase's verdict in a JUnit XML file, by the case's hparam value."""
    out: dict[str, str] = {}
    for case in ET.parse(path).iter("testcase"):
        story = str(case.get("name")).split("story:")[1].rstrip("]")
        kinds = [c.tag for c in case if c.tag in ("failure", "error", "skipped")]
        # A teardown error after a passed call is the testcase's error.
        out[story] = "error" if "error" in kinds else (kinds or ["ok"])[0]
    return out


def journal(logdir: Path) -> optuna.storages.JournalStorage:
    return optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(logdir / ".pytest-hparams-optuna.journal"))
    )


def study_states(logdir: Path) -> dict[str, tuple[str, str | None]]:
    study = latest_study(journal(logdir), "test_story.py::test_outcome")
    out: dict[str, tuple[str, str | None]] = {}
    for t in study.get_trials(deepcopy=False):
        case = t.user_attrs["pytest_nodeid"].split("story:")[1].rstrip("]")
        out[case] = (t.state.name, t.user_attrs.get("pytest_outcome"))
    return out


@pytest.fixture
def outcomes(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_story=SWEEP.format(cases=list(EXPECTED)))
    return pytester


def test_every_place_tells_each_trial_the_same_story(
    outcomes: pytest.Pytester, dashboard: Callable[[Path], Any]
) -> None:
    result = outcomes.runpytest(
        "--hparams-logdir=logs", "--hparams-json=r.json", "--junitxml=junit.xml", "-rA"
    )
    # pytest: a teardown error adds an error to the passed or pruned call,
    # and a teardown skip a skip to the passed call.
    assert result.parseoutcomes() == {
        "passed": 4,
        "failed": 3,
        "errors": 3,
        "skipped": 2,
        "xfailed": 1,
        "pruned": 5,
        "warnings": 2,
    }
    result.stdout.fnmatch_lines(["*swallowed*caught the prune at*test_story.py:*"])
    trials = json.loads((outcomes.path / "r.json").read_text())["sweeps"][0]["trials"]
    json_outcomes = {t["hparams"]["story"]: t["outcome"] for t in trials}
    junit = junit_verdicts(outcomes.path / "junit.xml")
    board = dashboard(outcomes.path / "logs")
    tensorboard = {board.hparams(g)["story"]: board.status(g) for g in board.groups}
    # A column tells a pruned trial from a failed one: both end as Failure.
    pruned_column = {
        board.hparams(g)["story"]: board.metrics(g).get("pytest.pruned") for g in board.groups
    }
    assert "pytest.pruned" in board.metric_names
    study = study_states(outcomes.path / "logs")
    for case, (outcome, verdict, status, state, attr) in EXPECTED.items():
        assert json_outcomes[case] == outcome, case
        result.stdout.fnmatch_lines([f"*{case} * {outcome}*"])  # the table's row
        assert junit[case] == verdict, case
        assert tensorboard.get(case) == status, case
        if status is not None:  # a session: 1 for the pruned, 0 for every other
            assert pruned_column[case] == (1.0 if outcome == "pruned" else 0.0), case
        assert study.get(case, (None, None)) == (state, attr), case
    # Each trial's own values, whatever ended the one before it (a prune
    # raised in a fixture once left its trial to the next test).
    assert {t["hparams"]["story"] for t in trials} == set(EXPECTED)
    assert board.metrics(
        next(g for g in board.groups if board.hparams(g)["story"] == "system_exit")
    )["acc"] == pytest.approx(0.9)  # its logged curve stands


def test_trial_log_after_a_prune_says_so_in_one_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_again="""
        import optuna
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1], metrics=["acc"], pruner=optuna.pruners.ThresholdPruner(lower=0.5))
        def test_again(a, trial):
            try:
                trial.log(0, acc=0.1)
            except BaseException:
                pass
            trial.log(1, acc=0.2)
            return {"acc": 0.2}
        """
    )
    result = pytester.runpytest("-rA")
    assert result.parseoutcomes() == {"pruned": 1}
    result.stdout.fnmatch_lines(["*pruned at step 0 (trial.log was called again after the prune)*"])
    result.stdout.no_fnmatch_line("*already finished*")


def test_optuna_trial_pruned_without_a_pruner_prunes_at_the_last_logged_step(
    pytester: pytest.Pytester, dashboard: Callable[[Path], Any]
) -> None:
    pytester.makepyfile(
        test_idiom="""
        import optuna
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1, 2], metrics=["acc"])
        def test_idiom(a, trial):
            for step in range(3):
                trial.log(step, acc=0.5)
                if a == 2 and step == 1:
                    raise optuna.TrialPruned()
            return {"acc": 0.5}
        """
    )
    result = pytester.runpytest("--hparams-json=r.json", "--hparams-logdir=logs")
    assert result.parseoutcomes() == {"passed": 1, "pruned": 1}
    trials = json.loads((pytester.path / "r.json").read_text())["sweeps"][0]["trials"]
    assert {t["hparams"]["a"]: t["pruned_at"] for t in trials} == {1: None, 2: 1}
    board = dashboard(pytester.path / "logs")  # the pruned column, though nothing prunes
    assert {board.hparams(g)["a"]: board.metrics(g).get("pytest.pruned") for g in board.groups} == {
        1: None,
        2: 1.0,
    }


CRASH = """
import os
import optuna
from pytest_hparams import hparam_grid

@hparam_grid(story=["passed", "crashed"], metrics=["acc"],
             pruner=optuna.pruners.ThresholdPruner(lower=0.5))
def test_outcome(story, trial):
    trial.log(0, acc=0.9)
    if story == "crashed" and not os.environ.get("FIXED"):
        os._exit(1)
    return {"acc": 0.9}
"""


def test_a_crashed_worker_s_trial_agrees_everywhere_and_resume_ends_it_in_the_study(
    pytester: pytest.Pytester, dashboard: Callable[[Path], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_story=CRASH)
    args = ("-p", "no:randomly", "--hparams-logdir=logs", "--hparams-json=r.json")
    result = pytester.runpytest_subprocess("-n", "1", "--junitxml=junit.xml", *args)
    result.stdout.fnmatch_lines(["*1 failed, 1 passed*"])  # xdist's word for a crash
    trials = json.loads((pytester.path / "r.json").read_text())["sweeps"][0]["trials"]
    assert {t["hparams"]["story"]: t["outcome"] for t in trials} == {
        "passed": "passed",
        "crashed": "crashed",
    }
    # Its last logged values, as TensorBoard shows them.
    assert {t["hparams"]["story"]: t["metrics"] for t in trials}["crashed"] == {
        "acc": pytest.approx(0.9)
    }
    assert junit_verdicts(pytester.path / "junit.xml") == {"passed": "ok", "crashed": "error"}
    board = dashboard(pytester.path / "logs")
    statuses = {board.hparams(g)["story"]: board.status(g) for g in board.groups}
    assert statuses == {"passed": "STATUS_SUCCESS", "crashed": "STATUS_FAILURE"}
    assert study_states(pytester.path / "logs") == {
        "passed": ("COMPLETE", None),
        "crashed": ("FAIL", "crashed"),  # ended by the controller, its worker being dead
    }
    monkeypatch.setenv("FIXED", "1")
    again = pytester.runpytest_subprocess("--hparams-resume", *args)
    again.assert_outcomes(passed=1, skipped=1)
    states = [
        (t.state.name, t.user_attrs["pytest_nodeid"].split("story:")[1].rstrip("]"))
        for study in sweep_studies(journal(pytester.path / "logs"), "test_story.py::test_outcome")
        for t in study.trials
    ]
    assert sorted(states) == [("COMPLETE", "crashed"), ("COMPLETE", "passed"), ("FAIL", "crashed")]


FULL_JOURNAL = """
import errno
import os

from optuna.storages.journal import JournalFileBackend

real = JournalFileBackend.append_logs

def append_logs(self, logs):
    if os.path.exists("full"):  # the disk filled up mid-sweep
        raise OSError(errno.ENOSPC, "No space left on device", self._file_path)
    return real(self, logs)

JournalFileBackend.append_logs = append_logs
"""


def test_a_full_disk_under_the_study_is_a_warning_and_the_sweep_goes_on(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(FULL_JOURNAL)
    pytester.makepyfile(
        test_full="""
        import pathlib
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1, 2, 3], metrics=["acc"], pruner="median")
        def test_full(a, trial):
            if a == 2:
                pathlib.Path("full").touch()
            for step in range(3):
                trial.log(step, acc=a / 10)
            return {"acc": a / 10}
        """
    )
    result = pytester.runpytest("--hparams-logdir=logs")
    assert result.parseoutcomes() == {"passed": 3, "warnings": 2}
    result.stdout.fnmatch_lines(
        [
            "*HParamsWarning: test_full.py::test_full[[]a:2[]]: its Optuna study could not be "
            "written at *.pytest-hparams-optuna.journal (OSError: No space left on device); "
            "the trial went on unpruned, and the study does not hold it",
            "*3 trials: 3 passed*",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


def test_a_worker_crash_that_its_rerun_recovers_leaves_nothing_running_in_the_study(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_story="""
        import os
        import optuna
        from pytest_hparams import hparam_grid

        @hparam_grid(story=["a", "b", "c", "d"], metrics=["acc"],
                     pruner=optuna.pruners.ThresholdPruner(lower=0.5))
        def test_outcome(story, trial):
            trial.log(0, acc=0.9)
            if story == "b" and not os.path.exists("crashed-once"):
                open("crashed-once", "w").close()
                os._exit(1)
            return {"acc": 0.9}
        """
    )
    result = pytester.runpytest_subprocess(
        "-n", "2", "-p", "rerunfailures", "--reruns", "1", "-p", "no:randomly",
        "--hparams-logdir=logs", "--hparams-json=r.json",
    )  # fmt: skip
    result.stdout.fnmatch_lines(["*4 passed, 1 rerun*"])
    trials = json.loads((pytester.path / "r.json").read_text())["sweeps"][0]["trials"]
    assert {t["outcome"] for t in trials} == {"passed"}
    states = sorted(
        (t.user_attrs["pytest_nodeid"].split("story:")[1].rstrip("]"), t.state.name)
        for t in latest_study(journal(pytester.path / "logs"), "test_story.py::test_outcome").trials
    )
    assert states == [
        ("a", "COMPLETE"), ("b", "COMPLETE"), ("b", "FAIL"), ("c", "COMPLETE"), ("d", "COMPLETE"),
    ]  # fmt: skip


KILLED_WHILE_TELLING = """
import os
from pytest_hparams import trial

told = trial.Trial.tell

def tell(self, outcome):
    # kill -9 between the trial's TensorBoard session ending and its study being told
    if os.environ.get("VICTIM") and self.id.endswith(os.environ["VICTIM"]):
        os.kill(os.getpid(), 9)
    return told(self, outcome)

trial.Trial.tell = tell
"""


def test_a_search_trial_killed_as_its_study_is_told_resumes_without_running_again(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeconftest(KILLED_WHILE_TELLING)
    pytester.makepyfile(
        test_s="""
        from pytest_hparams import RealInterval, hparam_search

        @hparam_search(4, x=RealInterval(0.0, 1.0), metrics=["acc"], sampler="random")
        def test_s(x, trial):
            print("RAN", trial.id)
            return {"acc": x}
        """
    )
    monkeypatch.setenv("VICTIM", "[trial:2]")
    killed = pytester.runpytest_subprocess("-p", "no:randomly", "--hparams-logdir=logs")
    assert killed.ret == -9
    monkeypatch.delenv("VICTIM")
    result = pytester.runpytest_subprocess(
        "-s", "-p", "no:randomly", "--hparams-logdir=logs", "--hparams-resume"
    )
    result.stdout.fnmatch_lines(["*4 trials: 1 passed, 3 resumed*"])  # trial:3 never ran
    result.stdout.no_fnmatch_line("*RAN test_s.py::test_s[[]trial:2[]]*")
    runs = [
        (t.user_attrs["pytest_nodeid"].split("[")[1].rstrip("]"), t.state.name)
        for study in sweep_studies(journal(pytester.path / "logs"), "test_s.py::test_s")
        for t in study.trials
    ]
    assert ("trial:2", "RUNNING") not in runs and ("trial:2", "COMPLETE") in runs


def test_a_test_that_catches_every_prune_stops_its_curve_where_it_was_pruned(
    pytester: pytest.Pytester, dashboard: Callable[[Path], Any]
) -> None:
    pytester.makepyfile(
        test_story="""
        import optuna
        from pytest_hparams import hparam_grid

        class BelowHalf(optuna.pruners.BasePruner):  # a user's own pruner
            def prune(self, study, trial):
                step = trial.last_step
                return step is not None and trial.intermediate_values[step] < 0.5

        @hparam_grid(story=["caught"], metrics=["acc"], pruner=BelowHalf())
        def test_outcome(story, trial):
            acc = 0.9
            for step in range(4):
                acc = 0.9 - 0.3 * step
                try:
                    trial.log(step, acc=acc)
                except BaseException:
                    pass
            return {"acc": acc}
        """
    )
    result = pytester.runpytest("--hparams-logdir=logs", "--hparams-json=r.json")
    assert result.parseoutcomes() == {"pruned": 1, "warnings": 1}
    (t,) = json.loads((pytester.path / "r.json").read_text())["sweeps"][0]["trials"]
    assert (t["pruned_at"], t["metrics"]) == (2, {"acc": pytest.approx(0.3)})
    board = dashboard(pytester.path / "logs")
    (group,) = board.groups
    assert board.metrics(group) == {"acc": pytest.approx(0.3), "pytest.pruned": 1.0}
    (pruned,) = latest_study(journal(pytester.path / "logs"), "test_story.py::test_outcome").trials
    assert (pruned.state.name, pruned.last_step) == ("PRUNED", 2)


def test_xfailed_and_skipped_trials_are_named_so_and_recorded_as_documented(
    pytester: pytest.Pytester, dashboard: Callable[[Path], Dashboard]
) -> None:
    pytester.makepyfile(
        test_o="""
        import pytest
        from pytest_hparams import hparam_grid

        @pytest.fixture
        def data(a):
            if a == 4:
                pytest.xfail("the data is known to be bad")

        @hparam_grid(a=[1, 2, 3, 4])
        def test_o(a, data, request):
            if a == 2:
                request.applymarker(pytest.mark.xfail(reason="known"))
                assert False
            if a == 3:
                pytest.skip("not today")
            return {"score": a}
        """
    )
    result = pytester.runpytest("--hparams-logdir=logs", "--hparams-json=r.json")
    result.assert_outcomes(passed=1, xfailed=2, skipped=1)
    result.stdout.fnmatch_lines(["4 trials: 1 passed, 2 xfailed, 1 skipped*"])
    assert json_outcomes(pytester.path / "r.json") == {
        "test_o.py::test_o[a:1]": "passed",
        "test_o.py::test_o[a:2]": "xfailed",
        "test_o.py::test_o[a:3]": "skipped",
        "test_o.py::test_o[a:4]": "xfailed",
    }
    # An xfailed trial ran and failed (in its test or its fixture); a
    # skipped one did not run: no session.
    assert dashboard_statuses(dashboard, pytester.path / "logs") == {
        "test_o.py::test_o[a:1]": "STATUS_SUCCESS",
        "test_o.py::test_o[a:2]": "STATUS_FAILURE",
        "test_o.py::test_o[a:4]": "STATUS_FAILURE",
    }


def test_a_trial_whose_fixture_failed_after_logging_keeps_what_it_logged(
    pytester: pytest.Pytester, dashboard: Callable[[Path], Dashboard]
) -> None:
    pytester.makepyfile(
        test_f="""
        import pytest
        from pytest_hparams import hparam_grid

        @pytest.fixture
        def warm_up(a, trial):
            trial.log(0, score=a / 100)
            if a == 3:
                raise RuntimeError("bad data")

        @hparam_grid(a=[1, 3], metrics=["score"])
        def test_f(a, warm_up):
            return {"score": a}
        """
    )
    result = pytester.runpytest("--hparams-logdir=logs", "--hparams-json=r.json")
    result.assert_outcomes(passed=1, errors=1)
    trials = json.loads((pytester.path / "r.json").read_text())["sweeps"][0]["trials"]
    assert {t["outcome"]: t["metrics"] for t in trials} == {
        "passed": {"score": 1.0},
        "error": {"score": 0.03},
    }
    group = dashboard(pytester.path / "logs").group("[a:3]")
    assert Dashboard.status(group) == "STATUS_FAILURE"
    assert Dashboard.metrics(group)["score"] == pytest.approx(0.03)
    # --setup-only records nothing, not even a fixture's error.
    shutil.rmtree(pytester.path / "logs")
    pytester.runpytest("--hparams-logdir=logs", "--setup-only").assert_outcomes(errors=1)
    assert [p.name for p in (pytester.path / "logs").rglob("events.out.tfevents*")] == [
        "events.out.tfevents.0.pytest-hparams"
    ]
