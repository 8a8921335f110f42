"""Scaling out: pytest-xdist, CI shards and their merge, and resuming a sweep."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import GRID, Dashboard, put_huge, run_merge

Read = Callable[[Path], Dashboard]

SWEEP = """
import os, time
from pytest_hparams import hparam_grid

@hparam_grid(a=list(range(5)), b=["x", "y"], metrics=["score"])
def test_sweep(a, b):
    time.sleep(float(os.environ.get("TRIAL_SECONDS", "0")))
    return {"score": a + (0.5 if b == "y" else 0.0)}

def test_plain():
    pass
"""


def without_durations(report: dict) -> dict:  # type: ignore[type-arg]
    for sweep in report["sweeps"]:
        for trial in sweep["trials"]:
            trial.pop("duration")
    return report


def test_dist_each_is_refused_for_a_sweep_and_left_alone_without_one(
    pytester: pytest.Pytester,
) -> None:
    # Every worker would run every trial, which the table, the JSON and the
    # logdir would each hold once while pytest counted it once a worker.
    pytester.makepyfile(test_sweep=SWEEP)
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "each", "--hparams-logdir=logs")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(
        ["ERROR: --dist each runs every trial on every worker, *; run sweeps with --dist load*"]
    )
    logs = pytester.path / "logs"
    assert not (logs / "test_sweep.py").exists()
    assert not (logs / ".pytest-hparams-runs").exists()  # this run's marker went with it
    pytester.makepyfile(test_sweep="def test_plain():\n    pass\n")
    pytester.runpytest_subprocess("-n", "2", "--dist", "each").assert_outcomes(passed=2)


def test_xdist_gives_the_same_baseline_verdicts_and_json_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    pytester.runpytest_subprocess("--hparams-save-baseline=base.json")
    serial = pytester.runpytest_subprocess(
        "--hparams-baseline=base.json", "--hparams-json=serial.json"
    )
    parallel = pytester.runpytest_subprocess(
        "-n", "2", "--hparams-baseline=base.json", "--hparams-json=parallel.json"
    )
    parallel.assert_outcomes(passed=11)
    verdict = "baseline: 0 regressed, 0 improved, 0 new, 10 ok"
    assert verdict in serial.outlines and verdict in parallel.outlines
    one = without_durations(json.loads((pytester.path / "serial.json").read_text()))
    two = without_durations(json.loads((pytester.path / "parallel.json").read_text()))
    assert one == two


def test_a_worker_that_dies_mid_trial_costs_only_that_trial(
    pytester: pytest.Pytester, dashboard: Read
) -> None:
    pytester.makepyfile(
        test_crash="""
        import os
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1, 2, 3, 4], metrics=["score"])
        def test_crash(a, trial):
            trial.log(0, score=0.0)
            if a == 3:
                os._exit(1)
            return {"score": a}
        """
    )
    result = pytester.runpytest_subprocess("-n", "2", "--hparams-logdir=logs")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*worker * crashed while running*test_crash[[]a:3[]]*"])
    # Its row holds its last logged value, as TensorBoard shows it.
    result.stdout.fnmatch_lines(["  3 * 0 * crashed", "4 trials: 3 passed, 1 crashed*"])
    board = dashboard(pytester.path / "logs")
    statuses = {g.name.rsplit("[", 1)[1]: board.status(g) for g in board.groups}
    assert statuses == {
        "a:1]": "STATUS_SUCCESS",
        "a:2]": "STATUS_SUCCESS",
        "a:3]": "STATUS_FAILURE",
        "a:4]": "STATUS_SUCCESS",
    }


def test_a_worker_that_dies_in_a_fixtures_setup_leaves_its_trial_a_failed_session(
    pytester: pytest.Pytester, dashboard: Read, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        test_fx="""
        import os
        import pytest
        from pytest_hparams import hparam_grid

        @pytest.fixture
        def boom(request):
            if os.environ.get("CRASH") and request.node.nodeid.endswith("[a:2]"):
                os._exit(1)
            yield

        @hparam_grid(a=[1, 2, 3], metrics=["score"])
        def test_fx(a, boom):
            return {"score": a}
        """
    )

    def statuses() -> dict[str, str]:
        board = dashboard(pytester.path / "logs")
        return {g.name.rsplit("[", 1)[1]: board.status(g) for g in board.groups}

    monkeypatch.setenv("CRASH", "1")
    # Whatever plugins hold reports back: its setup report never left the worker.
    result = pytester.runpytest_subprocess(
        "-n", "2", "--hparams-logdir=logs", "-p", "no:randomly", "-p", "no:rerunfailures"
    )
    result.stdout.fnmatch_lines(["  2 * - * crashed", "3 trials: 2 passed, 1 crashed*"])
    # It began no session: one is recorded for it, begun and failed at once.
    assert statuses() == {
        "a:1]": "STATUS_SUCCESS",
        "a:2]": "STATUS_FAILURE",
        "a:3]": "STATUS_SUCCESS",
    }
    board = dashboard(pytester.path / "logs")
    assert Dashboard.hparams(board.group("[a:2]"))["a"] == 2
    # A rerun that dies so over a session an earlier run ended leaves that one.
    monkeypatch.delenv("CRASH")
    pytester.runpytest_subprocess("-n", "2", "--hparams-logdir=logs").assert_outcomes(passed=3)
    monkeypatch.setenv("CRASH", "1")
    pytester.runpytest_subprocess("-n", "2", "--hparams-logdir=logs").assert_outcomes(
        passed=2, failed=1
    )
    assert set(statuses().values()) == {"STATUS_SUCCESS"}


def run_shard(pytester: pytest.Pytester, k: int, n: int) -> pytest.RunResult:
    return pytester.runpytest("--hparams-shard", f"{k}/{n}", f"--hparams-json=shard-{k}.json", "-v")


def test_shards_run_every_trial_exactly_once_and_plain_tests_in_shard_one(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    ran: list[str] = []
    for k in (1, 2, 3):
        result = run_shard(pytester, k, 3)
        passed = [m.group(1) for line in result.outlines if (m := re.match(r"(\S+) PASSED", line))]
        ran += passed
        swept = [p for p in passed if "test_sweep[" in p]
        assert len(swept) in (3, 4)  # 10 trials over 3 shards, balanced within one
        assert ("test_sweep.py::test_plain" in passed) == (k == 1)
    assert sorted(ran) == sorted(set(ran))
    assert len(ran) == 11


def test_shard_reports_merge_into_one_table_report_and_baseline(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    for k in (1, 2):
        run_shard(pytester, k, 2)
    merged = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_hparams",
            "merge",
            "shard-1.json",
            "shard-2.json",
            "-o",
            "merged.json",
            "--markdown",
            "merged.md",
            "--save-baseline",
            "base.json",
        ],
        cwd=pytester.path,
        capture_output=True,
        text=True,
    )
    assert merged.returncode == 0, merged.stderr
    lines = merged.stdout.splitlines()
    assert lines[0] == "== hparams: test_sweep.py::test_sweep =="
    best = lines[2].split()
    assert best[:4] + best[5:] == ["*", "4", "y", "4.5", "passed"]  # [4] is the duration
    assert "10 trials: 10 passed; best score=4.5 at [a:4-b:y]" in lines
    assert "baseline saved: base.json (10 trials)" in lines
    report = json.loads((pytester.path / "merged.json").read_text())
    assert len(report["sweeps"][0]["trials"]) == 10
    merged = (pytester.path / "merged.md").read_text()
    assert "| 🏆 | 4 | y | 4.5 | " in merged and "| passed |" in merged
    saved = json.loads((pytester.path / "base.json").read_text())["trials"]
    assert len(saved) == 10
    # The merged baseline gates an ordinary run.
    pytester.runpytest("--hparams-baseline=base.json").assert_outcomes(passed=11)


def test_merge_says_which_shard_is_missing_or_cut_short_and_exits_1(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    for k in (1, 2, 3):
        run_shard(pytester, k, 3)
    alone = run_merge(pytester, "shard-1.json", "shard-3.json")
    assert alone.ret == 1
    alone.stdout.fnmatch_lines(
        ["merge: shard 2 of 3 not among the reports: their trials are not in this table"]
    )
    # A shard whose run was cut short (Ctrl-C, a cancelled job) says so in its report.
    report = json.loads((pytester.path / "shard-2.json").read_text())
    assert report["shard"] == [2, 3] and report["interrupted"] is False
    report["interrupted"] = True
    (pytester.path / "shard-2.json").write_text(json.dumps(report))
    cut = run_merge(pytester, "shard-1.json", "shard-2.json", "shard-3.json")
    assert cut.ret == 1
    cut.stdout.fnmatch_lines(["merge: shard-2.json: its run was interrupted, *incomplete"])
    whole = run_merge(pytester, "shard-1.json", "shard-3.json", "shard-2.json")
    assert whole.ret == 1  # still the interrupted one
    report["interrupted"] = False
    (pytester.path / "shard-2.json").write_text(json.dumps(report))
    assert run_merge(pytester, "shard-1.json", "shard-2.json", "shard-3.json").ret == 0


def test_merge_refuses_a_file_that_is_not_a_report(pytester: pytest.Pytester) -> None:
    pytester.path.joinpath("junk.json").write_text("{}")
    merged = subprocess.run(
        [sys.executable, "-m", "pytest_hparams", "merge", "junk.json"],
        cwd=pytester.path,
        capture_output=True,
        text=True,
    )
    assert merged.returncode == 2
    assert merged.stderr == "error: junk.json: not a pytest-hparams JSON report (--hparams-json)\n"


@pytest.mark.parametrize("spec", ["0/3", "4/3", "1", "a/b"])
def test_a_bad_shard_is_a_usage_error(pytester: pytest.Pytester, spec: str) -> None:
    result = pytester.runpytest("--hparams-shard", spec)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*expected K/N with 1 <= K <= N (like 2/4), auto, or auto/N; got '{spec}'"]
    )


def test_resume_needs_a_logdir(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--hparams-resume")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --hparams-resume needs the logdir to resume from;*"])


def test_resume_skips_successes_and_reruns_failures(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        test_flaky="""
        import os
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1, 2, 3], metrics=["score"])
        def test_flaky(a):
            assert not (a == 2 and os.environ.get("BROKEN")), "broken"
            return {"score": a / 4}
        """
    )
    monkeypatch.setenv("BROKEN", "1")
    pytester.runpytest("--hparams-logdir=logs").assert_outcomes(passed=2, failed=1)
    monkeypatch.delenv("BROKEN")
    result = pytester.runpytest("--hparams-logdir=logs", "--hparams-resume", "-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "* 3 * 0.75 * resumed",
            "  2 * 0.5 * passed",
            "  1 * 0.25 * resumed",
            "3 trials: 1 passed, 2 resumed; best score=0.75 at [[]a:3[]]",
            "SKIPPED [[]2[]] test_flaky.py:4: resumed: this trial's session in the logdir "
            "ended with SUCCESS",
        ]
    )


def test_a_killed_sweep_resumes_with_no_trial_lost_or_duplicated(
    pytester: pytest.Pytester, dashboard: Read
) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    logs = pytester.path / "logs"
    env = {**os.environ, "TRIAL_SECONDS": "0.3"}
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--hparams-logdir=logs"]
    process = subprocess.Popen(command, cwd=pytester.path, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    # A trial has started once its run holds an event file (the directory of
    # the next one may already be made ahead of it).
    runs = "test_sweep.py/test_sweep/*/events.out.tfevents*"
    while time.monotonic() < deadline and len(list(logs.glob(runs))) < 5:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    started = len(list(logs.glob(runs)))
    assert 5 <= started < 10, "the sweep was not killed mid-way"

    result = subprocess.run(
        [*command, "--hparams-resume"],
        cwd=pytester.path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout
    resumed = int(re.search(r"(\d+) resumed", result.stdout).group(1))  # type: ignore[union-attr]
    assert 4 <= resumed < 10
    assert f"10 trials: {10 - resumed} passed, {resumed} resumed;" in result.stdout
    board = dashboard(logs)
    assert len(board.groups) == 10
    assert all(len(g.sessions) == 1 for g in board.groups)
    assert {board.status(g) for g in board.groups} == {"STATUS_SUCCESS"}


def test_merge_refuses_a_trial_that_two_shards_ran(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_grid=GRID)
    pytester.runpytest("--hparams-json=a.json").assert_outcomes(passed=12)
    pytester.runpytest("--hparams-json=b.json", "-k", "num_units:16").assert_outcomes(passed=4)
    result = pytester.run(sys.executable, "-m", "pytest_hparams", "merge", "a.json", "b.json")
    assert result.ret == 2
    result.stderr.fnmatch_lines(
        ["error: test_grid.py::test_train[[]num_units:16-* is in both a.json and b.json*"]
    )


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


def test_merge_refuses_a_report_with_a_number_beyond_float64_in_one_line(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_grid=GRID)
    pytester.runpytest("--hparams-json=r.json").assert_outcomes(passed=12)
    put_huge(pytester.path / "r.json")
    result = pytester.run(sys.executable, "-m", "pytest_hparams", "merge", "r.json")
    assert result.ret == 2
    result.stderr.fnmatch_lines(["error: r.json: a malformed pytest-hparams report (*)*"])
    assert "Traceback" not in result.stderr.str()
