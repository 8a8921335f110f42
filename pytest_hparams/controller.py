"""The xdist controller's account of each trial it has heard of: begun on a
worker, ended, crashed with its worker, or due a rerun. Crashes are resolved
once, when the session ends, from this table and the workers' lists of the
trials they collected: by then every list that will arrive has arrived.

Pure: no pytest, no I/O. The `Reporter` feeds it events and records what
`resolve` returns, as xdist's `DSession` dispatches each worker event to one
handler.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field

from pytest_hparams.records import Started, SweepDefinition


class Heard(enum.Enum):
    """What the controller last heard of a trial."""

    STARTED = "started"  # its setup report came, with its key
    ENDED = "ended"  # its record, or its teardown report, came
    CRASHED = "crashed"  # its worker died running it
    RERUN_DUE = "rerun due"  # its worker died, and pytest-rerunfailures queued it again


@dataclass(slots=True)
class HeardTrial:
    """One trial as the controller knows it."""

    nodeid: str
    heard: Heard
    started: Started | None = None  # what its setup report carried


@dataclass(frozen=True)
class Crash:
    """A crashed trial to record: what its worker said of it, and how."""

    nodeid: str
    started: Started  # its key (and a remote logdir's staging)
    as_collected: bool  # named by a worker's list: no setup report came
    never_rerun: bool  # it was due a rerun that never ran


@dataclass
class Resolution:
    """What the end of the session makes of the table."""

    crashes: list[Crash] = field(default_factory=list)
    # The sweeps the workers' lists define, for a crash whose sweep no report defined.
    definitions: dict[str, SweepDefinition] = field(default_factory=dict)
    # Crashed, and no worker could name them (every worker died): node id, and
    # whether a rerun was due.
    unknown: list[tuple[str, bool]] = field(default_factory=list)


class TrialTable:
    """Every trial the controller has heard of, by node id."""

    def __init__(self) -> None:
        self.trials: dict[str, HeardTrial] = {}
        self._worker_list: str | None = None  # the first worker's, read only on a crash
        # Trials whose worker died at least once (a rerun may have ended them
        # since): their dead runs are left RUNNING in a study.
        self.crashed_once: set[str] = set()

    def started(self, nodeid: str, started: Started) -> None:
        """A worker began the trial (a rerun begins it again)."""
        self.trials[nodeid] = HeardTrial(nodeid, Heard.STARTED, started)

    def ended(self, nodeid: str) -> None:
        """The trial's record or teardown report came: nothing is left to resolve."""
        entry = self.trials.get(nodeid)
        if entry is not None:
            entry.heard = Heard.ENDED

    def crashed(self, nodeid: str) -> None:
        self._heard(nodeid, Heard.CRASHED)

    def rerun_due(self, nodeid: str) -> None:
        self._heard(nodeid, Heard.RERUN_DUE)

    def _heard(self, nodeid: str, heard: Heard) -> None:
        self.crashed_once.add(nodeid)
        entry = self.trials.get(nodeid)
        if entry is None:  # it died before its setup report: a worker's list may name it
            self.trials[nodeid] = HeardTrial(nodeid, heard)
        else:
            entry.heard = heard

    def worker_list(self, trials: str) -> None:
        """A worker's list of the trials it collected (one JSON string).
        Every worker collects the same trials: the first list is kept."""
        if self._worker_list is None:
            self._worker_list = trials

    def resolve(self) -> Resolution:
        """The crashed trials to record, at the session's end. A crashed
        test that no worker's list names is no trial: pytest tells its crash."""
        listed = self._listed()
        out = Resolution(
            definitions={
                s.definition.test: s.definition for s in listed if s.definition is not None
            }
        )
        collected = {s.key.nodeid: s for s in listed if s.key is not None}
        for entry in self.trials.values():
            if entry.heard in (Heard.CRASHED, Heard.RERUN_DUE):
                self._resolve_crash(entry, collected, out)
        return out

    def _listed(self) -> list[Started]:
        """What the first worker's list says of each trial; empty when no list came."""
        if self._worker_list is None:
            return []
        return list(map(Started.from_dict, json.loads(self._worker_list)))

    def _resolve_crash(
        self, entry: HeardTrial, collected: dict[str, Started], out: Resolution
    ) -> None:
        """Adds one crashed trial to `out`: a crash to record when its setup
        report or a worker's list says what it was, unknown when no list came."""
        due = entry.heard is Heard.RERUN_DUE
        started = entry.started if entry.started and entry.started.key else None
        found = started or collected.get(entry.nodeid)
        if found is not None:
            out.crashes.append(Crash(entry.nodeid, found, started is None, due))
        elif self._worker_list is None:
            out.unknown.append((entry.nodeid, due))
