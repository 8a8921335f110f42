"""The pytest plugin (entry point `hparams`): short hooks that delegate."""

from __future__ import annotations

import argparse
import os
from collections.abc import Generator
from pathlib import Path

import pytest

from pytest_hparams import collect
from pytest_hparams.recorder import REPORT_ATTR, Recorder
from pytest_hparams.trial import Trial, TrialSpec

RECORDER_KEY = pytest.StashKey[Recorder]()
SPEC_KEY = pytest.StashKey[TrialSpec]()
PHASES_KEY = pytest.StashKey[dict[str, pytest.TestReport]]()


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hparams", "hyperparameter sweeps (pytest-hparams)")
    group.addoption(
        "--hparams-logdir",
        metavar="DIR",
        default=None,
        help="Record every trial in DIR for TensorBoard's HParams dashboard. Default: %(default)r",
    )
    group.addoption(
        "--hparams-top",
        metavar="N",
        type=_non_negative_int,
        default=None,
        help="Rows of each sweep's table, best first; 0 shows all. Default: 10",
    )
    group.addoption(
        "--hparams-no-table",
        action="store_true",
        default=False,
        help="Do not print the sweep tables in the terminal summary",
    )
    parser.addini(
        "hparams_logdir",
        "Directory for TensorBoard records, relative to the ini file",
        type="paths",
        default=[],
    )
    parser.addini("hparams_top", "Rows of each sweep's table; 0 shows all", default="10")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", collect.MARK_HELP)
    recorder = Recorder(
        config, _logdir(config), _top(config), show=not config.getoption("hparams_no_table")
    )
    config.stash[RECORDER_KEY] = recorder
    config.pluginmanager.register(recorder, "hparams-recorder")


def pytest_unconfigure(config: pytest.Config) -> None:
    recorder = config.stash.get(RECORDER_KEY, None)
    if recorder is not None:
        recorder.close()
        config.pluginmanager.unregister(recorder)
        del config.stash[RECORDER_KEY]


def _logdir(config: pytest.Config) -> Path | None:
    cli = config.getoption("hparams_logdir")
    if cli is not None:
        path = Path(config.invocation_params.dir, cli)
        source = "--hparams-logdir"
    else:
        paths = config.getini("hparams_logdir")
        if not paths:
            return None
        path, source = Path(paths[0]), "hparams_logdir (ini)"
    path = path.resolve()
    if path.exists() and not path.is_dir():
        raise pytest.UsageError(f"{source}: {path} is a file, not a directory; choose a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise pytest.UsageError(
            f"{source}: cannot create {path} ({e.strerror}); choose a writable directory"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise pytest.UsageError(f"{source}: {path} is not writable; choose a writable directory")
    return path


def _top(config: pytest.Config) -> int:
    cli = config.getoption("hparams_top")
    if cli is not None:
        return int(cli)
    raw = config.getini("hparams_top")
    try:
        return _non_negative_int(str(raw))
    except argparse.ArgumentTypeError:
        raise pytest.UsageError(
            f"hparams_top (ini): expected a whole number >= 0, got {raw!r}"
        ) from None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    collect.parametrize(metafunc)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        spec = collect.spec_for(item)
        if spec is not None:
            item.stash[SPEC_KEY] = spec


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    spec = pyfuncitem.stash.get(SPEC_KEY, None)
    if spec is None:
        return None
    pyfuncitem.config.stash[RECORDER_KEY].call(pyfuncitem, spec)
    # Handled: pytest's own pyfunc_call would warn that the test returned a value.
    return True


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    spec = item.stash.get(SPEC_KEY, None)
    if spec is not None:
        phases = item.stash.setdefault(PHASES_KEY, {})
        phases[report.when] = report
        if report.when == "teardown":
            record = item.config.stash[RECORDER_KEY].finish(spec, phases)
            setattr(report, REPORT_ATTR, record)
    return report


@pytest.fixture
def trial(request: pytest.FixtureRequest) -> Trial:
    """The running trial of an @hparam_grid test: hparams, id, seed, logdir, log()."""
    spec = request.node.stash.get(SPEC_KEY, None)
    if spec is None:
        pytest.fail(
            "the `trial` fixture is only available to tests decorated with @hparam_grid",
            pytrace=False,
        )
    return request.config.stash[RECORDER_KEY].trial(spec)
