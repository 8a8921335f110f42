"""The pytest plugin (entry point `hparams`): short hooks that delegate.

This module loads in every pytest run of a project that installs the plugin,
so the sweep machinery (collect, space, trial) is imported by the hooks only
when a test is actually swept; see benchmarks/RESULTS.md for the cost.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_hparams import MARK, options
from pytest_hparams.recorder import REPORT_ATTR, STARTED_ATTR, Recorder

if TYPE_CHECKING:
    from pytest_hparams.trial import Trial, TrialSpec

RECORDER_KEY = pytest.StashKey[Recorder]()
SPEC_KEY: pytest.StashKey[TrialSpec | None] = pytest.StashKey()
PHASES_KEY = pytest.StashKey[dict[str, pytest.TestReport]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    options.addoption(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "hparams(*hparams, metrics=None, **values): applied by @hparam_grid and "
        "@hparam_random: run the test once per trial and record it (pytest-hparams)",
    )
    recorder = Recorder(config, options.read(config))
    config.stash[RECORDER_KEY] = recorder
    config.pluginmanager.register(recorder, "hparams-recorder")
    import pytest_hparams  # the decorators tell a sweep from one under -p no:hparams by it

    pytest_hparams._active_runs += 1


def pytest_unconfigure(config: pytest.Config) -> None:
    recorder = config.stash.get(RECORDER_KEY, None)
    if recorder is not None:
        import pytest_hparams

        pytest_hparams._active_runs -= 1
        recorder.close()
        config.pluginmanager.unregister(recorder)
        del config.stash[RECORDER_KEY]


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # A logdir inside the project holds a directory per trial; walking them
    # for test files made every later run slower (3 s per 1,000 trials here).
    recorder = config.stash.get(RECORDER_KEY, None)
    if (
        recorder is not None
        and recorder.store is not None
        and collection_path == recorder.store.root
    ):
        return True
    return None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker(MARK) is not None:
        from pytest_hparams import collect

        recorder = metafunc.config.stash[RECORDER_KEY]
        try:
            sweep = collect.parametrize(metafunc, recorder.settings.overrides)
        except collect.OverrideError as e:
            recorder.problems.append(f"--hparams-set: {e}")
            return
        recorder.swept += 1
        recorder.declared.update(m.name for m in sweep.metrics)
        recorder.hparam_names.update(sweep.names)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    recorder = config.stash[RECORDER_KEY]
    recorder.check_collected()
    if recorder.settings.only_best is not None:
        from pytest_hparams import collect

        keep, drop = collect.only_best(items, recorder.settings.only_best)
        if not keep:
            raise pytest.UsageError(
                f"--hparams-only-best: no trial in {recorder.settings.only_best} matches a "
                "collected sweep; check the file and the tests selected"
            )
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    if recorder.settings.shard is not None:
        from pytest_hparams import collect

        keep, drop = collect.shard(items, *recorder.settings.shard)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    recorder = item.config.stash[RECORDER_KEY]
    if recorder.settings.resume:
        spec = _spec(item)
        if spec is not None and recorder.resume(spec):
            # A mark, not pytest.skip(): pytest's own setup hook (tryfirst too,
            # registered before this plugin, so called after it) skips the
            # item and reports it at the test's line, not at this plugin's.
            reason = "resumed: this trial's session in the logdir ended with SUCCESS"
            item.add_marker(pytest.mark.skip(reason=reason))


def _spec(item: pytest.Item) -> TrialSpec | None:
    # Built on first use while the item runs, not for every collected item:
    # collecting a 10,000-trial grid stays close to plain parametrize.
    if SPEC_KEY in item.stash:
        return item.stash[SPEC_KEY]
    mark = item.get_closest_marker(MARK)
    spec = None
    if mark is not None:
        from pytest_hparams import collect

        spec = collect.spec_for(item, mark, item.config.stash[RECORDER_KEY].settings.overrides)
    item.stash[SPEC_KEY] = spec
    if spec is not None:
        # JUnit XML shows them as properties of the trial's testcase.
        item.user_properties.extend((f"hparam.{k}", v) for k, v in spec.hparams.items())
    return spec


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    spec = _spec(pyfuncitem)
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
    spec = _spec(item)
    if spec is not None:
        phases = item.stash.setdefault(PHASES_KEY, {})
        phases[report.when] = report
        if report.when == "setup":
            setattr(report, STARTED_ATTR, item.config.stash[RECORDER_KEY].started_record(spec))
        elif report.when == "teardown":
            assert isinstance(item, pytest.Function)  # only functions are swept
            record = item.config.stash[RECORDER_KEY].finish(item, spec, phases)
            setattr(report, REPORT_ATTR, record)
    return report


@pytest.fixture
def trial(request: pytest.FixtureRequest) -> Trial:
    """The running trial of an @hparam_grid test: hparams, id, seed, logdir, log()."""
    spec = _spec(request.node)
    if spec is None:
        pytest.fail(
            "the `trial` fixture is only available to tests decorated with @hparam_grid",
            pytrace=False,
        )
    return request.config.stash[RECORDER_KEY].trial(spec)
