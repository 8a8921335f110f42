"""One pruning study shared by two machines: two pytest processes, each with
two xdist workers and its shard of the sweep, sharing the study through a
PostgreSQL database or through the journal file of one shared local logdir.

The PostgreSQL server is the one HPARAMS_TEST_POSTGRES names (`.ci/postgres`
starts one and sets it); without it, these tests start their own from the
system's PostgreSQL binaries.
"""

from __future__ import annotations

import collections
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import pytest

# The PostgreSQL dialect, loaded once, before Optuna reads a study through it:
# pytester drops the modules a test imported when it ends (see conftest.py),
# and SQLAlchemy warns when the dialect is loaded a second time.
import sqlalchemy.dialects.postgresql
from conftest import free_port, run_merge

from pytest_hparams.pruning import JOURNAL

# Shard 1/2 runs the "high" trials and shard 2/2 the "low" ones: a sweep's
# combinations are sorted, then dealt to the shards in turn, and the last
# hparam varies fastest. n_startup_trials=4: nothing is pruned before four
# trials of the study completed, so one machine's four trials alone never are.
SWEEP = """
import optuna
from pytest_hparams import hparam_grid

PRUNER = optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=0)

@hparam_grid(seed=[0, 1, 2, 3], curve=["high", "low"], pruner=PRUNER, metrics=["acc"])
def test_train(seed, curve, trial):
    top = 0.9 if curve == "high" else 0.3
    for step in range(3):
        acc = top * (step + 1) / 3 + seed / 100
        trial.log(step, acc=acc)
    return {"acc": acc}
"""
# Every worker of both machines waits for the others before its first trial,
# so the machines' trials run at the same time, however long each takes to
# start (and all four workers open the storage at once).
TOGETHER = """
import os, time
from pathlib import Path
import pytest

@pytest.fixture(scope="session", autouse=True)
def every_worker_starts_together():
    here = Path(__file__).parent
    (here / f"arrived-{os.getpid()}").touch()
    deadline = time.monotonic() + 60
    while len(list(here.glob("arrived-*"))) < 4:
        assert time.monotonic() < deadline, "the other machine's workers never arrived"
        time.sleep(0.01)
"""
STUDY = "test_shared.py::test_train @ shared"
HIGH = {f"test_shared.py::test_train[seed:{s}-curve:high]" for s in range(4)}
LOW = {f"test_shared.py::test_train[seed:{s}-curve:low]" for s in range(4)}
# A trial's line in pytest's -v output under xdist: "[gw1] [ 25%] PASSED test_...".
SAID = re.compile(r"^\[gw\d+\] \[ *\d+%\] (\w+) (test_shared\.py::\S+)")
# A Debian or Ubuntu install (postgresql-NN), else binaries on the PATH.
POSTGRES_BINDIRS = "/usr/lib/postgresql/*/bin"


# --- a PostgreSQL server, and a database for each test --------------------------------


def _postgres_bindir() -> Path:
    found = sorted(glob.glob(f"{POSTGRES_BINDIRS}/initdb"), key=lambda p: int(p.split("/")[-3]))
    initdb = found[-1] if found else shutil.which("initdb")
    if initdb is None:
        pytest.fail(
            "these tests need a PostgreSQL server, and none is installed: apt-get install "
            "postgresql (or set HPARAMS_TEST_POSTGRES to a server's URL, as .ci/postgres does)",
            pytrace=False,
        )
    return Path(initdb).parent


def _as_server_user(*command: str | Path) -> subprocess.CompletedProcess[str]:
    # PostgreSQL refuses to run as root; as root, it runs as the package's own user.
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run([*prefix, *map(str, command)], capture_output=True, text=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL server's `postgres` database, as a superuser:
    HPARAMS_TEST_POSTGRES's, else a server started here as `.ci/postgres` does."""
    url = os.environ.get("HPARAMS_TEST_POSTGRES")
    if url:
        yield url
        return
    bindir = _postgres_bindir()
    # Not under tmp_path: its parents are private to the user running pytest,
    # and the server may run as another.
    data = Path(tempfile.mkdtemp(prefix="pytest-hparams-postgres-"))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
    port = free_port()
    try:
        # Trust on 127.0.0.1, no fsync (-N, -F): a server for tests, gone when they end.
        for command in [
            [bindir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-N"],
            [bindir / "pg_ctl", "start", "-D", data, "-s", "-w", "-l", data / "server.log",
             "-o", f"-h 127.0.0.1 -p {port} -k {data} -F"],
        ]:  # fmt: skip
            done = _as_server_user(*command)
            if done.returncode != 0:
                log = data / "server.log"
                shown = done.stderr + (log.read_text() if log.exists() else "")
                pytest.fail(f"{' '.join(map(str, command))} failed:\n{shown}", pytrace=False)
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        _as_server_user(bindir / "pg_ctl", "stop", "-D", data, "-s", "-m", "immediate")
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A new, empty database of its own for one test, dropped after it."""
    server = sqlalchemy.make_url(postgres_server)
    name = f"hparams_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
        yield server.set(database=name).render_as_string(hide_password=False)
        with admin.connect() as connection:  # FORCE: the study's engine may still hold one
            connection.execute(sqlalchemy.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


# --- two machines -----------------------------------------------------------------------


@dataclass
class Shared:
    """Where both machines keep the study, and how each is told so."""

    path: Path
    url: str | None = None
    ran: dict[int, pytest.RunResult] = field(default_factory=dict)

    def options(self, shard: int) -> list[str]:
        if self.url is None:  # one local logdir: the study is its journal file
            return ["--hparams-logdir=logs"]
        # Machines that share no file system: a logdir each, the study in the database.
        return [f"--hparams-logdir=logs-{shard}", f"--hparams-storage={self.url}"]

    def study(self) -> Any:
        if self.url is None:
            storage: Any = optuna.storages.JournalStorage(
                optuna.storages.journal.JournalFileBackend(str(self.path / "logs" / JOURNAL))
            )
        else:
            storage = self.url
        return optuna.load_study(study_name=STUDY, storage=storage)


@pytest.fixture(params=["postgres", "journal"])
def shared(request: pytest.FixtureRequest, pytester: pytest.Pytester) -> Shared:
    pytester.makepyfile(test_shared=SWEEP)
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    return Shared(pytester.path, url)


def machine(shared: Shared, shard: int) -> list[str]:
    """The command line of the machine running shard `shard` of 2."""
    return [
        sys.executable, "-m", "pytest", "-p", "no:randomly", "-n", "2", "-v",
        f"--hparams-shard={shard}/2", f"--hparams-json=shard{shard}.json",
        "--hparams-study=shared",  # the machines of one CI run share their study
        *shared.options(shard),
    ]  # fmt: skip


def run(pytester: pytest.Pytester, shared: Shared, *shards: int) -> None:
    """Starts a machine for each shard, all at once, and waits for them."""
    files = {
        shard: (pytester.path / f"out{shard}", pytester.path / f"err{shard}") for shard in shards
    }
    start = time.monotonic()
    processes = {}
    try:
        for shard, (out, err) in files.items():
            with out.open("w") as stdout, err.open("w") as stderr:
                processes[shard] = pytester.popen(machine(shared, shard), stdout, stderr)
        for shard, process in processes.items():
            ret = process.wait(timeout=120)
            out, err = (f.read_text().splitlines() for f in files[shard])
            shared.ran[shard] = pytest.RunResult(ret, out, err, time.monotonic() - start)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()


def report(path: Path) -> dict[str, dict[str, Any]]:
    """Each trial of a JSON report, by node id (each once)."""
    (sweep,) = json.loads(path.read_text())["sweeps"]
    trials = {t["nodeid"]: t for t in sweep["trials"]}
    assert len(trials) == len(sweep["trials"]), sweep["trials"]
    return trials


def agree(pytester: pytest.Pytester, shared: Shared) -> dict[str, str]:
    """Checks that pytest's lines, each machine's report, the merged report
    and the study in the storage tell the same trials with the same outcomes,
    each once; returns each trial's outcome."""
    every: dict[str, str] = {}
    for shard, result in shared.ran.items():
        assert result.ret == pytest.ExitCode.OK, "\n".join(result.outlines + result.errlines)
        said = [m.groups() for m in map(SAID.match, result.outlines) if m]
        reported = {
            n: t["outcome"] for n, t in report(pytester.path / f"shard{shard}.json").items()
        }
        assert sorted((nodeid, word.lower()) for word, nodeid in said) == sorted(reported.items())
        assert result.parseoutcomes() == collections.Counter(reported.values())
        assert not every.keys() & reported.keys()  # no trial ran on both machines
        every.update(reported)
    merged = run_merge(pytester, *(f"shard{s}.json" for s in shared.ran), "-o", "merged.json")
    absent = sorted({1, 2} - shared.ran.keys())  # a machine alone: merge says so, and fails
    assert merged.ret == (1 if absent else 0), "\n".join(merged.outlines + merged.errlines)
    for k in absent:
        assert (
            f"merge: shard {k} of 2 not among the reports: their trials are not in this table"
            in (merged.outlines)
        )
    trials = report(pytester.path / "merged.json")
    assert {n: t["outcome"] for n, t in trials.items()} == every

    study = shared.study().get_trials()
    by_node = collections.Counter(t.user_attrs["pytest_nodeid"] for t in study)
    assert by_node == dict.fromkeys(every, 1)  # one Optuna trial each: none lost, none twice
    read_back = {t.user_attrs["pytest_nodeid"]: (t.state.name, t.last_step) for t in study}
    assert read_back == {
        n: ("PRUNED", t["pruned_at"]) if t["outcome"] == "pruned" else ("COMPLETE", 2)
        for n, t in trials.items()
    }
    return every


# --- the tests --------------------------------------------------------------------------


def test_a_machine_prunes_on_the_curves_another_machine_completed(
    pytester: pytest.Pytester, shared: Shared
) -> None:
    run(pytester, shared, 1)  # machine A: the high curves, all completed
    run(pytester, shared, 2)  # then machine B: its low curves are behind A's
    every = agree(pytester, shared)
    assert every == {**dict.fromkeys(HIGH, "passed"), **dict.fromkeys(LOW, "pruned")}
    shared.ran[2].stdout.fnmatch_lines(["4 trials: 4 pruned*", "*= 4 pruned in *"])
    trials = report(pytester.path / "merged.json")
    assert {n: trials[n]["pruned_at"] for n in LOW} == dict.fromkeys(LOW, 0)  # at the first report
    if shared.url is not None:  # the study is in the database alone
        assert not list(pytester.path.glob(f"logs-*/{JOURNAL}"))


def test_the_same_machine_alone_prunes_nothing(pytester: pytest.Pytester, shared: Shared) -> None:
    run(pytester, shared, 2)  # machine B on a study of its own
    assert agree(pytester, shared) == dict.fromkeys(LOW, "passed")


def test_two_machines_at_once_lose_nothing_and_count_nothing_twice(
    pytester: pytest.Pytester, shared: Shared
) -> None:
    pytester.makeconftest(TOGETHER)
    run(pytester, shared, 1, 2)
    # Which low trials are pruned depends on how the machines interleave;
    # that every trial is in the study once, as each report says, does not.
    every = agree(pytester, shared)
    assert every.keys() == HIGH | LOW
    trials = shared.study().get_trials()

    def span(half: set[str]) -> tuple[Any, Any]:
        mine = [t for t in trials if t.user_attrs["pytest_nodeid"] in half]
        return min(t.datetime_start for t in mine), max(t.datetime_complete for t in mine)

    # They did run at once: each machine started a trial before the other's last one ended.
    (a_start, a_end), (b_start, b_end) = span(HIGH), span(LOW)
    assert a_start < b_end and b_start < a_end


# A search whose sampler proposes from its seeded random stream until the study
# holds 8 complete trials, then from TPE's model of them. Every process's
# sampler starts the same stream: a machine that saw no other's trials
# proposes from it, one that saw 8 does not.
SEARCH = """
import optuna
from pytest_hparams import RealInterval, hparam_search

@hparam_search(
    16, x=RealInterval(0.0, 1.0), metrics=["score"],
    sampler=optuna.samplers.TPESampler(n_startup_trials=8, seed=0),
)
def test_train(x):
    return {"score": -(x - 0.8) ** 2}
"""


def random_stream() -> set[float]:
    """The first values of the sampler's random stream (Optuna's RandomSampler
    draws with NumPy's RandomState), to six significant digits as trials get them."""
    import numpy

    return {float(f"{x:.6g}") for x in numpy.random.RandomState(0).uniform(size=8)}


def searched(pytester: pytest.Pytester, shared: Shared, shard: int) -> set[float]:
    result = shared.ran[shard]
    assert result.ret == pytest.ExitCode.OK, "\n".join(result.outlines + result.errlines)
    result.stdout.fnmatch_lines(["*= 8 passed in *"])
    trials = report(pytester.path / f"shard{shard}.json").values()
    return {t["hparams"]["x"] for t in trials}


def test_a_search_on_one_machine_learns_from_the_trials_of_another(
    pytester: pytest.Pytester, shared: Shared
) -> None:
    pytester.makepyfile(test_shared=SEARCH)
    run(pytester, shared, 1)  # machine A: 8 trials, none complete before them
    run(pytester, shared, 2)  # machine B: 8 trials, asked with A's 8 in the study
    assert searched(pytester, shared, 1) <= random_stream()
    assert not searched(pytester, shared, 2) & random_stream()  # all from TPE's model
    merged = run_merge(pytester, "shard1.json", "shard2.json", "-o", "merged.json")
    assert merged.ret == 0, "\n".join(merged.outlines + merged.errlines)
    trials = report(pytester.path / "merged.json")
    assert len(trials) == 16
    study = shared.study().get_trials()
    assert sorted(t.user_attrs["pytest_nodeid"] for t in study) == sorted(trials)
    assert {t.state.name for t in study} == {"COMPLETE"}
    for t in study:  # each trial's value, as the study gave it and the report shows it
        shown = trials[t.user_attrs["pytest_nodeid"]]["hparams"]["x"]
        assert shown == pytest.approx(t.params["x"], rel=1e-5)


def test_the_same_search_alone_proposes_from_its_random_stream(
    pytester: pytest.Pytester, shared: Shared
) -> None:
    pytester.makepyfile(test_shared=SEARCH)
    run(pytester, shared, 2)  # machine B on a study of its own
    assert searched(pytester, shared, 2) <= random_stream()
