"""The xdist controller's hooks, registered only where xdist is: the
journal the workers' studies share, the usage errors workers found while
collecting, and the trials of workers that died, which the `Reporter` ends."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import TYPE_CHECKING, Any

import pytest

from pytest_hparams.options import BEGAN_INPUT, DIST_INPUT, RUN_INPUT
from pytest_hparams.records import TRIALS_OUTPUT, USAGE_ERROR_OUTPUT

if TYPE_CHECKING:
    from pytest_hparams.reporter import Reporter


class XdistHooks:
    """Without a logdir or a storage URL, the workers share their pruners'
    studies through a journal file in a temporary directory, named here and
    removed when the run ends; a worker makes it only when a sweep prunes, so
    a run that prunes nothing touches no file.
    """

    JOURNAL_INPUT = "hparams_journal"

    def __init__(self, reporter: Reporter, dist: str) -> None:
        self.reporter = reporter
        self.dist = dist  # the controller's --dist
        self.journal: str | None = None

    @pytest.hookimpl
    def pytest_configure_node(self, node: Any) -> None:
        settings = self.reporter.settings
        node.workerinput[RUN_INPUT] = settings.run  # one study for all the workers
        node.workerinput[BEGAN_INPUT] = settings.began
        node.workerinput[DIST_INPUT] = self.dist
        if settings.store is not None or settings.storage is not None:
            return
        if self.journal is None:
            folder = f"pytest-hparams-{os.getpid()}-{os.urandom(4).hex()}"
            self.journal = os.path.join(tempfile.gettempdir(), folder, "journal")
            self.reporter.journal = self.journal
        node.workerinput[self.JOURNAL_INPUT] = self.journal

    def close(self) -> None:
        if self.journal is not None:
            shutil.rmtree(os.path.dirname(self.journal), ignore_errors=True)

    @pytest.hookimpl(trylast=True)  # after a plugin that reruns the item instead
    def pytest_handlecrashitem(self, crashitem: str, report: pytest.TestReport, sched: Any) -> None:
        # pytest-rerunfailures sets "rerun", outside pytest's outcome literals.
        if str(report.outcome) == "rerun":
            self.reporter.table.rerun_due(crashitem)
        else:
            self.reporter.table.crashed(crashitem)

    @pytest.hookimpl
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        output = getattr(node, "workeroutput", None) or {}
        if TRIALS_OUTPUT in output:
            self.reporter.table.worker_list(output[TRIALS_OUTPUT])
        if USAGE_ERROR_OUTPUT in output and self.reporter.usage_error is None:
            self.reporter.usage_error = str(output[USAGE_ERROR_OUTPUT])
