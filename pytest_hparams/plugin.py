"""The pytest plugin (entry point `hparams`): its options, the `trial`
fixture, and when the run's objects (`registration.py`) are registered.

This module loads in every pytest run of a project that installs the
plugin, so it imports only what declares the options. A run that asks
nothing of the plugin (no `--hparams-*` option or `hparams_*` ini value, no
xdist) loads the rest of the package once it collects a sweep: most runs of
a project collect none (bench.py's startup row). The extras are loaded on
first use, in `lazy.py`.
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_hparams import MARK, options
from pytest_hparams.progress import LiveLine

if TYPE_CHECKING:
    from pytest_hparams.registration import Registration
    from pytest_hparams.trial import Trial

#: pytest runs in this process whose plugin is configured (pytest_configure to
#: pytest_unconfigure): a count, as pytester's in-process runs nest in another.
#: The decorators read it, to tell a sweep from one under -p no:hparams.
active_runs = 0

REGISTRATION_KEY: pytest.StashKey[Registration | Dormant] = pytest.StashKey()


def pytest_addoption(parser: pytest.Parser) -> None:
    options.addoption(parser)


def pytest_configure(config: pytest.Config) -> None:
    global active_runs
    config.addinivalue_line(
        "markers",
        "pytest_hparams_sweep(sweep): applied by @hparam_grid, @hparam_random and "
        "@hparam_search: run the test once per trial and record it (pytest-hparams)",
    )
    if options.asked(config) or _distributed(config):
        config.stash[REGISTRATION_KEY] = _register(config)
    else:
        dormant = config.stash[REGISTRATION_KEY] = Dormant(config)
        config.pluginmanager.register(dormant, "hparams-dormant")
    active_runs += 1


def pytest_unconfigure(config: pytest.Config) -> None:
    global active_runs
    registered = config.stash.get(REGISTRATION_KEY, None)
    if registered is not None:
        active_runs -= 1
        registered.unregister()
        del config.stash[REGISTRATION_KEY]


@pytest.fixture
def trial(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Trial:
    """The running trial of an @hparam_grid test: hparams, id, seed, logdir, log()."""
    registered = request.config.stash.get(REGISTRATION_KEY, None)
    trial = None
    if registered is not None and not isinstance(registered, Dormant):
        trial = registered.runner.trial_for(request.node.nodeid, tmp_path_factory)
    if trial is None:
        pytest.fail(
            "the `trial` fixture is only available to tests decorated with @hparam_grid",
            pytrace=False,
        )
    return trial


def _distributed(config: pytest.Config) -> bool:
    """Whether this process is an xdist worker or controller: the controller
    never collects, and must hear of a trial whose worker dies."""
    return hasattr(config, "workerinput") or config.getoption("dist", "no") != "no"


def _register(config: pytest.Config) -> Registration:
    # The one deferred import of the package's own modules: the runner,
    # the reporter and all they use, in a run that needs them.
    from pytest_hparams.registration import Registration

    return Registration(config)


class Dormant:
    """Stands in for the run's objects until it collects a sweep (or a
    unittest.TestCase, which must be refused one)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.session: pytest.Session | None = None
        self.live: LiveLine | None = None

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.session = session
        # Opened now, as the runner opens it: pytest captures the terminal
        # while it collects, where a sweep wakes the runner.
        self.live = LiveLine.open(session.config)

    @pytest.hookimpl(wrapper=True)
    def pytest_pycollect_makeitem(
        self, collector: pytest.Collector, name: str, obj: object
    ) -> Generator[None, Any, Any]:
        result = yield
        unittest = sys.modules.get("unittest")
        if unittest is not None and isinstance(obj, type) and issubclass(obj, unittest.TestCase):
            self.wake().runner.check_class(collector, obj)
        return result

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if metafunc.definition.get_closest_marker(MARK) is not None:
            self.wake().runner.pytest_generate_tests(metafunc)

    def wake(self) -> Registration:
        """Registers the run's objects in its place, as if from the start."""
        registered = self.config.stash[REGISTRATION_KEY] = _register(self.config)
        self.config.pluginmanager.unregister(self)
        if self.session is not None:
            registered.join(self.session, self.live)
            self.live = None  # the runner's now
        return registered

    def unregister(self) -> None:
        if self.live is not None:
            self.live.close()
        self.config.pluginmanager.unregister(self)
