"""The pytest plugin (entry point `hparams`): short hooks that delegate.

Two objects hold a session's state, split by process role as pytest-xdist
splits its own: a `TrialRunner` in every process runs trials, and a
`Reporter`, registered only in the process that reports (the controller
under xdist), turns their records into the config, baselines and tables.

This module loads in every pytest run of a project that installs the plugin,
so the sweep machinery is imported by the hooks only when a test is swept;
see benchmarks/RESULTS.md for the cost.
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_hparams import MARK, options

if TYPE_CHECKING:
    from pytest_hparams.records import TrialKey
    from pytest_hparams.reporter import Reporter
    from pytest_hparams.runner import TrialRunner
    from pytest_hparams.trial import Trial

RUNNER_KEY: pytest.StashKey[TrialRunner] = pytest.StashKey()
REPORTER_KEY: pytest.StashKey[Reporter] = pytest.StashKey()

# Set on the teardown report of every swept item: its `TrialRecord`, turned
# into a dict where the report is serialized (xdist carries it to the controller).
RECORD_ATTR = "hparams_trial"
# Set on the setup report where a trial's start must travel (see `TrialRunner.started`).
STARTED_ATTR = "hparams_started"


def pytest_addoption(parser: pytest.Parser) -> None:
    options.addoption(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "hparams(*hparams, metrics=None, **values): applied by @hparam_grid and "
        "@hparam_random: run the test once per trial and record it (pytest-hparams)",
    )
    from pytest_hparams.runner import TrialRunner

    settings = options.read(config)
    runner = config.stash[RUNNER_KEY] = TrialRunner(settings, worker=hasattr(config, "workerinput"))
    # Its hooks run each trial: as methods they reach the session's state
    # without a lookup per call (as pytest's LogXML does).
    config.pluginmanager.register(runner, "hparams-runner")
    if settings.resume:
        config.pluginmanager.register(Resume(), "hparams-resume")
    if not hasattr(config, "workerinput"):  # the process that reports
        from pytest_hparams.reporter import Reporter

        reporter = config.stash[REPORTER_KEY] = Reporter(settings)
        reporter.quiet = config.get_verbosity() < 0
        config.pluginmanager.register(reporter, "hparams-reporter")
        if config.pluginmanager.hasplugin("xdist"):
            from pytest_hparams.reporter import XdistHooks

            config.pluginmanager.register(XdistHooks(reporter), "hparams-xdist")
    import pytest_hparams  # the decorators tell a sweep from one under -p no:hparams by it

    pytest_hparams._active_runs += 1


def pytest_unconfigure(config: pytest.Config) -> None:
    runner = config.stash.get(RUNNER_KEY, None)
    if runner is not None:
        import pytest_hparams

        pytest_hparams._active_runs -= 1
        runner.close()
        config.pluginmanager.unregister(runner)
        del config.stash[RUNNER_KEY]
        if config.pluginmanager.has_plugin("hparams-resume"):
            config.pluginmanager.unregister(name="hparams-resume")
    reporter = config.stash.get(REPORTER_KEY, None)
    if reporter is not None:
        config.pluginmanager.unregister(reporter)
        if config.pluginmanager.has_plugin("hparams-xdist"):
            config.pluginmanager.unregister(name="hparams-xdist")
        del config.stash[REPORTER_KEY]


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # A logdir inside the project holds a directory per trial; walking them
    # for test files made every later run slower, by the size of the logdir.
    runner = config.stash.get(RUNNER_KEY, None)
    if runner is not None and runner.store is not None and collection_path == runner.store.root:
        return True
    return None


@pytest.hookimpl(wrapper=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> Any:
    result = yield
    # pytest runs a unittest.TestCase's methods itself, never through
    # parametrize: a sweep on one would run once, unswept.
    unittest = sys.modules.get("unittest")
    if unittest is not None and isinstance(obj, type) and issubclass(obj, unittest.TestCase):
        from pytest_hparams.collect import refuse_unittest

        refuse_unittest(collector, obj)
    return result


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker(MARK) is not None:
        from pytest_hparams import collect
        from pytest_hparams.errors import OverrideError

        runner = metafunc.config.stash[RUNNER_KEY]
        test = metafunc.definition.nodeid
        try:
            settings = runner.settings
            runner.sweeps[test] = collect.parametrize(
                metafunc, settings.overrides, settings.repeats
            )
        except OverrideError as e:
            runner.problems.append(f"--hparams-set: {e}")


@pytest.hookimpl(trylast=True)  # after -k, -m and plugins that reorder or deselect
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    runner = config.stash[RUNNER_KEY]
    if not runner.sweeps and not runner.problems:
        return
    from pytest_hparams import collect

    # Each swept item's identity, once: the runner finds it by node id.
    keys = runner.keys = collect.keys_of(items, runner.sweeps)
    try:
        _select(config, items, keys)
    except pytest.UsageError as e:
        if not hasattr(config, "workerinput"):
            raise
        # On an xdist worker a UsageError is an INTERNALERROR: the worker runs
        # nothing and hands the message to the controller, which exits with it.
        from pytest_hparams.reporter import USAGE_ERROR_OUTPUT

        config.workeroutput[USAGE_ERROR_OUTPUT] = str(e)  # type: ignore[attr-defined]
        config.hook.pytest_deselected(items=list(items))
        items.clear()


def _select(config: pytest.Config, items: list[pytest.Item], keys: dict[str, TrialKey]) -> None:
    """Checks the options against what was collected; applies shards and only-best."""
    from pytest_hparams import collect

    runner = config.stash[RUNNER_KEY]
    runner.check_collected()
    settings = runner.settings
    if settings.only_best is not None:
        keep, drop = collect.only_best(items, settings.only_best, runner.goals())
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    if settings.shard is not None:
        keep, drop = collect.shard(items, keys, *settings.shard)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep


class Resume:
    """Skips the trials `--hparams-resume` finds recorded; registered only
    with that option, so other runs pay for no setup hook."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        runner = item.config.stash[RUNNER_KEY]
        key = runner.keys.get(item.nodeid)
        if key is not None and runner.resume(key):
            # A mark, not pytest.skip(): pytest's own setup hook (tryfirst
            # too, registered before this one, so called after it) skips the
            # item and reports it at the test's line, not at this plugin's.
            reason = "resumed: this trial's session in the logdir ended with SUCCESS"
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.hookimpl(wrapper=True)
def pytest_report_to_serializable(
    config: pytest.Config, report: pytest.TestReport
) -> Generator[None, dict[str, Any] | None, dict[str, Any] | None]:
    data = yield
    # The record travels as a plain dict: to the xdist controller, and into
    # what other plugins write (pytest-reportlog's JSON lines).
    record = getattr(report, RECORD_ATTR, None)
    # A report from a worker carries the dict already (a controller-side
    # plugin such as pytest-reportlog serializes it again).
    if data is not None and record is not None and not isinstance(record, dict):
        data[RECORD_ATTR] = record.to_dict()
    return data


@pytest.fixture
def trial(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Trial:
    """The running trial of an @hparam_grid test: hparams, id, seed, logdir, log()."""
    runner = request.config.stash[RUNNER_KEY]
    key = runner.keys.get(request.node.nodeid)
    if key is None:
        pytest.fail(
            "the `trial` fixture is only available to tests decorated with @hparam_grid",
            pytrace=False,
        )
    # Without a logdir, trial.logdir is a directory of pytest's own temporary
    # tree, kept and pruned by pytest like tmp_path's.
    return runner.trial(key, lambda: tmp_path_factory.mktemp("hparams-trial"))
