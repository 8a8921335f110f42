"""The xdist controller's account of the trials, driven by fake workers as
xdist's own test_dsession drives its DSession with a MockNode: a worker that
dies mid-trial, in setup, every worker dying, a rerun that never runs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from pytest_hparams.controller import TrialTable
from pytest_hparams.metrics import Metric
from pytest_hparams.records import (
    STARTED_ATTR,
    TRIALS_OUTPUT,
    HParamInfo,
    Outcome,
    Started,
    SweepDefinition,
    TrialKey,
)
from pytest_hparams.reporter import Reporter
from pytest_hparams.settings import Settings
from pytest_hparams.xdist_hooks import XdistHooks

TEST = "test_x.py::test_x"
DEFINITION = SweepDefinition(
    TEST, "test_x", "test_x.py", ("test_x",), (HParamInfo("a", None),), (Metric("m"),)
)


def key(a: int) -> TrialKey:
    nodeid = f"{TEST}[a:{a}]"
    return TrialKey(nodeid, TEST, f"a:{a}", {"a": a}, combo=nodeid, file="test_x.py")


def worker_list(*trials: int) -> str:
    """What a worker that lived to the end says it collected."""
    return json.dumps([Started(key(a), None, DEFINITION).to_dict() for a in trials])


@dataclass
class MockNode:
    """An xdist worker as the controller's hooks see it."""

    workeroutput: dict[str, Any] = field(default_factory=dict)
    workerinput: dict[str, Any] = field(default_factory=dict)


def report(nodeid: str, when: str, outcome: str = "passed", **attrs: Any) -> pytest.TestReport:
    made = pytest.TestReport(nodeid, ("test_x.py", 0, "test_x"), {}, outcome, None, when)  # type: ignore[arg-type]
    for name, value in attrs.items():
        setattr(made, name, value)
    return made


def test_a_worker_dying_mid_trial_leaves_the_trial_its_setup_report_named() -> None:
    table = TrialTable()
    table.started(key(1).nodeid, Started(key(1)))
    table.crashed(key(1).nodeid)
    (crash,) = table.resolve().crashes
    assert crash.started.key == key(1) and not crash.as_collected and not crash.never_rerun


def test_a_worker_dying_in_setup_leaves_the_trial_a_worker_s_list_names() -> None:
    table = TrialTable()
    table.crashed(key(2).nodeid)  # no setup report came
    table.worker_list(worker_list(1, 2))
    table.worker_list(worker_list(3))  # every worker lists the same: the first is kept
    resolution = table.resolve()
    (crash,) = resolution.crashes
    assert crash.started.key == key(2) and crash.as_collected
    assert resolution.definitions == {TEST: DEFINITION}


def test_every_worker_dying_leaves_the_crash_unknown() -> None:
    table = TrialTable()
    table.crashed(key(1).nodeid)
    table.rerun_due(key(2).nodeid)
    resolution = table.resolve()
    assert resolution.crashes == []
    assert resolution.unknown == [(key(1).nodeid, False), (key(2).nodeid, True)]


def test_a_rerun_that_never_runs_is_a_crash_and_one_that_runs_is_not() -> None:
    table = TrialTable()
    for a in (1, 2):
        table.started(key(a).nodeid, Started(key(a)))
        table.rerun_due(key(a).nodeid)
    table.started(key(2).nodeid, Started(key(2)))  # its rerun began, and ended
    table.ended(key(2).nodeid)
    (crash,) = table.resolve().crashes
    assert crash.nodeid == key(1).nodeid and crash.never_rerun


def test_a_crashed_test_that_is_no_trial_is_left_to_pytest() -> None:
    table = TrialTable()
    table.crashed("test_plain.py::test_plain")
    table.worker_list(worker_list(1))
    assert table.resolve().crashes == [] and table.resolve().unknown == []


def test_the_reporter_records_a_crash_from_the_workers_events() -> None:
    reporter = Reporter(Settings())
    hooks = XdistHooks(reporter, "load")
    started = Started(key(1), None, DEFINITION).to_dict()
    reporter.pytest_runtest_logreport(report(key(1).nodeid, "setup", **{STARTED_ATTR: started}))
    hooks.pytest_handlecrashitem(key(1).nodeid, report(key(1).nodeid, "???", "failed"), None)
    hooks.pytest_handlecrashitem(key(2).nodeid, report(key(2).nodeid, "???", "failed"), None)
    hooks.pytest_testnodedown(MockNode({TRIALS_OUTPUT: worker_list(1, 2)}), None)
    reporter.resolve_crashes()
    outcomes = {r.nodeid: r.outcome for r in reporter.all_records}
    assert outcomes == {key(1).nodeid: Outcome.CRASHED, key(2).nodeid: Outcome.CRASHED}
    assert reporter.never_rerun == [] and reporter.unknown == []
