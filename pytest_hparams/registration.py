"""The objects of one pytest run that uses the plugin, made together once it
needs them (`plugin.Hooks` says when), and closed together.

Two objects do the work, split by process role as pytest-xdist splits its
own: a `TrialRunner` in every process collects sweeps and runs trials, and a
`Reporter`, made only in the process that reports (the controller under
xdist), turns their records into the config, baselines and tables. The
plugin's hooks call theirs. Beside the reporter, registered as plugins of
their own: the xdist controller's hooks, and pytest-html's summary.
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
    """The runner, and where pytest reports, the reporter and its companions."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        settings = read_settings(config)
        workerinput = getattr(config, "workerinput", None)  # on an xdist worker
        journal = None if workerinput is None else workerinput.get(XdistHooks.JOURNAL_INPUT)
        self.runner = TrialRunner(settings, workerinput is not None, journal)
        self.reporter: Reporter | None = None
        self.xdist: XdistHooks | None = None
        self.html: HtmlSummary | None = None
        if workerinput is not None:
            return
        self.reporter = Reporter(settings, config.get_verbosity() < 0)
        plugins = config.pluginmanager
        if plugins.hasplugin("xdist"):
            self.xdist = XdistHooks(self.reporter, str(config.getoption("dist", "no")))
            plugins.register(self.xdist, "hparams-xdist")
        html_report = config.getoption("htmlpath", None)
        if plugins.hasplugin("html") and html_report:
            report = Path(config.invocation_params.dir, str(html_report))
            self.html = HtmlSummary(self.reporter, report)
            plugins.register(self.html, "hparams-html")

    def start(self, session: pytest.Session, live: LiveLine | None) -> None:
        """The session starts (or started, for objects made during it);
        `live`: the live line, opened as it started."""
        if self.reporter is not None:
            self.reporter.pytest_sessionstart(session)
        self.runner.live = live

    def close(self) -> None:
        self.runner.close()
        plugins = self.config.pluginmanager
        if self.xdist is not None:
            self.xdist.close()
            plugins.unregister(self.xdist)
        if self.html is not None:
            plugins.unregister(self.html)
