"""The pytest plugin (entry point `hparams`): its options, and its hooks
with the `trial` fixture.

This module loads in every pytest run of a project that installs the
plugin, so it imports only what its options and hooks need. The hooks delegate
to the run's objects (`registration.py`), which load the rest of the
package: at once in a run that sets one of the plugin's options or runs
under xdist, and otherwise once the run collects a sweep; most runs of a
project collect none (bench.py's startup row). What those modules import
from outside the package is imported here, as pytest loads the plugin:
during collection pytest puts the test folders first on sys.path, where a
`statistics.py` of the project's would replace the one `gates` uses
(tests/test_layout.py holds the list to what they import). The extras are
loaded on first use, in `lazy.py`.
"""

from __future__ import annotations

import difflib  # noqa: F401 (for the package's modules, see above)
import hashlib  # noqa: F401 (for the package's modules, see above)
import html  # noqa: F401 (for the package's modules, see above)
import statistics  # noqa: F401 (for the package's modules, see above)
import sys
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fasteners  # noqa: F401 (for the package's modules, see above)
import google_crc32c  # noqa: F401 (for the package's modules, see above)
import pytest

from pytest_hparams import MARK, options
from pytest_hparams.progress import LiveLine

if TYPE_CHECKING:
    from pytest_hparams.registration import Registration
    from pytest_hparams.reporter import Reporter
    from pytest_hparams.runner import TrialRunner
    from pytest_hparams.trial import Trial

#: pytest runs in this process whose plugin is configured (pytest_configure to
#: pytest_unconfigure): a count, as pytester's in-process runs nest in another.
#: The decorators read it, to tell a sweep from one under -p no:hparams.
active_runs = 0

HOOKS_KEY: pytest.StashKey[Hooks] = pytest.StashKey()


def pytest_addoption(parser: pytest.Parser) -> None:
    options.addoption(parser)


def pytest_configure(config: pytest.Config) -> None:
    global active_runs
    config.addinivalue_line(
        "markers",
        "pytest_hparams_sweep(sweep): applied by @hparam_grid, @hparam_random and "
        "@hparam_search: run the test once per trial and record it (pytest-hparams)",
    )
    hooks = Hooks(config)
    if options.asked(config) or _distributed(config):
        hooks.start()  # reads the options: a bad one is a UsageError, and nothing is kept
    config.stash[HOOKS_KEY] = hooks
    config.pluginmanager.register(hooks, "hparams-hooks")
    active_runs += 1


def pytest_unconfigure(config: pytest.Config) -> None:
    global active_runs
    hooks = config.stash.get(HOOKS_KEY, None)
    if hooks is not None:
        active_runs -= 1
        hooks.close()
        config.pluginmanager.unregister(hooks)
        del config.stash[HOOKS_KEY]


def _distributed(config: pytest.Config) -> bool:
    """Whether this process is an xdist worker or controller: the controller
    never collects, and must hear of a trial whose worker dies."""
    return hasattr(config, "workerinput") or config.getoption("dist", "no") != "no"


class Hooks:
    """The plugin's hooks, registered in every run: each calls the runner's
    or the reporter's method of its name, once the run's objects are made.

    They are registered at configure whenever the objects are made, so the
    hooks keep their place among other plugins' and conftests' (the order
    of `pytest_generate_tests` orders a test's parameters, and so its id).
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.objects: Registration | None = None
        self.session: pytest.Session | None = None
        self.live: LiveLine | None = None

    def start(self) -> Registration:
        """The run's objects, made on first use."""
        if self.objects is None:
            # The one deferred import of the package's own modules: the
            # runner, the reporter and all they use, in a run that needs them.
            from pytest_hparams.registration import Registration

            self.objects = Registration(self.config)
            if self.session is not None:
                self.objects.start(self.session, self.live)
        return self.objects

    @property
    def runner(self) -> TrialRunner | None:
        return self.objects.runner if self.objects is not None else None

    @property
    def reporter(self) -> Reporter | None:
        return self.objects.reporter if self.objects is not None else None

    @pytest.fixture
    def trial(
        self, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
    ) -> Trial:
        """The running trial of an @hparam_grid test: hparams, id, seed, logdir, log()."""
        runner = self.runner
        trial = runner.trial_for(request.node.nodeid, tmp_path_factory) if runner else None
        if trial is None:
            pytest.fail(
                "the `trial` fixture is only available to tests decorated with @hparam_grid",
                pytrace=False,
            )
        return trial

    def close(self) -> None:
        if self.objects is not None:
            self.objects.close()  # the runner closes the live line
        elif self.live is not None:
            self.live.close()

    # --- the session ---------------------------------------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.session = session
        # Opened now, while pytest does not capture the terminal: a sweep
        # may make the runner while pytest collects, and captures.
        self.live = LiveLine.open(session.config)
        if self.objects is not None:
            self.objects.start(session, self.live)

    def pytest_enter_pdb(self) -> None:
        if self.runner is not None:
            self.runner.pytest_enter_pdb()

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.reporter is not None:
            self.reporter.pytest_sessionfinish(session)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.reporter is not None:
            self.reporter.pytest_terminal_summary(terminalreporter)

    # --- collection: a sweep, or a TestCase to refuse one, makes the objects -------

    def pytest_ignore_collect(self, collection_path: Path) -> bool | None:
        return self.runner.pytest_ignore_collect(collection_path) if self.runner else None

    @pytest.hookimpl(wrapper=True)
    def pytest_pycollect_makeitem(
        self, collector: pytest.Collector, name: str, obj: object
    ) -> Generator[None, Any, Any]:
        result = yield
        unittest = sys.modules.get("unittest")
        if unittest is not None and isinstance(obj, type) and issubclass(obj, unittest.TestCase):
            self.start().runner.check_testcase(collector, obj)
        return result

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if metafunc.definition.get_closest_marker(MARK) is not None:
            self.start().runner.pytest_generate_tests(metafunc)

    @pytest.hookimpl(trylast=True)  # after -k, -m and plugins that reorder or deselect
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        if self.runner is not None:
            self.runner.pytest_collection_modifyitems(config, items)

    # --- each test -----------------------------------------------------------------

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if self.runner is not None:
            self.runner.pytest_runtest_setup(item)

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool | None:
        return self.runner.pytest_pyfunc_call(pyfuncitem) if self.runner else None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        if self.runner is None:
            return (yield)
        return (yield from self.runner.pytest_runtest_makereport(item, call))

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(
        self, report: pytest.TestReport
    ) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
        return self.reporter.pytest_report_teststatus(report) if self.reporter else None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.reporter is not None:
            self.reporter.pytest_runtest_logreport(report)

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        if self.reporter is not None:
            self.reporter.pytest_runtest_logfinish(nodeid)

    @pytest.hookimpl(wrapper=True)
    def pytest_report_to_serializable(
        self, report: pytest.TestReport
    ) -> Generator[None, dict[str, Any] | None, dict[str, Any] | None]:
        if self.runner is None:
            return (yield)
        return (yield from self.runner.pytest_report_to_serializable(report))
