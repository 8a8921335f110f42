"""Typed records, the payloads that cross process and file boundaries: who
a trial is (`TrialKey`), how it ended (`Outcome`), what the gates decided of
it (`Comparison`, in `verdicts.py`), what the reporting process keeps (`TrialRecord`), a
sweep's definition (`SweepDefinition`) and what a trial's start carries
(`Started`).

A record becomes a plain dict only where it leaves the process: on the
reports that xdist carries to the controller, and in the JSON report.
Everything between works on these types.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from pytest_hparams.metrics import Metric
from pytest_hparams.sweep import Domain, Value, format_value
from pytest_hparams.verdicts import Comparison, Verdict

# Set on the teardown report of every swept item: its `TrialRecord`, turned
# into a dict where the report is serialized (xdist carries it to the controller).
RECORD_ATTR = "hparams_trial"
# Set on the setup report where a trial's start must travel (`Started`).
STARTED_ATTR = "hparams_started"
# Set on the report of a pruned trial's call (or of its resumed setup): the
# step at which its pruner stopped it.
PRUNED_ATTR = "hparams_pruned"
# The key of an xdist worker's `workeroutput` that carries a usage error
# found while it collected (the controller does not collect).
USAGE_ERROR_OUTPUT = "hparams_usage_error"
# The key of an xdist worker's `workeroutput` that lists what a setup report
# would carry (`Started`) for every trial it collected: the controller's only
# account of a trial whose worker died before its setup report was sent.
TRIALS_OUTPUT = "hparams_trials"


def sweep_label(file: str, function: tuple[str, ...]) -> str:
    """A sweep's value in the dashboard's `sweep` column: the function's name
    first (the column is narrow), then where it lives:
    `test_train in tests/test_x.py::TestA`."""
    if not function:
        return file
    return f"{function[-1]} in {'::'.join([file, *function[:-1]])}"


class TrialKey(NamedTuple):
    """A swept item's identity, computed once at collection from public pytest API.

    Nothing downstream parses a node id: every part a module needs is here.

    Attributes:
      nodeid: `item.nodeid`: unique in the session and stable across runs; the
        key of records, baselines and `--hparams-resume`.
      test: The swept function's node id (the sweep).
      params: pytest's id of the item's parameters (`item.callspec.id`),
        which names the trial's run directory.
      hparams: The trial's swept values, from `item.callspec.params`.
      case: The item's other parameters (`@pytest.mark.parametrize`, or a
        plugin's such as pytest-repeat), as `name=value` text for the table.
      repeat: Which repeat of its combination the trial is (`repeats=`), or
        None when combinations run once.
      combo: The combination the trial belongs to: its node id when
        combinations run once, else the same without the repeat. Its
        repeats share one TensorBoard session group and one baseline entry.
      file: The test file's node id (its path from the rootdir, `/`-separated).
      function: The classes and the function of the sweep, outermost first.
      where: The combination's part of `combo` after `test` (`[units:16]`),
        as the table names it.
      number: An `@hparam_search` trial's number (`trial:K`); its `hparams`
        are empty until the trial starts and asks for them.
    """

    nodeid: str
    test: str
    params: str
    hparams: Mapping[str, Value]
    case: str = ""
    repeat: int | None = None
    combo: str = ""
    file: str = ""
    function: tuple[str, ...] = ()
    where: str = ""
    number: int | None = None

    @property
    def group(self) -> str:
        """The combination's name: `combo`, or the node id for a key made without one."""
        return self.combo or self.nodeid

    @property
    def folder(self) -> tuple[str, ...]:
        """The sweep's runs' folder under a logdir, a part each: the file's
        path, the classes and the function."""
        return (*self.file.split("/"), *self.function)

    @property
    def sweep_label(self) -> str:
        return sweep_label(self.file, self.function)

    @property
    def label(self) -> str:
        """The trial's session group name: TensorBoard's "Trial ID" column.

        The values come first, because the dashboard's column is narrow and
        cuts the rest; the node id after them keeps the name unique in any
        logdir, across sweeps and `parametrize` cases.
        """
        values = ", ".join(format_value(v) for v in self.hparams.values())
        return f"{values} · {self.group}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodeid": self.nodeid,
            "test": self.test,
            "params": self.params,
            "hparams": dict(self.hparams),
            "case": self.case,
            "repeat": self.repeat,
            "combo": self.group,
            "file": self.file,
            "function": list(self.function),
            "where": self.where,
            "number": self.number,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialKey:
        return cls(
            str(data["nodeid"]),
            str(data["test"]),
            str(data["params"]),
            dict(data["hparams"]),
            str(data["case"]),
            data.get("repeat"),
            str(data.get("combo") or data["nodeid"]),
            str(data.get("file", "")),
            tuple(str(p) for p in data.get("function", ())),
            str(data.get("where", "")),
            data.get("number"),
        )


@dataclass(frozen=True)
class HParamInfo:
    """What the dashboard shows of a swept hparam: its name, domain and texts."""

    name: str
    domain: Domain | None
    display_name: str = ""
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "domain": self.domain.to_dict() if self.domain else None,
            "display_name": self.display_name,
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HParamInfo:
        domain = data.get("domain")
        return cls(
            str(data["name"]),
            Domain.from_dict(domain) if domain else None,
            str(data.get("display_name") or ""),
            str(data.get("description") or ""),
        )


@dataclass(frozen=True)
class SweepDefinition:
    """A sweep as the reporting process and the logdir's config know it.

    Attributes:
      test: The swept function's node id.
      label: Its value in the dashboard's `sweep` column: the function's
        name first (the column is narrow), then where it lives.
      file: The test file's node id (its path from the rootdir, `/`-separated).
      function: The classes and the function, outermost first.
      asked: An `@hparam_search`: each trial's hparams were asked of a
        sampler, so no two runs share a combination to compare.
    """

    test: str
    label: str
    file: str
    function: tuple[str, ...]
    hparams: tuple[HParamInfo, ...]
    metrics: tuple[Metric, ...]
    asked: bool = False
    prunes: bool = False  # a pruner stops its hopeless trials

    @property
    def folder(self) -> tuple[str, ...]:
        """The sweep's runs' folder under a logdir, as `TrialKey.folder`."""
        return (*self.file.split("/"), *self.function)

    @property
    def hparam_names(self) -> list[str]:
        return [h.name for h in self.hparams]

    def to_dict(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "label": self.label,
            "file": self.file,
            "function": list(self.function),
            "hparams": [h.to_dict() for h in self.hparams],
            "metrics": [m.to_dict() for m in self.metrics],
            "asked": self.asked,
            "prunes": self.prunes,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SweepDefinition:
        return cls(
            str(data["test"]),
            str(data.get("label") or data["test"]),
            str(data.get("file", "")),
            tuple(str(p) for p in data.get("function") or ()),
            tuple(HParamInfo.from_dict(h) for h in data["hparams"]),
            tuple(Metric.from_dict(m) for m in data["metrics"]),
            bool(data.get("asked", False)),
            bool(data.get("prunes", False)),
        )


@dataclass(frozen=True)
class Started:
    """What a trial's setup report carries to the reporting process.

    Attributes:
      key: On an xdist worker, the trial's key, so the controller can end the
        trial should the worker die.
      staging: Where a remote logdir's trial is staged, for the same case.
      definition: The sweep's definition, the first time this process runs it.
    """

    key: TrialKey | None = None
    staging: str | None = None
    definition: SweepDefinition | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key.to_dict() if self.key else None,
            "staging": self.staging,
            "definition": self.definition.to_dict() if self.definition else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Started:
        key, definition = data.get("key"), data.get("definition")
        return cls(
            TrialKey.from_dict(key) if key else None,
            data.get("staging"),
            SweepDefinition.from_dict(definition) if definition else None,
        )


class Outcome(enum.StrEnum):
    """How a trial ended, as its table row, JSON entry and merge exit code say."""

    PASSED = "passed"
    FAILED = "failed"  # the test body failed (an assert, a bound, a regression)
    ERROR = "error"  # a fixture failed around it
    XFAILED = "xfailed"  # failed, and marked xfail: pytest's own word
    XPASSED = "xpassed"
    SKIPPED = "skipped"  # skipped by a mark or by pytest.skip() in the body
    RESUMED = "resumed"  # skipped by --hparams-resume; its recorded metrics stand
    CRASHED = "crashed"  # its xdist worker died
    PRUNED = "pruned"  # stopped early by its sweep's pruner: neither passed nor failed

    @property
    def ok(self) -> bool:
        """Whether the trial's metrics count: it ran to the end and passed."""
        return self in (Outcome.PASSED, Outcome.RESUMED, Outcome.XPASSED)

    @property
    def bad(self) -> bool:
        """Whether the trial fails a merged run (`python -m pytest_hparams merge`)."""
        return self in (Outcome.FAILED, Outcome.ERROR, Outcome.CRASHED)


@dataclass(slots=True)
class TrialRecord:
    """One trial as the reporting process keeps it.

    Attributes:
      key: The trial's identity.
      outcome: How it ended.
      metrics: What it returned, as floats.
      duration: Seconds over setup, call and teardown.
      comparison: The gates' verdict against the baseline, when one was given.
      pruned_at: The step at which its pruner stopped it.
    """

    key: TrialKey
    outcome: Outcome
    metrics: dict[str, float] = field(default_factory=dict)
    duration: float = 0.0
    comparison: Comparison | None = None
    pruned_at: int | None = None

    @property
    def nodeid(self) -> str:
        return self.key.nodeid

    @property
    def test(self) -> str:
        return self.key.test

    @property
    def verdict(self) -> Verdict | None:
        return self.comparison.verdict if self.comparison else None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.key.to_dict(),
            "outcome": self.outcome.value,
            "metrics": dict(self.metrics),
            "duration": self.duration,
            "baseline": self.comparison.to_dict() if self.comparison else None,
            "pruned_at": self.pruned_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialRecord:
        comparison = data.get("baseline")
        return cls(
            TrialKey.from_dict(data),
            Outcome(data["outcome"]),
            {k: float(v) for k, v in data["metrics"].items()},
            float(data.get("duration", 0.0)),
            Comparison.from_dict(comparison) if comparison else None,
            None if data.get("pruned_at") is None else int(data["pruned_at"]),
        )
