"""The plugin objects of one pytest run, registered and unregistered together.

Two objects do the work, split by process role as pytest-xdist splits its
own: a `TrialRunner` in every process collects sweeps and runs trials, and a
`Reporter`, registered only in the process that reports (the controller
under xdist), turns their records into the config, baselines and tables.
Beside the reporter: the xdist controller's hooks, and pytest-html's summary.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_hparams.html_summary import HtmlSummary
from pytest_hparams.progress import LiveLine
from pytest_hparams.reporter import Reporter
from pytest_hparams.runner import TrialRunner
from pytest_hparams.settings import read as read_settings
from pytest_hparams.xdist_hooks import XdistHooks


class Registration:
    """What one run registered with its plugin manager: the runner, and
    where pytest reports, the reporter and its companions."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        settings = read_settings(config)
        workerinput = getattr(config, "workerinput", None)  # on an xdist worker
        journal = None if workerinput is None else workerinput.get(XdistHooks.JOURNAL_INPUT)
        self.runner = TrialRunner(settings, workerinput is not None, journal)
        self.reporter: Reporter | None = None
        self.xdist: XdistHooks | None = None
        self.html: HtmlSummary | None = None
        # Their hooks collect sweeps and run each trial: as methods they reach
        # the run's state without a lookup per call (as pytest's LogXML does).
        plugins = config.pluginmanager
        plugins.register(self.runner, "hparams-runner")
        if workerinput is not None:
            return
        self.reporter = Reporter(settings, config.get_verbosity() < 0)
        plugins.register(self.reporter, "hparams-reporter")
        if plugins.hasplugin("xdist"):
            self.xdist = XdistHooks(self.reporter, str(config.getoption("dist", "no")))
            plugins.register(self.xdist, "hparams-xdist")
        html_report = config.getoption("htmlpath", None)
        if plugins.hasplugin("html") and html_report:
            report = Path(config.invocation_params.dir, str(html_report))
            self.html = HtmlSummary(self.reporter, report)
            plugins.register(self.html, "hparams-html")

    def join(self, session: pytest.Session, live: LiveLine | None) -> None:
        """Starts objects registered after the session started. `live`: the
        live line opened as it started (pytest captures the terminal by now)."""
        self.runner.live = live
        if self.reporter is not None:
            self.reporter.pytest_sessionstart(session)

    def unregister(self) -> None:
        plugins = self.config.pluginmanager
        self.runner.close()
        plugins.unregister(self.runner)
        if self.reporter is not None:
            plugins.unregister(self.reporter)
        if self.xdist is not None:
            self.xdist.close()
            plugins.unregister(self.xdist)
        if self.html is not None:
            plugins.unregister(self.html)
