"""What --hparams-logdir records, read back through TensorBoard's own hparams
backend (get_experiment and list_session_groups over an EventMultiplexer)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import GRID, MIXED_OUTCOMES, NON_ASCII, Dashboard, dashboard_statuses
from tensorboard.util import tensor_util

Read = Callable[[Path], Dashboard]


def test_every_trial_is_a_session_with_its_hparams_and_metrics(
    pytester: pytest.Pytester, dashboard: Read
) -> None:
    pytester.makepyfile(test_grid=GRID)
    pytester.runpytest("--hparams-logdir=logs").assert_outcomes(passed=12)
    board = dashboard(pytester.path / "logs")
    assert board.hparam_names == {"num_units", "learning_rate", "optimizer", "pytest.sweep"}
    assert board.metric_names == {"accuracy", "loss"}
    assert len(board.groups) == 12
    group = board.group("test_train[num_units:32-learning_rate:0.1-optimizer:adam]")
    # The Trial ID: the values first (the dashboard's column is narrow), then the node id.
    assert group.name == (
        "32, 0.1, adam · test_grid.py::test_train[num_units:32-learning_rate:0.1-optimizer:adam]"
    )
    assert board.hparams(group) == {
        "num_units": 32.0,
        "learning_rate": 0.1,
        "optimizer": "adam",
        "pytest.sweep": "test_train in test_grid.py",
    }
    assert board.metrics(group) == pytest.approx({"accuracy": 0.32, "loss": 0.68})
    assert {board.status(g) for g in board.groups} == {"STATUS_SUCCESS"}


def test_the_config_declares_domains_and_the_sweep_name(
    pytester: pytest.Pytester, dashboard: Read
) -> None:
    pytester.makepyfile(
        test_tb="""
        from tensorboard.plugins.hparams import summary_v2 as hp
        from pytest_hparams import hparam_grid

        HP_LR = hp.HParam("lr", hp.RealInterval(0.001, 1.0), display_name="Learning rate")

        @hparam_grid(HP_LR, lr=[0.01, 0.1], units=hp.Discrete([16, 32]),
                     metrics=[hp.Metric("accuracy", display_name="Accuracy")])
        def test_tb(lr, units):
            return {"accuracy": lr * units}
        """
    )
    pytester.runpytest("--hparams-logdir=logs").assert_outcomes(passed=4)
    board = dashboard(pytester.path / "logs")
    infos = {h.name: h for h in board.experiment.hparam_infos}
    assert infos["lr"].display_name == "Learning rate"
    assert (infos["lr"].domain_interval.min_value, infos["lr"].domain_interval.max_value) == (
        0.001,
        1.0,
    )
    assert [v.number_value for v in infos["units"].domain_discrete.values] == [16, 32]
    assert [v.string_value for v in infos["pytest.sweep"].domain_discrete.values] == [
        "test_tb in test_tb.py"
    ]
    assert board.experiment.metric_infos[0].display_name == "Accuracy"


def test_failed_and_errored_trials_end_as_failure(
    pytester: pytest.Pytester, dashboard: Read
) -> None:
    pytester.makepyfile(test_mixed=MIXED_OUTCOMES)
    pytester.runpytest("--hparams-logdir=logs").assert_outcomes(passed=1, failed=1, errors=1)
    board = dashboard(pytester.path / "logs")
    statuses = {g.name.split("[")[1]: board.status(g) for g in board.groups}
    assert statuses == {
        "a:1]": "STATUS_SUCCESS",
        "a:2]": "STATUS_FAILURE",
        "a:3]": "STATUS_FAILURE",
    }


def test_undeclared_returned_metrics_are_added_to_the_config(
    pytester: pytest.Pytester, dashboard: Read
) -> None:
    pytester.makepyfile(
        test_extra="""
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1, 2], metrics=["accuracy"])
        def test_extra(a):
            return {"accuracy": a / 10, "epochs_run": 3}
        """
    )
    pytester.runpytest("--hparams-logdir=logs").assert_outcomes(passed=2)
    board = dashboard(pytester.path / "logs")
    assert board.metric_names == {"accuracy", "epochs_run"}
    assert board.metrics(board.group("[a:2]")) == pytest.approx({"accuracy": 0.2, "epochs_run": 3})


def test_a_rerun_replaces_each_session_instead_of_adding_one(
    pytester: pytest.Pytester, dashboard: Read, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_grid=GRID)
    pytester.runpytest("--hparams-logdir=logs").assert_outcomes(passed=12)
    monkeypatch.setenv("BONUS", "1")
    pytester.runpytest("--hparams-logdir=logs").assert_outcomes(passed=12)
    board = dashboard(pytester.path / "logs")
    assert len(board.groups) == 12
    assert all(len(g.sessions) == 1 for g in board.groups)
    group = board.group("[num_units:16-learning_rate:0.01-optimizer:sgd]")
    assert board.metrics(group)["accuracy"] == pytest.approx(1.15)
    event_files = list((pytester.path / "logs").rglob("*tfevents*"))
    assert len(event_files) == 13  # one per trial and the config
    assert not list((pytester.path / "logs").rglob(".pending*"))


def test_a_partial_rerun_keeps_other_trials_and_sweeps_in_the_config(
    pytester: pytest.Pytester, dashboard: Read, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        test_grid=GRID,
        test_other="""
        from pytest_hparams import hparam_grid

        @hparam_grid(depth=[1, 2], metrics=["f1"])
        def test_other(depth):
            return {"f1": depth / 2}
        """,
    )
    pytester.runpytest("--hparams-logdir=logs").assert_outcomes(passed=14)
    monkeypatch.setenv("BONUS", "1")
    result = pytester.runpytest("--hparams-logdir=logs", "-k", "test_train and optimizer:sgd")
    result.assert_outcomes(passed=6, deselected=8)
    board = dashboard(pytester.path / "logs")
    assert len(board.groups) == 14
    assert board.hparam_names == {
        "num_units",
        "learning_rate",
        "optimizer",
        "depth",
        "pytest.sweep",
    }
    assert board.metric_names == {"accuracy", "loss", "f1"}
    infos = {h.name: h for h in board.experiment.hparam_infos}
    assert {v.string_value for v in infos["pytest.sweep"].domain_discrete.values} == {
        "test_train in test_grid.py",
        "test_other in test_other.py",
    }
    changed = board.group("[num_units:16-learning_rate:0.01-optimizer:sgd]")
    kept = board.group("[num_units:16-learning_rate:0.01-optimizer:adam]")
    assert board.metrics(changed)["accuracy"] == pytest.approx(1.15)
    assert board.metrics(kept)["accuracy"] == pytest.approx(0.25)
    assert board.metrics(board.group("[depth:2]")) == pytest.approx({"f1": 1.0})


def test_run_directories_never_leave_the_logdir_and_never_collide(
    pytester: pytest.Pytester, dashboard: Read
) -> None:
    pytester.makepyfile(
        test_names="""
        from pytest_hparams import hparam_grid

        @hparam_grid(name=["../x", "/", "..", "a/b", "a_b", "x" * 500, "\\\\server\\\\share"])
        def test_names(name):
            return {"n": len(name)}
        """
    )
    pytester.runpytest("--hparams-logdir=logs").assert_outcomes(passed=7)
    logs = (pytester.path / "logs").resolve()
    caches = {".pytest_cache", "__pycache__"}
    assert {p.name for p in pytester.path.iterdir()} - caches == {"logs", "test_names.py"}
    files = list(logs.rglob("*tfevents*"))
    assert len(files) == 8
    assert all(f.resolve().is_relative_to(logs) for f in files)
    assert all(len(part) < 100 for f in files for part in f.relative_to(logs).parts[:-1])
    board = dashboard(logs)
    assert sorted(board.metrics(g)["n"] for g in board.groups) == [1, 2, 3, 3, 4, 13, 500]


def test_trial_log_writes_curves_and_the_final_value_is_the_last_point(
    pytester: pytest.Pytester, dashboard: Read
) -> None:
    pytester.makepyfile(
        test_curve="""
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1])
        def test_curve(a, trial):
            for epoch in range(5):
                trial.log(epoch, accuracy=epoch / 10, loss=1 - epoch / 10)
            return {"accuracy": 0.45}
        """
    )
    pytester.runpytest("--hparams-logdir=logs").assert_outcomes(passed=1)
    board = dashboard(pytester.path / "logs")
    (run,) = [r for r in board.multiplexer.Runs() if r.endswith("a=1")]
    points = [
        (e.step, tensor_util.make_ndarray(e.tensor_proto).item())
        for e in board.multiplexer.Tensors(run, "loss")
    ]
    assert [step for step, _ in points] == [0, 1, 2, 3, 4]
    assert [value for _, value in points] == pytest.approx([1.0, 0.9, 0.8, 0.7, 0.6])
    accuracy = board.multiplexer.Tensors(run, "accuracy")
    assert [e.step for e in accuracy] == [0, 1, 2, 3, 4, 4]
    assert board.metrics(board.groups[0])["accuracy"] == pytest.approx(0.45)


INTERRUPTED = """
import os, signal, time
from pytest_hparams import hparam_grid

@hparam_grid(a=[1, 2, 3])
def test_stop(a, trial):
    trial.log(0, score=0.0)
    if a == int(os.environ.get("STOP_AT", "0")):
        {action}
    return {{"score": a}}
"""

# A real Ctrl-C: SIGINT to the pytest process, which Python turns into
# KeyboardInterrupt inside the running trial. The child sets Python's own
# handler first: a suite started with SIGINT ignored (nohup, some CI
# runners) hands that on to it.
CTRL_C = (
    "signal.signal(signal.SIGINT, signal.default_int_handler); "
    "os.kill(os.getpid(), signal.SIGINT); time.sleep(10)"
)


def test_ctrl_c_mid_sweep_leaves_finished_trials_and_never_a_false_success(
    pytester: pytest.Pytester, dashboard: Read, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_stop=INTERRUPTED.format(action=CTRL_C))
    monkeypatch.setenv("STOP_AT", "2")
    result = pytester.runpytest_subprocess("--hparams-logdir=logs")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    board = dashboard(pytester.path / "logs")
    statuses = {g.name.rsplit("[", 1)[1]: board.status(g) for g in board.groups}
    assert statuses == {"a:1]": "STATUS_SUCCESS", "a:2]": "STATUS_UNKNOWN"}
    assert board.metrics(board.group("[a:1]")) == {"score": 1.0}


def test_ctrl_c_while_rerunning_keeps_the_recorded_session(
    pytester: pytest.Pytester, dashboard: Read, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_stop=INTERRUPTED.format(action=CTRL_C))
    pytester.runpytest("--hparams-logdir=logs").assert_outcomes(passed=3)
    monkeypatch.setenv("STOP_AT", "1")
    result = pytester.runpytest_subprocess("--hparams-logdir=logs")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    board = dashboard(pytester.path / "logs")
    assert len(board.groups) == 3
    assert board.status(board.group("[a:1]")) == "STATUS_SUCCESS"
    assert board.metrics(board.group("[a:1]")) == {"score": 1.0}


def test_a_crashed_process_leaves_every_finished_trial_readable(
    pytester: pytest.Pytester, dashboard: Read, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_stop=INTERRUPTED.format(action="os._exit(3)"))
    monkeypatch.setenv("STOP_AT", "3")
    result = pytester.runpytest_subprocess("--hparams-logdir=logs")
    assert result.ret == 3
    board = dashboard(pytester.path / "logs")
    statuses = {g.name.rsplit("[", 1)[1]: board.status(g) for g in board.groups}
    assert statuses == {
        "a:1]": "STATUS_SUCCESS",
        "a:2]": "STATUS_SUCCESS",
        "a:3]": "STATUS_UNKNOWN",
    }
    assert board.metric_names == {"score"}


def test_a_trial_killed_before_it_logs_anything_already_shows_as_started(
    pytester: pytest.Pytester, dashboard: Read
) -> None:
    # Its session start is written before the body runs, not buffered until
    # the trial ends: SIGKILL leaves a session TensorBoard reads as unknown.
    pytester.makepyfile(
        test_stop="""
        import os, signal
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1, 2, 3])
        def test_stop(a):
            if a == 2:
                os.kill(os.getpid(), signal.SIGKILL)
            return {"score": a}
        """
    )
    result = pytester.runpytest_subprocess("--hparams-logdir=logs")
    assert result.ret == -9
    board = dashboard(pytester.path / "logs")
    statuses = {g.name.rsplit("[", 1)[1]: board.status(g) for g in board.groups}
    assert statuses == {"a:1]": "STATUS_SUCCESS", "a:2]": "STATUS_UNKNOWN"}


MANY = """
import os, signal, time
from pytest_hparams import hparam_grid

@hparam_grid(a=list(range(100)))
def test_many(a, trial):
    trial.log(0, score=float(a))
    if a == 7:
        {action}
    return {{"score": a}}
"""


def run_dirs(logdir: Path) -> dict[str, list[str]]:
    """Each directory under the logdir with the files in it, as paths from the logdir."""
    return {
        d.relative_to(logdir).as_posix(): sorted(p.name for p in d.iterdir() if p.is_file())
        for d in logdir.rglob("*")
        if d.is_dir()
    }


@pytest.mark.parametrize(
    "action, args",
    [("assert False", ("-x",)), (CTRL_C, ())],
    ids=["stopped by -x", "ctrl-c"],
)
def test_a_run_cut_short_leaves_run_directories_only_for_trials_that_ran(
    pytester: pytest.Pytester, dashboard: Read, action: str, args: tuple[str, ...]
) -> None:
    pytester.makepyfile(test_many=MANY.format(action=action))
    result = pytester.runpytest_subprocess("--hparams-logdir=logs", *args)
    assert result.ret in (pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.INTERRUPTED)
    found = run_dirs(pytester.path / "logs")
    runs = {path: files for path, files in found.items() if "=" in path}
    assert sorted(runs, key=lambda p: int(p.rsplit("=", 1)[1])) == [
        f"test_many.py/test_many/a={i}" for i in range(8)
    ]
    # One event file each, and nothing of a trial that did not run.
    assert all(len(files) == 1 and "tfevents" in files[0] for files in runs.values()), runs
    assert set(found) - set(runs) == {"test_many.py", "test_many.py/test_many"}
    assert len(dashboard(pytester.path / "logs").groups) == 8


def test_a_trial_whose_logdir_a_fixture_uses_still_starts_visibly(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_many="""
        import os
        import pytest
        from pytest_hparams import hparam_grid

        @pytest.fixture
        def outdir(trial):
            return trial.logdir

        @hparam_grid(a=list(range(100)))
        def test_many(a, trial, outdir):
            files = sorted(os.listdir(outdir))
            assert [f for f in files if "tfevents" in f and not f.startswith(".")] == files
            return {"m": 1.0}
        """
    )
    pytester.runpytest("--hparams-logdir=logs").assert_outcomes(passed=100)


def test_a_trial_skipped_in_a_fixture_that_used_its_logdir_leaves_no_directory(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_few="""
        import pytest
        from pytest_hparams import hparam_grid

        @pytest.fixture
        def checkpoints(trial):
            where = trial.logdir / "ckpt"
            if trial.hparams["a"] % 3 == 0:
                pytest.skip("no checkpoints for these")
            return where

        @hparam_grid(a=list(range(10)))
        def test_few(a, checkpoints):
            return {"m": 1.0}
        """
    )
    pytester.runpytest("--hparams-logdir=logs").assert_outcomes(passed=6, skipped=4)
    runs = run_dirs(pytester.path / "logs")
    assert sorted(p for p in runs if "=" in p) == [
        f"test_few.py/test_few/a={a}" for a in (1, 2, 4, 5, 7, 8)
    ]


def test_a_tests_own_os_wait_gets_its_own_child(pytester: pytest.Pytester) -> None:
    # The plugin starts no process of its own: a test's os.wait() gets its own child.
    pytester.makepyfile(
        test_wait="""
        import os, time
        from pytest_hparams import hparam_grid

        @hparam_grid(a=list(range(100)))
        def test_fork(a):
            if a in (0, 50, 99):
                pid = os.fork()
                if pid == 0:
                    os._exit(7)
                assert os.wait() == (pid, 7 << 8)
            return {"x": a}
        """
    )
    pytester.runpytest_subprocess("--hparams-logdir=logs").assert_outcomes(passed=100)


def test_a_rerun_replaces_its_first_attempt(pytester: pytest.Pytester, dashboard: Read) -> None:
    pytester.makepyfile(
        test_many="""
        from pathlib import Path
        from pytest_hparams import hparam_grid

        @hparam_grid(a=list(range(100)))
        def test_many(a, trial):
            tries = Path(f"tries-{a}")
            tries.write_text(tries.read_text() + "x" if tries.exists() else "x")
            attempt = len(tries.read_text())
            trial.log(attempt, score=float(attempt))
            assert a != 5 or attempt == 2, "flaky"
            return {"score": attempt}
        """
    )
    pytester.runpytest("--hparams-logdir=logs", "-p", "rerunfailures", "--reruns", "1")
    board = dashboard(pytester.path / "logs")
    assert len(board.groups) == 100
    group = board.group("[a:5]")
    assert (board.status(group), board.metrics(group)) == ("STATUS_SUCCESS", {"score": 2.0})
    points = board.multiplexer.Tensors(group.sessions[0].name, "score")
    assert [(p.step, tensor_util.make_ndarray(p.tensor_proto).item()) for p in points] == [
        (2, 2.0),
        (2, 2.0),
    ]  # the second attempt's point and its final value; nothing of the first
    assert len(run_dirs(pytester.path / "logs")["test_many.py/test_many/a=5"]) == 1


@pytest.mark.parametrize("xdist", [(), ("-n", "1")], ids=["in-process", "xdist"])
def test_a_trials_record_serializes_for_plugins_that_write_reports(
    pytester: pytest.Pytester, xdist: tuple[str, ...]
) -> None:
    # xdist and pytest-reportlog serialize reports through this hook; under
    # xdist the controller's copy is serialized a second time.
    pytester.makepyfile(
        test_one="""
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1])
        def test_one(a):
            return {"score": 0.5}
        """
    )
    pytester.makeconftest(
        """
        import json

        CONFIG = []

        def pytest_configure(config):
            CONFIG.append(config)

        def pytest_runtest_logreport(report):
            if report.when == "teardown":
                hook = CONFIG[0].hook
                data = hook.pytest_report_to_serializable(config=CONFIG[0], report=report)
                record = json.loads(json.dumps(data["hparams_trial"]))
                print("SERIALIZED", record["outcome"], record["metrics"], record["hparams"])
        """
    )
    result = pytester.runpytest("-s", *xdist)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*SERIALIZED passed {'score': 0.5} {'a': 1}*"])


def test_a_step_tensorboards_hparams_view_cannot_read_fails_the_trial_in_one_line(
    pytester: pytest.Pytester, dashboard: Read
) -> None:
    pytester.makepyfile(
        test_step="""
        from pytest_hparams import hparam_grid

        @hparam_grid(step=[10, 2**31])
        def test_step(step, trial):
            trial.log(step, acc=0.9)
            return {"acc": 0.9}
        """
    )
    result = pytester.runpytest("--hparams-logdir=logs")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*ValueError: trial.log step must fit in 32 bits, -2**31 to 2**31-1 (got 2147483648)"]
    )
    board = dashboard(pytester.path / "logs")  # the view still reads
    statuses = sorted(board.status(g) for g in board.groups)
    assert statuses == ["STATUS_FAILURE", "STATUS_SUCCESS"]


def test_importing_the_plugin_imports_neither_tensorflow_nor_tensorboard() -> None:
    code = (
        "import sys, pytest_hparams, pytest_hparams.plugin;"
        "print(sorted(m for m in ('tensorflow', 'tensorboard', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_run_without_sweeps_imports_none_of_the_heavy_packages(
    pytester: pytest.Pytester,
) -> None:
    # The plugin loads in every pytest run of a project that installs it: its
    # own modules import at their tops, the extras and TensorBoard only where used.
    pytester.makeconftest(
        """
        import sys

        def pytest_unconfigure(config):
            heavy = ("optuna", "tensorboard", "numpy", "scipy", "fsspec", "google.protobuf")
            loaded = [m for m in heavy if m in sys.modules]
            print("SWEEP MODULES", loaded)
        """
    )
    pytester.makepyfile(test_plain="def test_a():\n    pass\n")
    result = pytester.runpytest_subprocess("-s")
    result.stdout.fnmatch_lines(["SWEEP MODULES []"])


def test_a_recorded_sweep_without_tensorflow_code_never_imports_tensorflow(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_grid=GRID)
    pytester.makeconftest(
        """
        import sys

        def pytest_unconfigure():
            print("TENSORFLOW IMPORTED:", "tensorflow" in sys.modules)
        """
    )
    result = pytester.runpytest_subprocess("--hparams-logdir=logs", "-s")
    result.assert_outcomes(passed=12)
    result.stdout.fnmatch_lines(["TENSORFLOW IMPORTED: False"])


def test_a_real_tensorboard_server_serves_the_sessions_metrics_and_curves(
    pytester: pytest.Pytester, tensorboard_server: Callable[[Path], Any]
) -> None:
    pytester.makepyfile(
        test_served="""
        from pytest_hparams import hparam_grid

        @hparam_grid(units=[16, 32], opt=["adam", "sgd"], metrics=["accuracy"])
        def test_served(units, opt, trial):
            for epoch in range(3):
                trial.log(epoch, train_loss=1 / (epoch + 1))
            assert opt == "adam" or units == 32
            return {"accuracy": units / 100}
        """
    )
    pytester.runpytest("--hparams-logdir=logs").assert_outcomes(passed=3, failed=1)
    server = tensorboard_server(pytester.path / "logs")
    groups = server.session_groups(expected=4, with_metrics=3)
    assert len(groups) == 4
    served = {
        g["name"].rsplit("[", 1)[1]: (g["sessions"][0]["status"], g["metricValues"]) for g in groups
    }
    status, metrics = served["units:32-opt:adam]"]
    assert status == "STATUS_SUCCESS"
    assert metrics[0]["value"] == pytest.approx(0.32)
    assert served["units:16-opt:sgd]"][0] == "STATUS_FAILURE"
    tags = server.get("/data/plugin/scalars/tags")
    assert "train_loss" in tags["test_served.py/test_served/units=32-opt=adam"]


def test_xdist_workers_give_the_same_sessions_and_table_as_one_process(
    pytester: pytest.Pytester, dashboard: Read
) -> None:
    pytester.makepyfile(test_grid=GRID)
    serial = pytester.runpytest_subprocess("--hparams-logdir=serial")
    parallel = pytester.runpytest_subprocess("-n", "2", "--hparams-logdir=parallel")
    parallel.assert_outcomes(passed=12)

    def table(result: pytest.RunResult) -> list[str]:
        start = next(i for i, line in enumerate(result.outlines) if "hparams: " in line)
        return [re.sub(r"\d+\.\d+s", "", line) for line in result.outlines[start : start + 16]]

    assert table(parallel) == [line.replace("serial", "parallel") for line in table(serial)]
    one, two = dashboard(pytester.path / "serial"), dashboard(pytester.path / "parallel")
    assert one.experiment.hparam_infos == two.experiment.hparam_infos
    assert sorted((g.name, str(one.metrics(g))) for g in one.groups) == sorted(
        (g.name, str(two.metrics(g))) for g in two.groups
    )


def test_a_logdir_inside_the_project_is_never_walked_for_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_grid=GRID)
    pytester.runpytest("--hparams-logdir=logs").assert_outcomes(passed=12)
    # A test file that lands in the logdir (say, copied there) is not collected.
    (pytester.path / "logs" / "test_stray.py").write_text("def test_stray():\n    pass\n")
    result = pytester.runpytest("--hparams-logdir=logs", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["12 tests collected*"])
    pytester.runpytest("--collect-only", "-q").stdout.fnmatch_lines(["13 tests collected*"])


def test_a_trial_using_pyfakefs_is_recorded_on_the_real_file_system(
    pytester: pytest.Pytester, dashboard: Read
) -> None:
    pytest.importorskip("pyfakefs")
    pytester.makepyfile(
        test_fake="""
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1, 2])
        def test_fake(a, fs, trial):
            fs.create_file("/data/x.txt", contents="in the fake file system")
            trial.log(0, score=float(a))
            return {"score": a}
        """
    )
    result = pytester.runpytest_subprocess("--hparams-logdir=logs", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    board = dashboard(pytester.path / "logs")
    assert sorted(board.metrics(g)["score"] for g in board.groups) == [1.0, 2.0]
    assert {board.status(g) for g in board.groups} == {"STATUS_SUCCESS"}


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux's unshare")
def test_a_sweep_run_as_pid_1_behaves_as_one_run_normally(
    pytester: pytest.Pytester, dashboard: Read
) -> None:
    # `docker run image pytest`: pytest is PID 1, the parent of every orphan.
    pytester.makepyfile(
        test_init="""
        import os
        from pytest_hparams import hparam_grid

        @hparam_grid(a=list(range(20)))
        def test_init(a):
            assert os.getpid() == 1  # pytest itself is the init of its namespace
            pid = os.fork()
            if pid == 0:
                os._exit(a % 5)
            assert os.wait() == (pid, (a % 5) << 8)  # its own child, nobody else's
            return {"x": a}
        """
    )
    probe = subprocess.run(["unshare", "--fork", "--pid", "--mount-proc", "true"], check=False)
    if probe.returncode != 0:
        pytest.skip("unshare cannot make a PID namespace here (not root?)")
    command = ["unshare", "--fork", "--pid", "--mount-proc", sys.executable, "-m", "pytest"]
    result = pytester.run(*command, "--hparams-logdir=logs", "-p", "no:randomly", "-q")
    result.stdout.fnmatch_lines(["*20 passed*"])
    assert result.ret == 0
    assert len(dashboard(pytester.path / "logs").groups) == 20


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


DISK_FULL = patching_conftest(
    "TrialWriter.finish",
    """
    def replacement(self, *args, **kwargs):
        if "a=2" in str(self.path):
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        return real(self, *args, **kwargs)
    """,
)


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


def test_a_trials_session_spans_its_fixtures(
    pytester: pytest.Pytester, dashboard: Callable[[Path], Dashboard]
) -> None:
    # A trial starts at its setup: a warm-up in a fixture is part of its time.
    pytester.makepyfile(
        test_w="""
        import time

        import pytest
        from pytest_hparams import hparam_grid

        @pytest.fixture
        def warm_up():
            time.sleep(1.0)

        @hparam_grid(lr=[0.1], metrics=["acc"])
        def test_w(lr, warm_up):
            return {"acc": 1.0}
        """
    )
    pytester.runpytest("--hparams-logdir=logs").assert_outcomes(passed=1)
    (group,) = dashboard(pytester.path / "logs").groups
    (session,) = group.sessions
    assert session.end_time_secs - session.start_time_secs >= 1.0


@pytest.mark.parametrize(
    "clean",
    [
        "for f in trial.logdir.glob('events.out.tfevents*'):\n        f.unlink()",
        "shutil.rmtree(trial.logdir)\n    trial.logdir.mkdir()",
        "shutil.rmtree(trial.logdir)",
    ],
    ids=["unlinked", "emptied", "removed"],
)
def test_a_fixture_that_empties_the_trials_logdir_keeps_its_session(
    pytester: pytest.Pytester, dashboard: Callable[[Path], Dashboard], clean: str
) -> None:
    # The session is opened at setup: a fixture that deletes what it finds
    # in trial.logdir deletes the open file, which is written back at the end.
    pytester.makepyfile(
        test_stale=f"""
import shutil

import pytest
from pytest_hparams import hparam_grid

@pytest.fixture
def fresh_dir(trial):
    {clean}
    yield

@hparam_grid(a=[1, 2], metrics=["score"])
def test_stale(a, fresh_dir, trial):
    trial.log(0, score=a / 10)
    return {{"score": a}}
"""
    )
    pytester.runpytest("--hparams-logdir=logs").assert_outcomes(passed=2)
    read = dashboard(pytester.path / "logs")
    assert {Dashboard.status(g) for g in read.groups} == {"STATUS_SUCCESS"}
    assert sorted(Dashboard.metrics(g)["score"] for g in read.groups) == [1.0, 2.0]
