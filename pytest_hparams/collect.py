"""From `@hparam_grid` marks to parametrized items, and back to trial specs."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from pytest_hparams import MARK
from pytest_hparams.errors import HParamsError
from pytest_hparams.sampling import sample_sweep
from pytest_hparams.space import Sweep, Value, build_sweep, parse_override, trial_id
from pytest_hparams.trial import TrialSpec


class _Compiled(NamedTuple):
    """What every item of one sweep shares, computed once."""

    mark: pytest.Mark  # kept so that its id is never reused while cached
    sweep: Sweep
    names: tuple[str, ...]
    ids: dict[tuple[Value, ...], str]  # the values of a combination -> its pytest id
    definition: dict[str, Any]


Overrides = tuple[tuple[str, tuple[str, ...]], ...]  # --hparams-set NAME=V1,V2


class OverrideError(HParamsError):
    """An `--hparams-set` value does not fit its hparam: a usage error."""


# Marks are shared by every item of a function (and every method of a marked
# class): build each sweep once, not once per item.
_compiled: dict[tuple[int, Overrides], _Compiled] = {}
_argnames: dict[Callable[..., Any], tuple[str, ...]] = {}


def compiled(mark: pytest.Mark, overrides: Overrides = ()) -> _Compiled:
    """The validated sweep of a mark, with its ids; raises HParamsError."""
    key = (id(mark), overrides)
    cached = _compiled.get(key)
    if cached is not None and cached.mark is mark:
        return cached
    kwargs = dict(mark.kwargs)
    metrics = kwargs.pop("metrics", None)
    sample = kwargs.pop("_sample", None)

    def build(values: dict[str, Any]) -> Sweep:
        if sample is not None:
            return sample_sweep(sample[0], sample[1], mark.args, values, metrics)
        return build_sweep(mark.args, values, metrics)

    sweep = build(kwargs)
    wanted = dict(overrides)
    if any(h.name in wanted for h in sweep.hparams):
        try:
            for h in sweep.hparams:
                if h.name in wanted:
                    kwargs[h.name] = parse_override(h, wanted[h.name])
            sweep = build(kwargs)
        except HParamsError as e:
            raise OverrideError(str(e)) from None
    ids = {tuple(c.values()): trial_id(c) for c in sweep.combinations()}
    _compiled[key] = _Compiled(mark, sweep, sweep.names, ids, sweep.definition())
    return _compiled[key]


def parametrize(metafunc: pytest.Metafunc, overrides: Overrides = ()) -> Sweep:
    """Parametrizes a swept function, or fails its collection with one line.

    Raises:
      OverrideError: If `overrides` do not fit; the function is then
        parametrized without them, and the caller reports a usage error.
    """
    marks = list(metafunc.definition.iter_markers(MARK))
    where = f"In {metafunc.definition.nodeid}:"
    if len(marks) > 1:
        pytest.fail(
            f"{where} @hparam_grid or @hparam_random is applied {len(marks)} times; "
            "use one (a list in @hparam_random samples a choice)",
            pytrace=False,
        )
    try:
        swept = compiled(marks[0], overrides)
    except OverrideError:
        parametrize(metafunc)
        raise
    except HParamsError as e:
        error = str(e)
    else:
        error = ""
    if error:  # failed outside the except block, so no chained traceback shows
        pytest.fail(f"{where} {error}", pytrace=False)
    sweep = swept.sweep

    names = metafunc.fixturenames
    takes_dict = "hparams" in names
    missing = [n for n in sweep.names if n not in names]
    if missing and not takes_dict:
        pytest.fail(
            f"{where} @hparam_grid declares {missing[0]!r} but the function takes no such "
            f"argument; add it, or take an `hparams` argument to get all values as a dict",
            pytrace=False,
        )
    parametrized = _parametrized_names(metafunc)
    # pytest has no public view of which names are fixtures; this read-only
    # look at Metafunc's table is what tells a clash from a plain argument.
    fixtures = getattr(metafunc, "_arg2fixturedefs", {})
    for name in [*sweep.names, *(["hparams"] if takes_dict else [])]:
        if name in parametrized:
            pytest.fail(
                f"{where} {name!r} is both swept by @hparam_grid and parametrized by "
                "@pytest.mark.parametrize; keep one",
                pytrace=False,
            )
        if name in fixtures:
            pytest.fail(
                f"{where} {name!r} is swept by @hparam_grid but is also a fixture; "
                "rename the hparam or the fixture",
                pytrace=False,
            )

    argnames = [n for n in sweep.names if n in names]
    combos = list(sweep.combinations())
    if takes_dict:
        values = [(*(c[n] for n in argnames), c) for c in combos]
        argnames.append("hparams")
    else:
        values = [tuple(c[n] for n in argnames) for c in combos]
    metafunc.parametrize(argnames, values, ids=list(swept.ids.values()))
    return sweep


def _parametrized_names(metafunc: pytest.Metafunc) -> set[str]:
    out: set[str] = set()
    for mark in metafunc.definition.iter_markers("parametrize"):
        argnames = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
        if isinstance(argnames, str):
            argnames = argnames.split(",")
        out.update(a.strip() for a in argnames)
    return out


def test_of(nodeid: str, callspec_id: str) -> str:
    """The node id without its `[...]` parameter part (ids may hold `[` too)."""
    return nodeid[: -(len(callspec_id) + 2)]


def spec_for(item: pytest.Item, mark: pytest.Mark, overrides: Overrides = ()) -> TrialSpec | None:
    """What the plugin needs of a swept item, or None if it was not parametrized."""
    callspec = getattr(item, "callspec", None)
    if callspec is None or not isinstance(item, pytest.Function):
        return None
    try:
        swept = compiled(mark, overrides)
    except OverrideError:  # reported as a usage error at collection
        swept = compiled(mark)
    params = callspec.params
    source = params.get("hparams", params)
    hparams = {n: source[n] for n in swept.names}
    tid = swept.ids[tuple(hparams.values())]
    case = callspec.id.replace(tid, "", 1).strip("-") if tid in callspec.id else ""
    test = test_of(item.nodeid, callspec.id)
    return TrialSpec(
        test, item.nodeid, tid, case, hparams, swept.sweep, _args_of(item), swept.definition
    )


def _args_of(item: pytest.Function) -> tuple[str, ...]:
    # The arguments pytest would pass: required parameters of the callable
    # (bound methods have no `self`), as pytest's own pyfunc_call does.
    function = item.function
    if function not in _argnames:
        params = inspect.signature(item.obj).parameters.values()
        _argnames[function] = tuple(
            p.name
            for p in params
            if p.default is inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        )
    return _argnames[function]


def shard(items: list[pytest.Item], k: int, n: int) -> tuple[list[pytest.Item], list[pytest.Item]]:
    """Splits items for shard k of n: each sweep's i-th trial goes to shard i % n + 1.

    Every trial lands in exactly one shard and the shards of a sweep differ in
    size by one at most. Tests that are not swept run in shard 1 only.
    """
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    seen: dict[str, int] = {}
    for item in items:
        callspec = getattr(item, "callspec", None)
        if item.get_closest_marker(MARK) is None or callspec is None:
            (keep if k == 1 else drop).append(item)
            continue
        test = test_of(item.nodeid, callspec.id)
        index = seen.get(test, 0)
        seen[test] = index + 1
        (keep if index % n == k - 1 else drop).append(item)
    return keep, drop


def only_best(items: list[pytest.Item], path: Path) -> tuple[list[pytest.Item], list[pytest.Item]]:
    """Keeps each sweep's best trial recorded in a baseline or JSON report."""
    data = json.loads(path.read_text(encoding="utf-8"))
    best: set[str] = set()
    if data.get("format") == "pytest-hparams-report":
        for sweep in data["sweeps"]:  # trials are ranked best first
            passed = [t for t in sweep["trials"] if t["outcome"] in ("passed", "resumed")]
            if passed:
                best.add(passed[0]["nodeid"])
    else:
        entries = data.get("trials", {})
        by_test: dict[str, list[tuple[str, dict[str, float]]]] = {}
        for nodeid, entry in entries.items():
            by_test.setdefault(entry.get("test", nodeid.split("[")[0]), []).append(
                (nodeid, entry["metrics"])
            )
        goals = _goals(items)
        for test, trials in by_test.items():
            name, goal = goals.get(test) or (next(iter(trials[0][1]), ""), "max")
            scored = [(m[name], nodeid) for nodeid, m in trials if name in m]
            if scored:
                best.add((max(scored) if goal == "max" else min(scored))[1])
    keep = [item for item in items if item.nodeid in best]
    return keep, [item for item in items if item.nodeid not in best]


def _goals(items: list[pytest.Item]) -> dict[str, tuple[str, str]]:
    """The primary metric and its goal of each collected sweep, by test."""
    goals: dict[str, tuple[str, str]] = {}
    for item in items:
        mark = item.get_closest_marker(MARK)
        callspec = getattr(item, "callspec", None)
        if mark is None or callspec is None:
            continue
        test = test_of(item.nodeid, callspec.id)
        metrics = compiled(mark).sweep.metrics
        if test not in goals and metrics:
            goals[test] = (metrics[0].name, metrics[0].goal)
    return goals
