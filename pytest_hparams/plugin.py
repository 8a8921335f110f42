"""The pytest plugin (entry point `hparams`): its options, and the objects
that hold a session's state, registered as plugins.

Two objects do the work, split by process role as pytest-xdist splits its
own: a `TrialRunner` in every process collects sweeps and runs trials, and a
`Reporter`, registered only in the process that reports (the controller
under xdist), turns their records into the config, baselines and tables.

This module loads in every pytest run of a project that installs the plugin,
and the package's modules with it: what costs a run that has no sweep (the
extras, TensorBoard's protocol buffers) is imported on first use, in
`lazy.py` (see benchmarks/bench.py's startup row).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_hparams import options
from pytest_hparams.html_summary import HtmlSummary
from pytest_hparams.reporter import Reporter
from pytest_hparams.runner import TrialRunner
from pytest_hparams.settings import read as read_settings
from pytest_hparams.xdist_hooks import XdistHooks

#: pytest runs in this process whose plugin is configured (pytest_configure to
#: pytest_unconfigure): a count, as pytester's in-process runs nest in another.
#: The decorators read it, to tell a sweep from one under -p no:hparams.
active_runs = 0

RUNNER_KEY: pytest.StashKey[TrialRunner] = pytest.StashKey()
REPORTER_KEY: pytest.StashKey[Reporter] = pytest.StashKey()


def pytest_addoption(parser: pytest.Parser) -> None:
    options.addoption(parser)


def pytest_configure(config: pytest.Config) -> None:
    global active_runs
    config.addinivalue_line(
        "markers",
        "pytest_hparams_sweep(sweep): applied by @hparam_grid, @hparam_random and "
        "@hparam_search: run the test once per trial and record it (pytest-hparams)",
    )
    settings = read_settings(config)
    workerinput = getattr(config, "workerinput", None)  # on an xdist worker
    journal = None if workerinput is None else workerinput.get("hparams_journal")
    runner = config.stash[RUNNER_KEY] = TrialRunner(settings, workerinput is not None, journal)
    # Its hooks collect sweeps and run each trial: as methods they reach the
    # session's state without a lookup per call (as pytest's LogXML does).
    config.pluginmanager.register(runner, "hparams-runner")
    if not hasattr(config, "workerinput"):  # the process that reports
        reporter = config.stash[REPORTER_KEY] = Reporter(settings, config.get_verbosity() < 0)
        config.pluginmanager.register(reporter, "hparams-reporter")
        if config.pluginmanager.hasplugin("xdist"):
            config.pluginmanager.register(XdistHooks(reporter), "hparams-xdist")
        html_report = config.getoption("htmlpath", None)
        if config.pluginmanager.hasplugin("html") and html_report:
            report = Path(config.invocation_params.dir, str(html_report))
            config.pluginmanager.register(HtmlSummary(reporter, report), "hparams-html")
    active_runs += 1


def pytest_unconfigure(config: pytest.Config) -> None:
    global active_runs
    runner = config.stash.get(RUNNER_KEY, None)
    if runner is not None:
        active_runs -= 1
        runner.close()
        config.pluginmanager.unregister(runner)
        del config.stash[RUNNER_KEY]
    reporter = config.stash.get(REPORTER_KEY, None)
    if reporter is not None:
        config.pluginmanager.unregister(reporter)
        xdist = config.pluginmanager.get_plugin("hparams-xdist")
        if xdist is not None:
            xdist.close()
            config.pluginmanager.unregister(xdist)
        html_summary = config.pluginmanager.get_plugin("hparams-html")
        if html_summary is not None:
            config.pluginmanager.unregister(html_summary)
        del config.stash[REPORTER_KEY]
