"""Shared fixtures: pytester, and TensorBoard's own hparams backend as a reader."""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import types
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# pytester drops the modules imported during a test when it ends: numpy must
# be loaded once per process before that (TensorBoard's backend pulls it in),
# and so must the plugin modules that load lazily, or a later run mixes a
# fresh `metrics.Metric` with a stale one.
import fasteners
import numpy  # noqa: F401
import pytest
from tensorboard import context
from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
from tensorboard.plugins import base_plugin
from tensorboard.plugins.hparams import (
    api_pb2,
    backend_context,
    get_experiment,
    list_session_groups,
)

import pytest_hparams.baseline
import pytest_hparams.collect
import pytest_hparams.events
import pytest_hparams.export
import pytest_hparams.logdir
import pytest_hparams.records
import pytest_hparams.table
import pytest_hparams.trial

try:
    import scipy.stats  # the gate on repeats imports it; it cannot load twice either
except ImportError:  # the `stats` extra is missing (nox's no_extras session)
    scipy = None

pytest_plugins = ["pytester"]


def needs(module: str, extra: str) -> pytest.MarkDecorator:
    """Skip a test where an optional extra is missing: nox's no_extras
    session runs the suite's core without them (CI installs them all)."""
    missing = importlib.util.find_spec(module) is None
    return pytest.mark.skipif(missing, reason=f"needs the {extra} extra ({module})")


# Loaded once, before any pytester run (see the comment above numpy's import).
LOADED_ONCE = (
    scipy,
    pytest_hparams.baseline,
    pytest_hparams.collect,
    pytest_hparams.events,
    pytest_hparams.export,
    pytest_hparams.logdir,
    pytest_hparams.records,
    pytest_hparams.table,
    pytest_hparams.trial,
)

# TensorBoard's backend reads through TensorFlow when it is installed, and
# TensorFlow aborts the process when its native modules load a second time,
# which pytester's dropping causes. In this process the backend uses its TF-free
# reader, as a `pip install tensorboard` without TensorFlow does (TensorBoard's
# own switch, //tensorboard/compat:no_tensorflow); the real `tensorboard`
# servers the tests start read through TensorFlow wherever it is installed.
sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))


# The tutorial's grid; BONUS in the environment shifts every accuracy, for
# tests that rerun it with other results.
GRID = """
import os
from pytest_hparams import hparam_grid, Metric

BONUS = float(os.environ.get("BONUS", "0"))

@hparam_grid(
    num_units=[16, 32, 64],
    learning_rate=[0.01, 0.1],
    optimizer=["adam", "sgd"],
    metrics=["accuracy", Metric("loss", goal="min")],
)
def test_train(num_units, learning_rate, optimizer):
    acc = num_units / 100 + (0.1 if optimizer == "adam" else 0.0) - learning_rate + BONUS
    return {"accuracy": acc, "loss": 1 - acc}
"""

# A sweep whose trials pass (a:1), fail (a:2) and error in a fixture (a:3).
MIXED_OUTCOMES = """
import pytest
from pytest_hparams import hparam_grid

@pytest.fixture
def data(request):
    if request.node.callspec.params["a"] == 3:
        raise RuntimeError("no data")

@hparam_grid(a=[1, 2, 3])
def test_mixed(a, data):
    assert a != 2
    return {"score": a}
"""

ALL_STATUSES = [
    api_pb2.STATUS_UNKNOWN,
    api_pb2.STATUS_SUCCESS,
    api_pb2.STATUS_FAILURE,
    api_pb2.STATUS_RUNNING,
]


@dataclass
class Dashboard:
    """What TensorBoard's HParams dashboard would show for a logdir."""

    experiment: Any  # api_pb2.Experiment
    groups: list[Any]  # api_pb2.SessionGroup, one per trial
    multiplexer: Any

    @property
    def hparam_names(self) -> set[str]:
        return {h.name for h in self.experiment.hparam_infos}

    @property
    def metric_names(self) -> set[str]:
        return {m.name.tag for m in self.experiment.metric_infos}

    def group(self, suffix: str) -> Any:
        found = [g for g in self.groups if g.name.endswith(suffix)]
        assert len(found) == 1, [g.name for g in self.groups]
        return found[0]

    @staticmethod
    def hparams(group: Any) -> dict[str, Any]:
        out = {}
        for name, value in group.hparams.items():
            out[name] = getattr(value, value.WhichOneof("kind"))
        return out

    @staticmethod
    def metrics(group: Any) -> dict[str, float]:
        return {m.name.tag: m.value for m in group.metric_values}

    @staticmethod
    def status(group: Any) -> str:
        (session,) = group.sessions
        return str(api_pb2.Status.Name(session.status))


def read_dashboard(logdir: Path) -> Dashboard:
    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, str(logdir))
    tb_context = base_plugin.TBContext(
        logdir=str(logdir), multiplexer=multiplexer, data_provider=provider
    )
    backend = backend_context.Context(tb_context)
    request = context.RequestContext()
    experiment = get_experiment.Handler(request, backend, "", api_pb2.GetExperimentRequest()).run()
    groups = list_session_groups.Handler(
        request,
        backend,
        "",
        api_pb2.ListSessionGroupsRequest(allowed_statuses=ALL_STATUSES, slice_size=100_000),
    ).run()
    return Dashboard(experiment, list(groups.session_groups), multiplexer)


def sweep_studies(storage: Any, test: str) -> list[Any]:
    """A sweep's Optuna studies in a storage, one per run, oldest first."""
    import optuna

    summaries = [
        s
        for s in optuna.get_all_study_summaries(storage, include_best_trial=False)
        if s.study_name.startswith(f"{test} @ ")
    ]
    summaries.sort(key=lambda s: s.datetime_start or datetime.datetime.min)
    return [optuna.load_study(study_name=s.study_name, storage=storage) for s in summaries]


def latest_study(storage: Any, test: str) -> Any:
    """The Optuna study of a sweep's latest run."""
    return sweep_studies(storage, test)[-1]


@pytest.fixture
def dashboard() -> Callable[[Path], Dashboard]:
    return read_dashboard


EXAMPLE = Path(__file__).resolve().parent.parent / "example_project"


def run_example(target: str, logdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Runs a file of the example project, recording into `logdir`.

    pytest-randomly is off, as in the example's own venv (its requirements do
    not install it): the docs show what that venv prints.
    """
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(EXAMPLE / target),
            f"--hparams-logdir={logdir}",
            "-p",
            "no:randomly",
            *args,
        ],
        capture_output=True,
        text=True,
        cwd=EXAMPLE,
        timeout=600,
    )


def run_once(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    run: Callable[[Path], subprocess.CompletedProcess[str]],
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """`run(folder)` once for the whole session, however many xdist workers
    ask: the first to take the lock runs it, the others read what it printed.
    The folder it recorded into is shared, so its users only read it."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the workers' base folders sit side by side in it
    folder = root / name
    done = folder / "completed.json"
    with fasteners.InterProcessLock(str(root / f"{name}.lock")):
        if not done.is_file():
            folder.mkdir(exist_ok=True)
            result = run(folder)
            fields = ("args", "returncode", "stdout", "stderr")
            done.write_text(json.dumps({f: getattr(result, f) for f in fields}))
    return subprocess.CompletedProcess(**json.loads(done.read_text())), folder


@pytest.fixture(scope="session")
def keras_example(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """The example's Keras sweep and its logdir, run once for every worker:
    it takes most of a minute."""
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("the Keras sweep needs tensorflow-cpu (pip install -e '.[tensorflow]')")
    return run_once(
        tmp_path_factory, "keras-example", lambda work: run_example("test_keras_sweep.py", work)
    )


@dataclass
class PrunedExample:
    """One run of the example's pruned Keras sweep: what pytest printed, the
    logdir it recorded into and its JSON report."""

    result: subprocess.CompletedProcess[str]
    logdir: Path
    report: Path


@pytest.fixture(scope="session")
def keras_pruned_example(tmp_path_factory: pytest.TempPathFactory) -> PrunedExample:
    """The example's pruned Keras sweep, run once into a fresh logdir (a
    second run into the same one would prune against this run's curves)."""
    for module in ("tensorflow", "optuna"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(
                f"the pruned Keras sweep needs {module} (pip install -e '.[test,tensorflow]')"
            )
    result, work = run_once(
        tmp_path_factory,
        "keras-pruned-example",
        lambda work: run_example(
            "test_keras_pruned.py", work / "logs", f"--hparams-json={work / 'report.json'}"
        ),
    )
    return PrunedExample(result, work / "logs", work / "report.json")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Starts `tensorboard` as it runs where TensorFlow is not installed, with
# TensorBoard's own switch (//tensorboard/compat:no_tensorflow): its built-in
# reader opens s3:// through boto3; TensorFlow 2.21's file system has no s3.
_WITHOUT_TENSORFLOW = """
import sys, types
sys.modules["tensorboard.compat.notf"] = types.ModuleType("tensorboard.compat.notf")
from tensorboard.main import run_main
sys.argv[0] = "tensorboard"
run_main()
"""


class TensorBoardServer:
    """A real `tensorboard` process on 127.0.0.1, with its default data server.

    It binds a port the system chooses (`--port 0`) and says which on its
    stderr: a port found free here could be taken by another process (an
    xdist worker's server) before tensorboard bound it.
    """

    def __init__(self, logdir: Path | str, without_tensorflow: bool = False) -> None:
        if without_tensorflow:
            command = [sys.executable, "-c", _WITHOUT_TENSORFLOW]
        else:
            found = shutil.which("tensorboard", path=str(Path(sys.executable).parent))
            assert found is not None, "the tensorboard command is not installed"
            command = [found]
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop)
        self._port: int | None = None
        self.process = subprocess.Popen(
            [*command, "--logdir", str(logdir), "--host", "127.0.0.1", "--port", "0"],
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )

    @property
    def port(self) -> int:
        """The port tensorboard bound, once it says so (within 60 s)."""
        deadline = time.monotonic() + 60
        while self._port is None:
            self._stderr.seek(0)
            said = re.search(rb"TensorBoard \S+ at http://127\.0\.0\.1:(\d+)/", self._stderr.read())
            if said is not None:
                self._port = int(said[1])
            else:
                assert self.process.poll() is None, "tensorboard exited"
                assert time.monotonic() < deadline, "tensorboard never said its port"
                time.sleep(0.1)
        return self._port

    def post(self, route: str, body: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/data/plugin/hparams/{route}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as response:
            return json.load(response)

    def session_groups(
        self, expected: int, with_metrics: int, timeout: float = 90.0
    ) -> list[dict[str, Any]]:
        """Polls until the groups and their metrics are served (loading is async)."""
        body = {
            "experimentName": "",
            "allowedStatuses": [api_pb2.Status.Name(s) for s in ALL_STATUSES],
            "startIndex": 0,
            "sliceSize": 100_000,
        }
        deadline = time.monotonic() + timeout
        groups: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "tensorboard exited"
            try:
                groups = self.post("session_groups", body).get("sessionGroups", [])
            except OSError:
                groups = []
            loaded = sum(1 for g in groups if g.get("metricValues"))
            if len(groups) >= expected and loaded >= with_metrics:
                return groups
            time.sleep(0.5)
        return groups

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._stderr.close()


@pytest.fixture
def tensorboard_server() -> Iterator[Callable[..., TensorBoardServer]]:
    servers: list[TensorBoardServer] = []

    def start(logdir: Path | str, without_tensorflow: bool = False) -> TensorBoardServer:
        servers.append(TensorBoardServer(logdir, without_tensorflow))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    # pytest-randomly is installed for the tests that run sweeps under it;
    # every other inner run keeps pytest's collection order, as the expected
    # tables and id lists assume. (pytester clears PYTEST_ADDOPTS as it
    # starts, so this is set after it.) A test that wants it deletes this.
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:randomly")
    return pytester


def run_merge(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """`python -m pytest_hparams merge ARGS` in the pytester's directory."""
    return pytester.run(sys.executable, "-m", "pytest_hparams", "merge", *args)


# Shared by the tests of several features: runs that read what pytest, the
# JSON report and the logdir say of each trial.
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


# 1e400 written out: json.loads gives an int that no float64 holds.
HUGE = "1" + "0" * 400


def put_huge(path: Path) -> None:
    """Writes HUGE as the first trial's accuracy in a baseline or JSON report."""
    data = json.loads(path.read_text())
    trials = data["sweeps"][0]["trials"] if "sweeps" in data else list(data["trials"].values())
    trials[0]["metrics"]["accuracy"] = 12345.5
    path.write_text(json.dumps(data).replace("12345.5", HUGE))
