"""What a CI gate relies on: one record per trial, whatever reorders, reruns
or interrupts it, and nothing a user recorded lost or faked."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree

import pytest
from conftest import GRID, Dashboard, run_merge

# Each trial's accuracy and loss depend on its hparams; CASE_BONUS adds the
# parametrize case's value, so every trial has its own numbers.
NON_ASCII = """
import pytest
from pytest_hparams import hparam_grid

@pytest.mark.parametrize("data", ["a", "b"])
@hparam_grid(cafe=["café", "thé"], n=[1, 2])
def test_x(cafe, n, data):
    return {"acc": n + len(cafe) / 10 + (0.01 if data == "b" else 0.0)}
"""


def outcomes_by_pytest(
    pytester: pytest.Pytester, *args: str
) -> tuple[dict[str, str], pytest.RunResult]:
    """Each item's final outcome as pytest itself reports it (reruns left out)."""
    result = pytester.runpytest(*args)
    final: dict[str, str] = {}
    for report in result.reprec.getreports("pytest_runtest_logreport"):  # type: ignore[attr-defined]
        if report.outcome == "rerun":
            continue
        if report.failed and report.when != "call":
            final[report.nodeid] = "error"
        elif report.when == "call" or (report.skipped and report.nodeid not in final):
            final[report.nodeid] = report.outcome
    return final, result


def json_outcomes(path: Path) -> dict[str, str]:
    data = json.loads(path.read_text())
    trials = [t for sweep in data["sweeps"] for t in sweep["trials"]]
    by_id = {t["nodeid"]: t["outcome"] for t in trials}
    assert len(by_id) == len(trials), "a trial is in the report twice"
    return by_id


def dashboard_statuses(dashboard: Callable[[Path], Dashboard], logdir: Path) -> dict[str, str]:
    board = dashboard(logdir)
    out = {}
    for group in board.groups:
        (session,) = group.sessions
        nodeid = group.name.partition(" · ")[2]
        out[nodeid] = Dashboard.status(group)
        assert session.name  # one run per session
    return out


def assert_agree(
    pytester: pytest.Pytester, dashboard: Callable[[Path], Dashboard], *args: str
) -> dict[str, str]:
    """Runs a sweep; pytest, the JSON report and the logdir say the same of each trial."""
    said, result = outcomes_by_pytest(
        pytester, "--hparams-logdir=logs", "--hparams-json=report.json", *args
    )
    recorded = json_outcomes(pytester.path / "report.json")
    assert recorded == said
    tally = Counter(said.values())
    counts = ", ".join(f"{tally[o]} {o}" for o in ("passed", "failed") if tally[o])
    result.stdout.fnmatch_lines([f"{len(said)} trials: {counts}*"])
    statuses = dashboard_statuses(dashboard, pytester.path / "logs")
    expected = {n: "STATUS_SUCCESS" if o == "passed" else "STATUS_FAILURE" for n, o in said.items()}
    assert statuses == expected
    return said


def test_non_ascii_values_with_parametrize_give_every_trial_its_own_session(
    pytester: pytest.Pytester, dashboard: Callable[[Path], Dashboard]
) -> None:
    pytester.makepyfile(test_x=NON_ASCII)
    said = assert_agree(pytester, dashboard)
    assert len(said) == 8 and set(said.values()) == {"passed"}
    board = dashboard(pytester.path / "logs")
    values = sorted(Dashboard.metrics(g)["acc"] for g in board.groups)
    assert len(set(values)) == 8


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


def test_merge_refuses_a_trial_that_two_shards_ran(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_grid=GRID)
    pytester.runpytest("--hparams-json=a.json").assert_outcomes(passed=12)
    pytester.runpytest("--hparams-json=b.json", "-k", "num_units:16").assert_outcomes(passed=4)
    result = pytester.run(sys.executable, "-m", "pytest_hparams", "merge", "a.json", "b.json")
    assert result.ret == 2
    result.stderr.fnmatch_lines(
        ["error: test_grid.py::test_train[[]num_units:16-* is in both a.json and b.json*"]
    )


@pytest.mark.parametrize("option", ["--setup-only", "--setup-plan"])
def test_a_run_that_runs_no_test_body_records_nothing(
    pytester: pytest.Pytester, dashboard: Callable[[Path], Dashboard], option: str
) -> None:
    pytester.makepyfile(test_grid=GRID)
    pytester.runpytest("--hparams-logdir=logs").assert_outcomes(passed=12)
    before = {g.name: Dashboard.metrics(g) for g in dashboard(pytester.path / "logs").groups}
    assert len(before) == 12
    result = pytester.runpytest("--hparams-logdir=logs", option, "--hparams-json=r.json")
    assert result.ret == 0
    result.stdout.no_fnmatch_line("*trials:*")
    after = {g.name: Dashboard.metrics(g) for g in dashboard(pytester.path / "logs").groups}
    assert after == before and all(m["accuracy"] for m in after.values())
    assert json.loads((pytester.path / "r.json").read_text())["sweeps"] == []


def patching_conftest(target: str, replacement: str) -> str:
    """A conftest that swaps `logdir.<target>` for the function `replacement`
    defines (it may call `real`, the original) for one pytest run, and puts
    the original back: pytester runs in this process, so a patch left in
    place would reach the tests that run after."""
    return (
        "import errno, time\nfrom pytest_hparams import logdir\n\n"
        f"real = logdir.{target}\n\n"
        + textwrap.dedent(replacement).strip()
        + f"\n\n\ndef pytest_configure(config):\n    logdir.{target} = replacement\n"
        f"\n\ndef pytest_unconfigure(config):\n    logdir.{target} = real\n"
    )


SLOW_CONFIG = patching_conftest(
    "ExperimentConfig.encode",
    """
    def replacement(self):
        time.sleep(0.3)
        return real(self)
    """,
)


def test_two_processes_recording_different_sweeps_into_one_logdir_keep_both_in_the_config(
    pytester: pytest.Pytester, dashboard: Callable[[Path], Dashboard]
) -> None:
    for name in ("a", "b"):
        pytester.makepyfile(
            **{
                f"test_{name}": "\n".join(
                    f"@hparam_grid(x{name}{i}=[1, 2])\ndef test_{name}{i}(x{name}{i}):\n"
                    f"    return {{'m{name}{i}': x{name}{i}}}\n"
                    for i in range(6)
                ).join(["from pytest_hparams import hparam_grid\n", ""])
            }
        )
    # Each process holds its read-merge-write open for a while, so without a
    # lock the two always overlap and one's sweeps vanish from the config.
    pytester.makeconftest(SLOW_CONFIG)
    logdir = pytester.path / "logs"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "no:randomly",
                f"test_{name}.py",
                f"--hparams-logdir={logdir}",
            ],
            cwd=pytester.path,
            stdout=subprocess.DEVNULL,
        )
        for name in ("a", "b")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    board = dashboard(logdir)
    sweeps = {h.name for h in board.experiment.hparam_infos}
    assert {f"x{n}{i}" for n in "ab" for i in range(6)} <= sweeps
    assert {f"m{n}{i}" for n in "ab" for i in range(6)} <= board.metric_names
    assert len(board.groups) == 24


DISK_FULL = patching_conftest(
    "TrialWriter.finish",
    """
    def replacement(self, *args, **kwargs):
        if "a=2" in str(self.path):
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        return real(self, *args, **kwargs)
    """,
)


def test_a_trial_whose_files_cannot_be_written_is_a_warning_and_the_sweep_goes_on(
    pytester: pytest.Pytester, dashboard: Callable[[Path], Dashboard]
) -> None:
    pytester.makeconftest(DISK_FULL)
    pytester.makepyfile(
        test_d="""
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1, 2, 3])
        def test_d(a):
            return {"score": a}
        """
    )
    result = pytester.runpytest("--hparams-logdir=logs", "-W", "error")
    result.assert_outcomes(passed=3, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*HParamsWarning: test_d.py::test_d[[]a:2[]]: could not write its TensorBoard run at "
            "*a=2 (OSError: No space left on device); the trial ran but is not recorded",
            "*3 trials: 3 passed*",
        ]
    )
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    statuses = dashboard_statuses(dashboard, pytester.path / "logs")
    assert statuses == {
        "test_d.py::test_d[a:1]": "STATUS_SUCCESS",
        "test_d.py::test_d[a:3]": "STATUS_SUCCESS",
    }


def test_a_trial_whose_curve_cannot_be_written_leaves_no_session(
    pytester: pytest.Pytester, dashboard: Callable[[Path], Dashboard]
) -> None:
    # A torn curve and no session end would read as an unknown session of
    # a trial the warning says is not recorded.
    pytester.makeconftest(
        patching_conftest(
            "TrialWriter.scalars",
            """
            def replacement(self, step, values, groups):
                if "a=2" in self.path and step == 1:
                    raise OSError(errno.ENOSPC, "No space left on device")
                return real(self, step, values, groups)
            """,
        )
    )
    pytester.makepyfile(
        test_c="""
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1, 2])
        def test_c(a, trial):
            for step in range(3):
                trial.log(step, acc=0.5)
            return {"acc": a}
        """
    )
    result = pytester.runpytest("--hparams-logdir=logs")
    result.assert_outcomes(passed=2, warnings=1)
    statuses = dashboard_statuses(dashboard, pytester.path / "logs")
    assert statuses == {"test_c.py::test_c[a:1]": "STATUS_SUCCESS"}


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts fds in Linux's /proc")
def test_a_trial_whose_first_write_fails_leaves_no_file_and_no_open_descriptor(
    pytester: pytest.Pytester,
) -> None:
    # A full disk: the event file opens, its first write fails.
    pytester.makeconftest(
        patching_conftest(
            "_write_all",
            """
            def replacement(fd, data):
                raise OSError(errno.ENOSPC, "No space left on device")
            """,
        )
    )
    pytester.makepyfile(
        test_fd="""
        import os
        from pytest_hparams import hparam_grid

        @hparam_grid(a=list(range(20)))
        def test_fd(a):
            return {"fds": len(os.listdir("/proc/self/fd"))}
        """
    )
    result = pytester.runpytest_subprocess(
        "--hparams-logdir=logs", "--hparams-json=r.json", "-p", "no:randomly"
    )
    result.assert_outcomes(passed=20, warnings=20)
    report = json.loads((pytester.path / "r.json").read_text())
    fds = [t["metrics"]["fds"] for t in report["sweeps"][0]["trials"]]
    assert max(fds) - min(fds) <= 1, fds  # not one more per trial
    runs = pytester.path / "logs" / "test_fd.py"
    assert not runs.exists() or not [p for p in runs.rglob("*") if p.is_file()]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "--hparams-logdir is empty (an unset variable?); give a directory such as logs/*"),
        (
            ".",
            "--hparams-logdir: '.' is the project directory (*): trials would be written "
            "among the test files; choose a subdirectory such as logs/",
        ),
    ],
)
def test_an_empty_or_project_logdir_is_a_usage_error(
    pytester: pytest.Pytester, value: str, message: str
) -> None:
    pytester.makepyfile(test_grid=GRID)
    result = pytester.runpytest(f"--hparams-logdir={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    # Nothing written; other plugins' folders (pytest-benchmark's) are theirs.
    others = {".benchmarks", ".pytest_cache", ".hypothesis"}
    assert {p.name for p in pytester.path.iterdir()} - others == {"test_grid.py"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--hparams-storage="], "--hparams-storage is empty (an unset variable?); give an *"),
        (["--hparams-json="], "--hparams-json is empty (an unset variable?); give a file *"),
        (["--hparams-only-best="], "--hparams-only-best is empty (an unset variable?); *"),
        (
            ["--hparams-save-baseline=test_grid.py"],
            "--hparams-save-baseline: *test_grid.py is not valid JSON *; give a path of its own",
        ),
        (
            ["-o", "hparams_baseline=a.json b.json"],
            "hparams_baseline (ini) names 2 files; a run compares with one",
        ),
    ],
)
def test_an_empty_option_or_a_baseline_path_holding_another_file_is_a_usage_error(
    pytester: pytest.Pytester, args: list[str], message: str
) -> None:
    pytester.makepyfile(test_grid=GRID)
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert "hparam_grid" in (pytester.path / "test_grid.py").read_text()


def test_the_command_lines_hparams_set_wins_over_addopts_and_a_blank_baseline_file_is_none(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_grid=GRID)
    pytester.makeini("[pytest]\naddopts = --hparams-set=num_units=16,32\n")
    result = pytester.runpytest("--hparams-set=num_units=64", "--collect-only", "-q")
    assert all("num_units:64" in line for line in result.outlines if "::" in line)
    (pytester.path / "blank.json").write_text("")  # as `mktemp` leaves it
    result = pytester.runpytest("--hparams-save-baseline=blank.json")
    result.assert_outcomes(passed=8)  # num_units 16 and 32, from addopts
    assert json.loads((pytester.path / "blank.json").read_text())["trials"]


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="needs a directory outside /tmp")
def test_an_existing_logdir_that_pytest_takes_for_the_rootdir_says_to_write_it_with_equals(
    pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Written as two words, an existing directory looks like a test path to
    # pytest; with no common ancestor but / it becomes the rootdir itself.
    pytester.makepyfile(test_grid=GRID)
    elsewhere = Path(tempfile.mkdtemp(dir="/dev/shm"))
    try:
        result = pytester.runpytest_subprocess("--hparams-logdir", str(elsewhere))
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(
            [
                f"ERROR: --hparams-logdir {elsewhere}: write --hparams-logdir={elsewhere}; "
                "pytest would take a path after an option for a test path when it chooses its "
                "rootdir and ini file"
            ]
        )
        equals = pytester.runpytest_subprocess(f"--hparams-logdir={elsewhere}")
        equals.assert_outcomes(passed=12)
    finally:
        shutil.rmtree(elsewhere)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize(
    "option", ["--hparams-save-baseline", "--hparams-json", "--hparams-markdown"]
)
def test_a_report_path_that_cannot_be_written_is_refused_before_anything_runs(
    pytester: pytest.Pytester, option: str
) -> None:
    pytester.makepyfile(test_grid=GRID)
    result = pytester.runpytest(f"{option}=/proc/self/report.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: {option}: cannot write /proc/self/report.json (*); choose a writable path"]
    )
    result.stdout.no_fnmatch_line("*passed*")


def test_a_report_that_fails_at_the_end_does_not_stop_the_others_and_fails_the_run(
    pytester: pytest.Pytester,
) -> None:
    pytester.mkdir("out")
    pytester.makepyfile(
        test_gone="""
        import shutil
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1, 2])
        def test_gone(a):
            shutil.rmtree("out", ignore_errors=True)
            return {"score": a}
        """
    )
    result = pytester.runpytest(
        "--hparams-json=out/r.json",
        "--hparams-markdown=r.md",
        "--hparams-save-baseline=base.json",
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "baseline saved: base.json (2 trials)",
            "markdown summary: r.md",
            "hparams: could not write the json report to out/r.json (FileNotFoundError: *)",
        ]
    )
    assert (pytester.path / "r.md").exists() and (pytester.path / "base.json").exists()


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


KILLED_RERUN = """
import os, signal
from pytest_hparams import hparam_grid

@hparam_grid(a=[1, 2])
def test_k(a, trial):
    trial.log(0, score=a)
    trial.log(1, score=a)
    if os.environ.get("KILL") and a == 2:
        trial.log(2, score=-100.0)
        os.kill(os.getpid(), signal.SIGKILL)
    return {"score": a}
"""


def test_a_rerun_killed_mid_trial_leaves_no_file_tensorboard_would_load(
    pytester: pytest.Pytester,
    dashboard: Callable[[Path], Dashboard],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytester.makepyfile(test_k=KILLED_RERUN)
    pytester.runpytest("--hparams-logdir=logs").assert_outcomes(passed=2)
    monkeypatch.setenv("KILL", "1")
    killed = pytester.runpytest_subprocess("--hparams-logdir=logs")
    assert killed.ret == -9, killed.stdout.str()
    run = pytester.path / "logs" / "test_k.py" / "test_k" / "a=2"
    assert [p.name for p in run.iterdir() if p.name.startswith(".pending.")], (
        killed.stdout.str(),
        sorted(
            p.relative_to(pytester.path).as_posix() for p in (pytester.path / "logs").rglob("*")
        ),
    )  # it was killed
    assert all("tfevents" not in p.name for p in run.iterdir() if p.name.startswith("."))
    board = dashboard(pytester.path / "logs")
    group = board.group("[a:2]")
    assert Dashboard.status(group) == "STATUS_SUCCESS"
    run_name = group.sessions[0].name
    points = board.multiplexer.Tensors(run_name, "score")
    assert [p.step for p in points] == [0, 1, 1]  # the recorded curve, and its final value
    monkeypatch.delenv("KILL")
    pytester.runpytest("--hparams-logdir=logs").assert_outcomes(passed=2)
    assert not [p for p in run.iterdir() if p.name.startswith(".pending.")]


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


def test_xfailed_and_skipped_trials_are_named_so_and_recorded_as_documented(
    pytester: pytest.Pytester, dashboard: Callable[[Path], Dashboard]
) -> None:
    pytester.makepyfile(
        test_o="""
        import pytest
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1, 2, 3])
        def test_o(a, request):
            if a == 2:
                request.applymarker(pytest.mark.xfail(reason="known"))
                assert False
            if a == 3:
                pytest.skip("not today")
            return {"score": a}
        """
    )
    result = pytester.runpytest("--hparams-logdir=logs", "--hparams-json=r.json")
    result.assert_outcomes(passed=1, xfailed=1, skipped=1)
    result.stdout.fnmatch_lines(["3 trials: 1 passed, 1 xfailed, 1 skipped*"])
    assert json_outcomes(pytester.path / "r.json") == {
        "test_o.py::test_o[a:1]": "passed",
        "test_o.py::test_o[a:2]": "xfailed",
        "test_o.py::test_o[a:3]": "skipped",
    }
    # An xfailed trial ran and failed; a skipped one did not run: no session.
    assert dashboard_statuses(dashboard, pytester.path / "logs") == {
        "test_o.py::test_o[a:1]": "STATUS_SUCCESS",
        "test_o.py::test_o[a:2]": "STATUS_FAILURE",
    }


def test_html_and_pipes_in_values_stay_data_in_the_markdown_summary(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_h="""
        from pytest_hparams import hparam_grid

        @hparam_grid(name=["<b>x</b>|y", "a\\nb"])
        def test_h(name):
            return {"score": len(name)}
        """
    )
    pytester.runpytest("--hparams-markdown=r.md").assert_outcomes(passed=2)
    text = (pytester.path / "r.md").read_text()
    assert "&lt;b&gt;x&lt;/b&gt;\\|y" in text and "<b>" not in text
    assert "a\\nb" in text
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(rows) == 3 and all(row.count(" | ") == rows[0].count(" | ") for row in rows)


def test_trial_logdir_without_a_logdir_lies_in_pytests_temporary_tree(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_t="""
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1, 2])
        def test_t(a, trial, tmp_path_factory):
            assert trial.logdir.is_dir()
            assert tmp_path_factory.getbasetemp() in trial.logdir.parents
        """
    )
    pytester.runpytest("--basetemp", str(pytester.path / "base")).assert_outcomes(passed=2)
    made = [p for p in (pytester.path / "base").glob("hparams-trial*") if not p.is_symlink()]
    assert len(made) == 2


def test_the_dashboards_trial_id_starts_with_the_values_and_is_unique_in_the_logdir(
    pytester: pytest.Pytester, dashboard: Callable[[Path], Dashboard]
) -> None:
    pytester.makepyfile(test_x=NON_ASCII, test_grid=GRID)
    pytester.runpytest("--hparams-logdir=logs").assert_outcomes(passed=20)
    names = [g.name for g in dashboard(pytester.path / "logs").groups]
    assert len(set(names)) == 20
    assert (
        "16, 0.01, adam · test_grid.py::test_train[num_units:16-learning_rate:0.01-optimizer:adam]"
        in names
    )
    assert "café, 1 · test_x.py::test_x[cafe:caf\\xe9-n:1-a]" in names


def test_a_nan_regression_still_writes_the_json_report(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        test_n="""
        import os
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1, 2])
        def test_n(a):
            return {"score": float("nan") if os.environ.get("NAN") and a == 2 else 1.0}
        """
    )
    pytester.runpytest("--hparams-save-baseline=b.json").assert_outcomes(passed=2)
    monkeypatch.setenv("NAN", "1")
    result = pytester.runpytest("--hparams-baseline=b.json", "--hparams-json=r.json")
    result.assert_outcomes(passed=1, failed=1)
    data = json.loads((pytester.path / "r.json").read_text())
    (failed,) = [t for t in data["sweeps"][0]["trials"] if t["outcome"] == "failed"]
    assert failed["metrics"] == {"score": "nan"}
    assert failed["baseline"]["metrics"]["score"]["value"] == "nan"


def test_resumed_trials_keep_their_place_in_a_saved_baseline(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_grid=GRID)
    pytester.runpytest("--hparams-logdir=logs").assert_outcomes(passed=12)
    result = pytester.runpytest(
        "--hparams-logdir=logs", "--hparams-resume", "--hparams-save-baseline=b.json"
    )
    result.stdout.fnmatch_lines(["baseline saved: b.json (12 trials)"])


def test_a_swept_staticmethod_inherited_by_a_subclass_runs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_s="""
        from pytest_hparams import hparam_grid

        class TestA:
            @staticmethod
            @hparam_grid(b=[1, 2])
            def test_s(b):
                return {"score": b}

        class TestB(TestA):
            pass
        """
    )
    pytester.runpytest().assert_outcomes(passed=4)


def test_a_run_that_records_no_trial_replaces_an_earlier_report(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_grid=GRID, test_plain="def test_plain():\n    pass\n")
    pytester.runpytest("--hparams-json=r.json").assert_outcomes(passed=13)
    pytester.runpytest("--hparams-json=r.json", "-k", "plain").assert_outcomes(passed=1)
    assert json.loads((pytester.path / "r.json").read_text())["sweeps"] == []


@pytest.mark.parametrize(
    "content",
    [
        '{"format": "pytest-hparams-report", "version": 3}',
        '{"format": "pytest-hparams-report", "version": 3, "sweeps": [{"test": "t"}]}',
        '{"format": "pytest-hparams-report", "version": 3, "sweeps": [{"test": "t", '
        '"hparams": [], "metrics": [], "trials": [{"nodeid": "t[a]", "outcome": "weird"}]}]}',
    ],
)
def test_merge_refuses_a_malformed_report_in_one_line(
    pytester: pytest.Pytester, content: str
) -> None:
    pytester.makefile(".json", bad=content)
    result = pytester.run(sys.executable, "-m", "pytest_hparams", "merge", "bad.json")
    assert result.ret == 2
    result.stderr.fnmatch_lines(["error: bad.json: a malformed pytest-hparams report (*)*"])
    assert "Traceback" not in result.stderr.str()


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


def test_the_markdown_summary_has_the_case_column_the_table_has(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_x=NON_ASCII)
    pytester.runpytest("--hparams-markdown=r.md").assert_outcomes(passed=8)
    text = (pytester.path / "r.md").read_text()
    assert "| case |" in text and "| data=a |" in text and "| data=b |" in text


def test_a_logdir_that_holds_the_tests_being_run_is_a_usage_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.mkpydir("tests").joinpath("test_grid.py").write_text(GRID)
    result = pytester.runpytest("tests", "--hparams-logdir=tests")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --hparams-logdir: *tests holds the tests being run*"])


def test_a_report_may_not_overwrite_the_baseline_it_is_compared_with(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_grid=GRID)
    pytester.runpytest("--hparams-save-baseline=b.json").assert_outcomes(passed=12)
    saved = (pytester.path / "b.json").read_text()
    result = pytester.runpytest("--hparams-baseline=b.json", "--hparams-json=b.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --hparams-json: *b.json is also a baseline or another*"])
    assert (pytester.path / "b.json").read_text() == saved


def test_a_report_path_that_holds_a_file_of_the_users_is_refused_and_the_file_kept(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_grid=GRID)
    source = (pytester.path / "test_grid.py").read_text()
    (pytester.path / "notes.md").write_text("# My notes\n")
    # A test file given as the report path (two words are refused before this).
    for option in ("--hparams-json", "--hparams-markdown"):
        result = pytester.runpytest(f"{option}=test_grid.py")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"ERROR: {option}: *test_grid.py holds something other *"])
    # Notes whose first heading reads like a summary's, and a script that
    # begins with more blank lines than the check reads at first.
    kept = {"notes.md": "# My notes\n", "steps.md": "### `install` step\n\nnotes\n"}
    kept["late.py"] = "\n" * 300 + "print('mine')\n"
    for name, text in kept.items():
        (pytester.path / name).write_text(text)
    for option, name in (
        ("--hparams-markdown", "notes.md"),
        ("--hparams-markdown", "steps.md"),
        ("--hparams-markdown", "late.py"),
        ("--hparams-json", "late.py"),
    ):
        result = pytester.runpytest(f"{option}={name}")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert (pytester.path / "test_grid.py").read_text() == source
    for name, text in kept.items():
        assert (pytester.path / name).read_text() == text
    # Its own reports, and blank files, it writes over run after run.
    (pytester.path / "blank.md").write_text("")
    args = ("--hparams-json=r.json", "--hparams-markdown=blank.md")
    pytester.runpytest(*args).assert_outcomes(passed=12)
    pytester.runpytest(*args).assert_outcomes(passed=12)
    assert (pytester.path / "blank.md").read_text().startswith("### `")
    # Nor may a report replace the only-best file it reads.
    result = pytester.runpytest("--hparams-only-best=r.json", "--hparams-markdown=r.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --hparams-markdown: *r.json is also a baseline or *"])


def test_merge_refuses_to_write_over_an_input_or_a_file_of_the_users(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_grid=GRID)
    pytester.runpytest("--hparams-json=r.json").assert_outcomes(passed=12)
    report = (pytester.path / "r.json").read_text()
    for output in ("r.json", "test_grid.py"):
        merged = subprocess.run(
            [sys.executable, "-m", "pytest_hparams", "merge", "r.json", "-o", output],
            cwd=pytester.path,
            capture_output=True,
            text=True,
        )
        assert merged.returncode == 2
        assert merged.stderr.startswith(f"error: {output} ")
    assert (pytester.path / "r.json").read_text() == report
    assert "hparam_grid" in (pytester.path / "test_grid.py").read_text()

    def merge(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "pytest_hparams", "merge", "r.json", *args]
        return subprocess.run(command, cwd=pytester.path, capture_output=True, text=True)

    both = merge("-o", "m.out", "--markdown", "m.out")
    assert both.returncode == 2 and "name one file" in both.stderr
    assert not (pytester.path / "m.out").exists()
    # A blank file is none yet, and a report reformatted (json.tool) is still one.
    (pytester.path / "blank.json").write_text("")
    (pytester.path / "m.json").write_text(json.dumps(json.loads(report), indent=4))
    done = merge("-o", "m.json", "--save-baseline", "blank.json")
    assert done.returncode == 0, done.stderr
    assert json.loads((pytester.path / "blank.json").read_text())["trials"]


def test_merge_refuses_an_output_it_could_not_write_before_it_merges(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_grid=GRID)
    pytester.runpytest("--hparams-json=r.json").assert_outcomes(passed=12)
    (pytester.path / "folder").mkdir()
    os.mkfifo(pytester.path / "fifo")
    for option in ("-o", "--markdown", "--save-baseline"):
        for path, why in (
            ("folder", "is a directory"),
            ("fifo", "is not a regular file"),
            ("missing/out", "the directory * does not exist"),
        ):
            # With another output that could be written: it is not, either.
            other = "--markdown" if option == "-o" else "-o"
            merged = run_merge(pytester, "r.json", option, path, other, "other")
            assert merged.ret == 2
            merged.stderr.fnmatch_lines([f"error: {option}: *{why}*"])
    assert (pytester.path / "fifo").is_fifo() and not (pytester.path / "other").exists()


def test_a_report_path_that_is_a_symlink_is_written_through_and_keeps_its_mode(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_grid=GRID)
    (pytester.path / "artifacts").mkdir()
    target = pytester.path / "artifacts" / "report.json"
    target.write_text("")
    target.chmod(0o444)
    (pytester.path / "report.json").symlink_to("artifacts/report.json")
    pytester.runpytest("--hparams-json=report.json").assert_outcomes(passed=12)
    assert (pytester.path / "report.json").is_symlink()
    assert json.loads(target.read_text())["format"] == "pytest-hparams-report"
    assert target.stat().st_mode & 0o777 == 0o444


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux's /proc")
def test_dev_stdout_as_a_report_path_is_refused(pytester: pytest.Pytester) -> None:
    # Renamed over, the file a shell redirected stdout to would be replaced
    # (and, as root, /dev/stdout itself).
    pytester.makepyfile(test_grid=GRID)
    result = pytester.runpytest("--hparams-json=/dev/stdout")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --hparams-json: /dev/stdout is a process's file *"])
    assert Path("/dev/stdout").is_symlink()


def test_a_summary_written_by_a_run_without_sweeps_is_written_over_by_the_next(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    args = ("--hparams-markdown=s.md", "--hparams-html=r.html")
    pytester.runpytest(*args).assert_outcomes(passed=1)
    pytester.runpytest(*args).assert_outcomes(passed=1)
    (pytester.path / "s.md").write_text(
        "Plots of every sweep: [r.html](r.html)\n"
    )  # as 125a1fd wrote
    pytester.runpytest(*args).assert_outcomes(passed=1)
