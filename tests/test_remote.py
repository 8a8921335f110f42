"""Logdirs at fsspec URLs: a real S3-compatible server (moto's server mode) on
127.0.0.1, read back by a real TensorBoard server."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import fsspec
import pytest
from conftest import GRID, MIXED_OUTCOMES, Dashboard, free_port

from pytest_hparams.storage import LOCK_FILE

Read = Callable[[Path], Dashboard]


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """moto's S3 server in its own process, stopped when the module's tests end."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "moto's server exited"
            try:
                urllib.request.urlopen(endpoint, timeout=2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "moto's server did not start"
                time.sleep(0.2)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def bucket(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket; the environment points every S3 client at the server.

    AWS_ENDPOINT_URL is the one setting both s3fs (our writes) and boto3
    (TensorBoard's reads) honour, as the scaling guide tells users of MinIO and such.
    """
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "S3_ENDPOINT", "FSSPEC_S3_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    name = f"sweeps-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture(autouse=True)
def staging_area(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary directory of the runs' processes, where trials are staged."""
    path = pytester.mkdir("tmp")
    monkeypatch.setenv("TMPDIR", str(path))
    return path


def leftovers(staging_area: Path) -> list[str]:
    return sorted(p.relative_to(staging_area).as_posix() for p in staging_area.rglob("*"))


def s3_files(prefix: str) -> list[str]:
    """Every object under `prefix`, relative to it."""
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    return sorted(path[len(prefix) + 1 :] for path in fs.find(prefix))


def layout(files: list[str]) -> list[str]:
    """Each file's directory: file names hold the host, the pid and the time.

    A local logdir's lock file is left out: object stores take no lock.
    """
    return sorted(
        f.rsplit("/", 1)[0] if "/" in f else "." for f in files if not f.endswith(LOCK_FILE)
    )


def served(groups: list[dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    return {
        g["name"]: (
            g["hparams"],
            g["sessions"][0]["status"],
            {m["name"]["tag"]: m["value"] for m in g.get("metricValues", [])},
        )
        for g in groups
    }


def test_an_s3_logdir_shows_in_tensorboard_as_a_local_one_does(
    pytester: pytest.Pytester,
    bucket: str,
    staging_area: Path,
    dashboard: Read,
    tensorboard_server: Callable[..., Any],
) -> None:
    pytester.makepyfile(test_grid=GRID, test_mixed=MIXED_OUTCOMES)
    url = f"s3://{bucket}/team/exp1"
    remote = pytester.runpytest_subprocess("-n", "2", f"--hparams-logdir={url}")
    remote.assert_outcomes(passed=13, failed=1, errors=1)
    remote.stdout.fnmatch_lines(
        [
            f"logdir: {url}",
            f"view:   tensorboard --logdir {url}/test_grid.py/test_train",
            f"view:   tensorboard --logdir {url}/test_mixed.py/test_mixed",
            f"        (every sweep at once: tensorboard --logdir {url})",
        ]
    )
    assert leftovers(staging_area) == []
    pytester.runpytest_subprocess("--hparams-logdir=local").assert_outcomes(
        passed=13, failed=1, errors=1
    )

    local_files = [
        p.relative_to(pytester.path / "local").as_posix()
        for p in (pytester.path / "local").rglob("*")
        if p.is_file()
    ]
    assert layout(s3_files(f"{bucket}/team/exp1")) == layout(local_files)

    server = tensorboard_server(url, without_tensorflow=True)
    groups = served(server.session_groups(expected=15, with_metrics=13))
    local = dashboard(pytester.path / "local")
    assert len(groups) == 15
    for group in local.groups:
        hparams, status, metrics = groups[group.name]
        assert hparams == local.hparams(group)
        assert status == local.status(group)
        assert metrics == pytest.approx(local.metrics(group))
    experiment = server.post("experiment", {"experimentName": ""})
    assert {h["name"] for h in experiment["hparamInfos"]} == local.hparam_names
    assert {m["name"]["tag"] for m in experiment["metricInfos"]} == local.metric_names


def test_a_rerun_replaces_sessions_in_s3_and_resume_reads_them_back(
    pytester: pytest.Pytester, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_grid=GRID)
    url = f"s3://{bucket}/exp"
    pytester.makeini(f"[pytest]\nhparams_logdir = {url}\n")
    pytester.runpytest_subprocess().assert_outcomes(passed=12)
    first = s3_files(f"{bucket}/exp")

    monkeypatch.setenv("BONUS", "0.5")
    pytester.runpytest_subprocess().assert_outcomes(passed=12)
    second = s3_files(f"{bucket}/exp")
    # One session per run directory: the old event files are gone.
    assert layout(second) == layout(first) and len(second) == 13
    assert set(second) & set(first) == {"events.out.tfevents.0.pytest-hparams"}

    monkeypatch.setenv("BONUS", "0")
    result = pytester.runpytest_subprocess("--hparams-resume")
    result.assert_outcomes(skipped=12)
    result.stdout.fnmatch_lines(
        ["*12 trials: 12 resumed; best accuracy=1.23 at [[]num_units:64-learning_rate:0.01-*"]
    )


DIES = """
import os
from pytest_hparams import hparam_grid

@hparam_grid(a=[1, 2, 3, 4])
def test_dies(a, trial):
    trial.log(0, progress=a)
    if a == 3 and os.environ.get("CRASH"):
        os._exit(1)
    return {"score": a + float(os.environ.get("BONUS", "0"))}
"""


def test_a_worker_that_dies_costs_only_its_trial_in_s3(
    pytester: pytest.Pytester,
    bucket: str,
    staging_area: Path,
    monkeypatch: pytest.MonkeyPatch,
    tensorboard_server: Callable[..., Any],
) -> None:
    pytester.makepyfile(test_dies=DIES)
    first, again = f"s3://{bucket}/first", f"s3://{bucket}/again"
    pytester.runpytest_subprocess(f"--hparams-logdir={again}").assert_outcomes(passed=4)
    monkeypatch.setenv("CRASH", "1")
    monkeypatch.setenv("BONUS", "10")
    for url in (first, again):
        result = pytester.runpytest_subprocess("-n", "2", f"--hparams-logdir={url}")
        result.assert_outcomes(passed=3, failed=1)
        result.stdout.fnmatch_lines(["*3 *crashed*"])
    # The controller ended the dead worker's staged sessions and uploaded them.
    assert leftovers(staging_area) == []

    def sessions(url: str, with_metrics: int) -> dict[str, tuple[str, dict[str, float]]]:
        server = tensorboard_server(url, without_tensorflow=True)
        groups = served(server.session_groups(expected=4, with_metrics=with_metrics))
        return {name.rsplit("[", 1)[1]: (st, metrics) for name, (_, st, metrics) in groups.items()}

    # A first run's crashed trial reads as FAILURE...
    assert sessions(first, with_metrics=3) == {
        "a:1]": ("STATUS_SUCCESS", {"score": 11.0}),
        "a:2]": ("STATUS_SUCCESS", {"score": 12.0}),
        "a:3]": ("STATUS_FAILURE", {}),
        "a:4]": ("STATUS_SUCCESS", {"score": 14.0}),
    }
    # ...and a rerun's keeps the session recorded before.
    rerun = sessions(again, with_metrics=4)
    assert rerun["a:3]"] == ("STATUS_SUCCESS", {"score": 3.0})
    assert rerun["a:4]"] == ("STATUS_SUCCESS", {"score": 14.0})


def test_what_a_trial_writes_in_its_logdir_is_uploaded_with_it(
    pytester: pytest.Pytester, bucket: str, staging_area: Path
) -> None:
    pytester.makepyfile(
        test_ckpt="""
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1, 2])
        def test_ckpt(a, trial):
            (trial.logdir / "checkpoints").mkdir()
            (trial.logdir / "checkpoints" / "model.ckpt").write_text(f"weights {a}")
            return {"score": a}
        """
    )
    url = f"s3://{bucket}/exp"
    pytester.runpytest_subprocess(f"--hparams-logdir={url}").assert_outcomes(passed=2)
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    for a in (1, 2):
        path = f"{bucket}/exp/test_ckpt.py/test_ckpt/a={a}/checkpoints/model.ckpt"
        assert fs.cat_file(path) == f"weights {a}".encode()
    assert leftovers(staging_area) == []


def test_other_fsspec_urls_get_the_same_layout(pytester: pytest.Pytester) -> None:
    # fsspec's in-memory file system lives in this process: run in-process.
    pytester.makepyfile(test_grid=GRID)
    pytester.runpytest("--hparams-logdir=memory://sweeps/exp").assert_outcomes(passed=12)
    pytester.runpytest("--hparams-logdir=local").assert_outcomes(passed=12)
    memory = fsspec.filesystem("memory")
    files = [p[len("/sweeps/exp/") :] for p in memory.find("/sweeps/exp")]
    local = [
        p.relative_to(pytester.path / "local").as_posix()
        for p in (pytester.path / "local").rglob("*")
        if p.is_file()
    ]
    assert layout(files) == layout(local)
    memory.rm("/sweeps", recursive=True)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "s3://no-such-bucket-here/exp",
            "*--hparams-logdir: s3://no-such-bucket-here does not exist or is not visible; "
            "create it",
        ),
        ("nosuch://bucket/exp", "*--hparams-logdir: Protocol not known: nosuch; use a local*"),
        (
            "gcs://bucket/exp",
            "*--hparams-logdir: gcs:// URLs need a package that is not installed: *gcsfs*",
        ),
    ],
)
def test_an_unusable_logdir_url_is_a_usage_error(
    pytester: pytest.Pytester, bucket: str, url: str, message: str
) -> None:
    pytester.makepyfile(test_grid=GRID)
    result = pytester.runpytest(f"--hparams-logdir={url}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    result.stderr.no_fnmatch_line("*Traceback*")


@pytest.mark.parametrize(
    ("missing", "expected"),
    [
        ("fsspec", "a logdir URL needs fsspec"),
        ("s3fs", "s3:// URLs need a package that is not installed: Install s3fs to access S3"),
    ],
)
def test_without_the_remote_extra_the_error_names_it(
    pytester: pytest.Pytester, missing: str, expected: str
) -> None:
    pytester.makeconftest(f"import sys\nsys.modules[{missing!r}] = None  # as if not installed\n")
    pytester.makepyfile(test_grid=GRID)
    result = pytester.runpytest_subprocess("--hparams-logdir=s3://bucket/exp")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    fix = "install it with: pip install 'pytest-hparams[remote]'"
    assert f"ERROR: --hparams-logdir: {expected}; {fix}" in result.errlines


def test_a_trial_that_cannot_be_uploaded_keeps_its_files_and_says_where(
    pytester: pytest.Pytester, bucket: str, staging_area: Path, dashboard: Read
) -> None:
    # The second trial deletes the bucket: its upload, and the third's, fail,
    # and so does writing the metric the third adds into the config.
    pytester.makepyfile(
        test_kept=f"""
        import boto3
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1, 2, 3])
        def test_kept(a):
            if a == 2:
                s3 = boto3.resource("s3").Bucket("{bucket}")
                s3.objects.all().delete()
                s3.delete()
            return {{"score": a}} if a < 3 else {{"score": a, "extra": 1.0}}
        """
    )
    result = pytester.runpytest_subprocess(f"--hparams-logdir=s3://{bucket}/exp")
    result.stdout.fnmatch_lines(
        [
            f"hparams: could not write the experiment config to s3://{bucket}/exp "
            "(LogdirError: *); the next run of these sweeps into it writes it"
        ]
    )
    result.assert_outcomes(passed=3, warnings=2)
    result.stdout.fnmatch_lines(["*test_kept.py:*: HParamsWarning: could not upload *"])
    kept = re.findall(
        r"could not upload (\S+) to s3://\S+ \(.*\); its files are kept in (\S+)",
        result.stdout.str(),
    )
    assert [run for run, _ in kept] == ["test_kept.py/test_kept/a=2", "test_kept.py/test_kept/a=3"]
    staging = Path(kept[0][1]).parents[2]
    assert staging.parent == staging_area
    # Only what could not be uploaded is left.
    assert [f.rsplit("/", 1)[0] for f in leftovers(staging) if "tfevents" in f] == [
        "test_kept.py/test_kept/a=2",
        "test_kept.py/test_kept/a=3",
    ]
    recorded = dashboard(staging)
    assert {g.name.partition(" · ")[2]: recorded.status(g) for g in recorded.groups} == {
        "test_kept.py::test_kept[a:2]": "STATUS_SUCCESS",
        "test_kept.py::test_kept[a:3]": "STATUS_SUCCESS",
    }
