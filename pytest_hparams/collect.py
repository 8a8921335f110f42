"""From `@hparam_grid` marks to parametrized items, and back to trial specs."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import pytest

from pytest_hparams.errors import HParamsError
from pytest_hparams.space import Sweep, Value, build_sweep, trial_id
from pytest_hparams.trial import TrialSpec

MARK = "hparam_grid"


class _Compiled(NamedTuple):
    """What every item of one sweep shares, computed once."""

    mark: pytest.Mark  # kept so that its id is never reused while cached
    sweep: Sweep
    names: tuple[str, ...]
    ids: dict[tuple[Value, ...], str]  # the values of a combination -> its pytest id
    definition: dict[str, Any]


# Marks are shared by every item of a function (and every method of a marked
# class): build each sweep once, not once per item.
_compiled: dict[int, _Compiled] = {}
_argnames: dict[Callable[..., Any], tuple[str, ...]] = {}


def compiled(mark: pytest.Mark) -> _Compiled:
    """The validated sweep of a mark, with its ids; raises HParamsError."""
    cached = _compiled.get(id(mark))
    if cached is not None and cached.mark is mark:
        return cached
    kwargs = dict(mark.kwargs)
    metrics = kwargs.pop("metrics", None)
    sweep = build_sweep(mark.args, kwargs, metrics)
    ids = {tuple(c.values()): trial_id(c) for c in sweep.combinations()}
    _compiled[id(mark)] = _Compiled(mark, sweep, sweep.names, ids, sweep.definition())
    return _compiled[id(mark)]


def parametrize(metafunc: pytest.Metafunc) -> Sweep:
    """Parametrizes a swept function, or fails its collection with one line."""
    marks = list(metafunc.definition.iter_markers(MARK))
    where = f"In {metafunc.definition.nodeid}:"
    if len(marks) > 1:
        pytest.fail(
            f"{where} @hparam_grid is applied {len(marks)} times; merge them into one",
            pytrace=False,
        )
    try:
        swept = compiled(marks[0])
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


def spec_for(item: pytest.Item, mark: pytest.Mark) -> TrialSpec | None:
    """What the plugin needs of a swept item, or None if it was not parametrized."""
    callspec = getattr(item, "callspec", None)
    if callspec is None or not isinstance(item, pytest.Function):
        return None
    swept = compiled(mark)
    params = callspec.params
    source = params.get("hparams", params)
    hparams = {n: source[n] for n in swept.names}
    tid = swept.ids[tuple(hparams.values())]
    case = callspec.id.replace(tid, "", 1).strip("-") if tid in callspec.id else ""
    test = item.nodeid[: -(len(callspec.id) + 2)]
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
        test = item.nodeid[: -(len(callspec.id) + 2)]
        index = seen.get(test, 0)
        seen[test] = index + 1
        (keep if index % n == k - 1 else drop).append(item)
    return keep, drop
