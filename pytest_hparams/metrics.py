"""A metric's declaration: its goal, the bounds a trial must meet and the
tolerance against a baseline (`Metric`, `Tolerance`).

Pure data: no pytest, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

Goal = Literal["max", "min"]

# Names whose best value is the smallest; anything else is maximised unless
# the user says otherwise.
_MIN_SUFFIXES = ("loss", "error", "err", "mse", "mae", "rmse", "perplexity", "time")
# Optuna's directions and TensorBoard's GOAL_MAXIMIZE words, beside our own.
_GOALS = {"max": "max", "min": "min", "maximize": "max", "minimize": "min"}


class Tolerance(NamedTuple):
    """How far a metric may move in its bad direction before it regressed."""

    value: float
    relative: bool = False

    def amount(self, baseline: float) -> float:
        return abs(baseline) * self.value if self.relative else self.value

    def __str__(self) -> str:
        return f"{self.value * 100:g}%" if self.relative else f"{self.value:g}"


def parse_tolerance(raw: object) -> Tolerance:
    """Parses `0.02` (absolute) or `"5%"` (relative to the baseline value).

    Raises:
      ValueError: With a message saying what is accepted.
    """
    text = str(raw).strip()
    relative = text.endswith("%")
    try:
        value = float(text[:-1] if relative else text)
    except ValueError:
        value = math.nan
    if isinstance(raw, bool) or not math.isfinite(value) or value < 0:
        raise ValueError(f"a tolerance must be a number >= 0 or a percentage like 5% (got {raw!r})")
    return Tolerance(value / 100 if relative else value, relative)


def _resolved_goal(name: object, goal: object) -> object:
    """The goal as "max" or "min": given, an alias's, or the one a name suggests
    when none is given; anything else as given, for `Metric.problem` to report."""
    if goal is None and isinstance(name, str):
        goal = "min" if name.lower().endswith(_MIN_SUFFIXES) else "max"
    if isinstance(goal, str):
        return _GOALS.get(goal, goal)
    return goal


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _inside_run(group: str) -> bool:
    """Whether a group names a directory below the trial's run (not absolute,
    not on a drive, and no empty, "." or ".." part)."""
    if group.startswith(("/", "\\")) or ":" in group:
        return False
    return all(p not in ("", ".", "..") for p in group.replace("\\", "/").split("/"))


class Metric:
    """A metric a trial reports, which direction is better, and its gates.

    Args:
      name: The key in the dict the test returns, and the scalar's tag in
        TensorBoard.
      goal: "max" or "min" (or "maximize", "minimize"). Defaults to "min"
        for names ending in loss, error, mse, mae, rmse, perplexity or
        time, else "max".
      display_name: The column title in TensorBoard's dashboard.
      description: Shown as the column's tooltip in TensorBoard.
      group: The subdirectory of the trial's run holding the scalar, as in
        TensorBoard's `hp.Metric(group=...)`.
      min: A trial whose value is below it fails.
      max: A trial whose value is above it fails.
      tolerance: How far the metric may move in its bad direction from the
        baseline before the trial fails: a number (absolute) or "5%".

    Mistakes (a bad goal, min > max, a bad tolerance) are reported when the
    sweep is collected, as a one-line collection error.
    """

    __slots__ = ("description", "display_name", "goal", "group", "max", "min", "name", "tolerance")

    def __init__(
        self,
        name: str,
        goal: str | None = None,
        *,
        display_name: str = "",
        description: str = "",
        group: str = "",
        min: float | None = None,
        max: float | None = None,
        tolerance: float | str | None = None,
    ) -> None:
        self.name = name
        self.goal: Goal = _resolved_goal(name, goal)  # type: ignore[assignment]
        self.display_name = display_name or ""
        self.description = description or ""
        self.group = group or ""
        self.min = min
        self.max = max
        self.tolerance = tolerance

    def problem(self) -> str | None:
        """What is wrong with this declaration, or None."""
        checks = (
            self._name_problem,
            self._goal_problem,
            self._bounds_problem,
            self._group_problem,
            self._tolerance_problem,
        )
        for check in checks:
            problem = check()
            if problem is not None:
                return problem
        return None

    def _name_problem(self) -> str | None:
        if isinstance(self.name, str) and self.name.strip():
            return None
        return (
            "Metric name must be a non-blank string: it titles a table column and names "
            f"a TensorBoard tag (got {self.name!r})"
        )

    def _goal_problem(self) -> str | None:
        if self.goal in ("max", "min"):
            return None
        return (
            f"Metric {self.name!r}: goal must be 'max', 'min', 'maximize' or 'minimize' "
            f"(got {self.goal!r})"
        )

    def _bounds_problem(self) -> str | None:
        for bound in ("min", "max"):
            value = getattr(self, bound)
            if value is not None and not _is_number(value):
                return f"Metric {self.name!r}: {bound} must be a number (got {value!r})"
        if self.min is not None and self.max is not None and self.min > self.max:
            return f"Metric {self.name!r}: min {self.min!r} is greater than max {self.max!r}"
        return None

    def _group_problem(self) -> str | None:
        group = self.group
        if not group or (isinstance(group, str) and _inside_run(group)):
            return None
        return (
            f"Metric {self.name!r}: group must be a relative directory inside the trial's "
            f"run, such as 'validation' (got {group!r})"
        )

    def _tolerance_problem(self) -> str | None:
        if self.tolerance is None:
            return None
        try:
            parse_tolerance(self.tolerance)
        except ValueError as e:
            return f"Metric {self.name!r}: {e}"
        return None

    def __repr__(self) -> str:
        return f"Metric({self.name!r}, goal={self.goal!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Metric) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "goal": self.goal,
            "display_name": self.display_name,
            "description": self.description,
            "group": self.group,
            "min": self.min,
            "max": self.max,
            "tolerance": self.tolerance,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Metric:
        return cls(
            data["name"],
            data["goal"],
            display_name=data.get("display_name", ""),
            description=data.get("description", ""),
            group=data.get("group", ""),
            min=data.get("min"),
            max=data.get("max"),
            tolerance=data.get("tolerance"),
        )
