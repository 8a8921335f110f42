"""The pytest plugin (entry point `hparams`): short hooks that delegate."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from pytest_hparams import collect, options
from pytest_hparams.recorder import REPORT_ATTR, Recorder
from pytest_hparams.trial import Trial, TrialSpec

RECORDER_KEY = pytest.StashKey[Recorder]()
SPEC_KEY = pytest.StashKey[TrialSpec]()
PHASES_KEY = pytest.StashKey[dict[str, pytest.TestReport]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    options.addoption(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", collect.MARK_HELP)
    recorder = Recorder(config, options.read(config))
    config.stash[RECORDER_KEY] = recorder
    config.pluginmanager.register(recorder, "hparams-recorder")


def pytest_unconfigure(config: pytest.Config) -> None:
    recorder = config.stash.get(RECORDER_KEY, None)
    if recorder is not None:
        recorder.close()
        config.pluginmanager.unregister(recorder)
        del config.stash[RECORDER_KEY]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    collect.parametrize(metafunc)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    specs = []
    for item in items:
        spec = collect.spec_for(item)
        if spec is not None:
            item.stash[SPEC_KEY] = spec
            # JUnit XML shows them as properties of the trial's testcase.
            item.user_properties.extend((f"hparam.{k}", v) for k, v in spec.hparams.items())
            specs.append(spec)
    config.stash[RECORDER_KEY].check_collected(specs)


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
