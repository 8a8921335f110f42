"""From `@hparam_grid` marks to parametrized items, each with its `TrialKey`;
and the item selections that follow collection (shards, `--hparams-only-best`)."""

from __future__ import annotations

import inspect
import json
import types
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from pytest_hparams import MARK
from pytest_hparams.errors import OverrideError, SweepError
from pytest_hparams.pruning import problem
from pytest_hparams.records import HParamInfo, SweepDefinition, TrialKey, sweep_label
from pytest_hparams.sampling import Search, sample_sweep, search_sweep
from pytest_hparams.sweep import Sweep, build_sweep, format_value, parse_override, trial_id

Overrides = tuple[tuple[str, tuple[str, ...]], ...]  # --hparams-set NAME=V1,V2


#: The parameter that numbers a combination's repeats (`repeat:K` in ids).
REPEAT_PARAM = "hparams_repeat"
#: The parameter that numbers a search's trials (`trial:K` in ids).
SEARCH_PARAM = "hparams_search"


class Compiled(NamedTuple):
    """What every trial of one swept function shares, built once per session."""

    sweep: Sweep
    definition: SweepDefinition  # what the reporting process and the logdir know of it
    argnames: tuple[str, ...]  # the arguments the plugin passes to the function
    repeats: int = 1
    pruner: object = None  # pruner=, as given
    search: Search | None = None  # @hparam_search: hparams asked as each trial starts


def repeats_of(mark: pytest.Mark) -> int:
    """The `repeats=` of a sweep's mark.

    Raises:
      SweepError: If it is not a whole number >= 1.
    """
    repeats = mark.kwargs.get("_repeats", 1)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise SweepError(f"repeats must be a whole number >= 1 (got {repeats!r})")
    return repeats


def compile_mark(mark: pytest.Mark, overrides: Overrides = ()) -> tuple[Sweep, Search | None]:
    """The validated sweep of a mark, with `--hparams-set` applied (on a
    search, a value set narrows that hparam to a choice), and its search.

    Raises:
      SweepError: If the declaration is wrong.
      OverrideError: If it is right but an override does not fit.
    """
    kwargs = dict(mark.kwargs)
    metrics = kwargs.pop("metrics", None)
    sample = kwargs.pop("_sample", None)
    search = kwargs.pop("_search", None)
    kwargs.pop("_repeats", None)
    kwargs.pop("_pruner", None)
    if search is not None and "repeats" in kwargs:
        raise SweepError(
            "@hparam_search takes no repeats= (each trial is asked values of its own, so "
            "no two share a combination to repeat); repeat a combination with "
            "@hparam_grid or @hparam_random(repeats=N)"
        )

    def build(values: dict[str, Any]) -> tuple[Sweep, Search | None]:
        if search is not None:
            return search_sweep(search[0], search[1], search[2], mark.args, values, metrics)
        if sample is not None:
            return sample_sweep(sample[0], sample[1], mark.args, values, metrics), None
        return build_sweep(mark.args, values, metrics), None

    sweep, searched = build(kwargs)
    try:
        values = _overridden(sweep, overrides)
        return build({**kwargs, **values}) if values else (sweep, searched)
    except SweepError as e:
        raise OverrideError(str(e)) from None


def _overridden(sweep: Sweep, overrides: Overrides) -> dict[str, Any]:
    """The `--hparams-set` values of the sweep's hparams, parsed, in the sweep's order.

    Raises:
      SweepError: If a value does not fit its hparam.
    """
    wanted = dict(overrides)
    return {h.name: parse_override(h, wanted[h.name]) for h in sweep.hparams if h.name in wanted}


def parametrize(
    metafunc: pytest.Metafunc, overrides: Overrides = (), repeats: int | None = None
) -> Compiled:
    """Parametrizes a swept function, or fails its collection with one line.

    Args:
      metafunc: pytest's view of the function.
      overrides: `--hparams-set` values.
      repeats: `--hparams-repeats`, which wins over the mark's `repeats=`.

    Raises:
      OverrideError: If `overrides` do not fit; the function is then
        parametrized without them, and the caller reports a usage error.
    """
    marks = list(metafunc.definition.iter_markers(MARK))
    where = f"In {metafunc.definition.nodeid}:"
    _check_the_mark_fits(marks, metafunc.function, where)
    try:
        sweep, search, count, pruner = _compile(marks[0], overrides, repeats)
    except OverrideError:
        parametrize(metafunc, repeats=repeats)
        raise
    except SweepError as e:
        error = str(e)
    else:
        error = ""
    if error:  # failed outside the except block, so no chained traceback shows
        _fail(f"{where} {error}")
    _check_the_arguments(metafunc, sweep, search, where)
    argnames, values, ids = _parameters(metafunc, sweep, search, count, where)
    metafunc.parametrize(argnames, values, ids=ids)
    definition = define(metafunc.definition, sweep, search is not None)
    args = _required_args(metafunc.function, metafunc.cls)
    return Compiled(sweep, definition, args, count, pruner, search)


def _check_the_mark_fits(marks: list[pytest.Mark], function: Any, where: str) -> None:
    if len(marks) > 1:
        _fail(
            f"{where} @hparam_grid, @hparam_random or @hparam_search is applied "
            f"{len(marks)} times; use one (a list in @hparam_random samples a choice)"
        )
    if inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function):
        _fail(
            f"{where} @hparam_grid needs a plain `def` test, not `async def`; "
            "run the coroutine inside it, e.g. return asyncio.run(train(...))"
        )


def _compile(
    mark: pytest.Mark, overrides: Overrides, repeats: int | None
) -> tuple[Sweep, Search | None, int, Any]:
    """The mark's sweep, its search, how often each combination runs, and
    its pruner; a mistake is a SweepError (or an OverrideError)."""
    sweep, search = compile_mark(mark, overrides)
    count = repeats or repeats_of(mark)
    if search is not None:
        count = 1  # each trial is asked anew: there is no combination to repeat
    pruner = mark.kwargs.get("_pruner")
    if pruner is not None:  # a sweep that does not prune loads no pruning code
        wrong = problem(pruner)
        if wrong is not None:
            raise SweepError(wrong)
        if not sweep.metrics:
            raise SweepError("pruner= needs metrics=[...]: the first is what the pruner watches")
    return sweep, search, count, pruner


def _check_the_arguments(
    metafunc: pytest.Metafunc, sweep: Sweep, search: Search | None, where: str
) -> None:
    """Every swept name is an argument of the function (or it takes
    `hparams`), and none is also parametrized."""
    names = metafunc.fixturenames
    takes_dict = "hparams" in names
    missing = [n for n in sweep.names if n not in names]
    if missing and not takes_dict:
        _refuse_missing(metafunc.function, missing[0], f"{where} {_decorator(sweep, search)}")
    _refuse_parametrized(metafunc, [*sweep.names, *(["hparams"] if takes_dict else [])], where)


def _refuse_parametrized(metafunc: pytest.Metafunc, swept: list[str], where: str) -> None:
    """Fails a sweep one of whose `swept` arguments is also parametrized."""
    parametrized = _parametrized_names(metafunc)
    for name in swept:
        if name in parametrized:
            _fail(
                f"{where} {name!r} is both swept by @hparam_grid and parametrized by "
                "@pytest.mark.parametrize; keep one"
            )


def _decorator(sweep: Sweep, search: Search | None) -> str:
    """The decorator that declared a sweep, as the user wrote it."""
    if search is not None:
        return "@hparam_search"
    return "@hparam_random" if sweep.fixed else "@hparam_grid"


def _refuse_missing(function: Any, name: str, declared_by: str) -> None:
    """Fails a sweep whose function takes no swept argument `name`."""
    parameter = inspect.signature(function).parameters.get(name)
    if parameter is not None:  # pytest passes no argument that has a default
        _fail(
            f"{declared_by} declares {name!r}, and the function's argument "
            f"{name!r} has a default value, which pytest never replaces; remove it"
        )
    _fail(
        f"{declared_by} declares {name!r} but the function takes no such "
        f"argument; add it, or take an `hparams` argument to get all values as a dict"
    )


def _parameters(
    metafunc: pytest.Metafunc, sweep: Sweep, search: Search | None, count: int, where: str
) -> tuple[list[str], list[tuple[Any, ...]], list[str]]:
    """The argument names, values and ids to parametrize the function with:
    an item per combination (or searched trial), and per repeat."""
    names = metafunc.fixturenames
    argnames = [n for n in sweep.names if n in names]
    combos, ids = _trials(sweep, search, where)
    values = [tuple(c[n] for n in argnames) for c in combos]
    if "hparams" in names:
        values = [(*v, c) for v, c in zip(values, combos, strict=True)]
        argnames.append("hparams")
    return _numbered(metafunc, argnames, values, ids, search, count)


def _numbered(
    metafunc: pytest.Metafunc,
    argnames: list[str],
    values: list[tuple[Any, ...]],
    ids: list[str],
    search: Search | None,
    count: int,
) -> tuple[list[str], list[tuple[Any, ...]], list[str]]:
    """The argument names, values and ids, with the parameters the function
    does not take: a search's trial number, and each repeat's number."""
    if search is not None:
        metafunc.fixturenames.append(SEARCH_PARAM)
        argnames.append(SEARCH_PARAM)
        values = [(*v, k) for k, v in enumerate(values)]
    if count > 1:
        # Each repeat is its own item (pytest-repeat adds its step number the same way).
        metafunc.fixturenames.append(REPEAT_PARAM)
        argnames.append(REPEAT_PARAM)
        values, ids = _repeated(values, ids, count)
    return argnames, values, ids


def _trials(
    sweep: Sweep, search: Search | None, where: str
) -> tuple[list[dict[str, Any]], list[str]]:
    """Each trial's hparams and its id: a grid's or sample's combinations,
    or a search's trials."""
    if search is not None:
        # The values are asked when each trial starts; until then its
        # arguments hold None, and the runner passes the asked values.
        return [{n: None for n in sweep.names}] * search.n, [f"trial:{k}" for k in range(search.n)]
    combos = list(sweep.combinations())
    ids = [trial_id(c) for c in combos]
    if len(set(ids)) != len(ids):
        _refuse_colliding_ids(where, combos, ids)
    return combos, ids


def _repeated(
    values: list[tuple[Any, ...]], ids: list[str], count: int
) -> tuple[list[tuple[Any, ...]], list[str]]:
    """Each trial's values and id, `count` times, each numbered by its repeat."""
    return (
        [(*v, k) for v in values for k in range(count)],
        [f"{i}-repeat:{k}" for i in ids for k in range(count)],
    )


def where_of(item: pytest.Item) -> tuple[str, tuple[str, ...]]:
    """An item's file (its module's node id) and the classes and function
    that hold it, outermost first: the parts of its node id, from pytest's
    own collection tree rather than from the id's text."""
    chain = item.listchain()
    module = next((n for n in chain if isinstance(n, pytest.Module)), None)
    classes = tuple(n.name for n in chain if isinstance(n, pytest.Class))
    name = getattr(item, "originalname", item.name)
    return (module.nodeid if module is not None else ""), (*classes, name)


def define(function: pytest.Item, sweep: Sweep, asked: bool = False) -> SweepDefinition:
    """A sweep's definition, named by its function's place in the tree."""
    file, names = where_of(function)
    return SweepDefinition(
        test=function.nodeid,
        label=sweep_label(file, names),
        file=file,
        function=names,
        hparams=tuple(
            HParamInfo(h.name, h.domain, h.display_name, h.description) for h in sweep.hparams
        ),
        metrics=sweep.metrics,
        asked=asked,
    )


def _refuse_colliding_ids(where: str, combos: list[dict[str, Any]], ids: list[str]) -> None:
    # pytest would number such ids by their order (`...c0`, `...c1`), so a
    # reordered grid would hand one combination's baseline entry, logdir
    # run and repeats to the other.
    seen: dict[str, dict[str, Any]] = {}
    for combo, id_ in zip(combos, ids, strict=True):
        if id_ in seen:
            _fail(
                f"{where} {seen[id_]} and {combo} both read as [{id_}]: a value holds "
                "'-NAME:'; change it so each combination's id is its own"
            )
        seen[id_] = combo


def _fail(message: str) -> None:
    pytest.fail(message, pytrace=False)


def _required_args(function: Any, cls: type | None) -> tuple[str, ...]:
    # The arguments pytest would pass: required parameters of the function,
    # less `self` for a method, as pytest's own pyfunc_call does.
    return tuple(
        p.name
        for p in _unbound_parameters(function, cls)
        if p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    )


def _unbound_parameters(function: Any, cls: type | None) -> list[inspect.Parameter]:
    """The function's parameters, less `self` when it is a method of `cls`."""
    params = list(inspect.signature(function).parameters.values())
    if (
        cls is not None
        and params
        # getattr_static: a staticmethod inherited from a base class counts too.
        and not isinstance(inspect.getattr_static(cls, function.__name__, None), staticmethod)
    ):
        params = params[1:]
    return params


def _parametrized_names(metafunc: pytest.Metafunc) -> set[str]:
    out: set[str] = set()
    for mark in metafunc.definition.iter_markers("parametrize"):
        argnames = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
        if isinstance(argnames, str):
            argnames = argnames.split(",")
        out.update(a.strip() for a in argnames)
    return out


def refuse_unittest(collector: pytest.Collector, cls: type) -> None:
    """Fails the collection of a unittest.TestCase that carries a sweep.

    Reads only the class's own dict and the marks of its plain functions: a
    TestCase's other attributes (a Mock, a lazy setting whose access raises)
    are the project's, and are never touched.
    """
    marked = _swept_members(cls)
    if marked:
        where = f"{cls.__name__}.{marked[0]}" if marked[0] else cls.__name__
        _fail(
            f"In {collector.nodeid}::{where}: @hparam_grid needs a plain test function or a "
            "method of a plain class; pytest runs unittest.TestCase methods without "
            "parameters, so the sweep would run once; move it out of the TestCase"
        )


def _swept_members(cls: type) -> list[str]:
    """The names of the class's own plain functions that carry a sweep's
    mark, "" first for the class itself when it carries one."""
    return [
        name
        for name, value in [("", cls), *vars(cls).items()]
        if (value is cls or type(value) is types.FunctionType) and _swept(value)
    ]


def _swept(value: object) -> bool:
    """Whether a class or function carries a sweep's mark in its own dict."""
    return any(getattr(m, "name", None) == MARK for m in vars(value).get("pytestmark", []))


def keys_of(items: list[pytest.Item], sweeps: Mapping[str, Compiled]) -> dict[str, TrialKey]:
    """The `TrialKey` of every swept item, by node id."""
    keys: dict[str, TrialKey] = {}
    for item in items:
        test = sweep_of(item)
        compiled = sweeps.get(test) if test is not None else None
        if compiled is not None and hasattr(item, "callspec"):
            assert isinstance(item, pytest.Function)
            keys[item.nodeid] = key_of(item, compiled.definition, compiled.sweep.names)
    return keys


def only_best(
    items: list[pytest.Item], path: Path, goals: Mapping[str, tuple[str, str]]
) -> tuple[list[pytest.Item], list[pytest.Item], dict[str, dict[str, Any]]]:
    """Keeps each sweep's best trial recorded in a baseline or JSON report;
    returns the items kept, those dropped, and the hparams each best was given.

    Raises:
      pytest.UsageError: If no collected item is such a trial.
    """
    try:
        best = read_best(path, goals)
    except SweepError as e:
        raise pytest.UsageError(f"--hparams-only-best: {e}") from None
    keep = [item for item in items if item.nodeid in best]
    if not keep:
        raise pytest.UsageError(
            f"--hparams-only-best: no trial in {path} matches a collected sweep; "
            "check the file and the tests selected"
        )
    return keep, [item for item in items if item.nodeid not in best], best


def sweep_of(item: pytest.Item) -> str | None:
    """The node id of the swept function an item belongs to, or None."""
    if not isinstance(item, pytest.Function) or item.parent is None:
        return None
    return f"{item.parent.nodeid}::{item.originalname}"


def key_of(item: pytest.Function, sweep: SweepDefinition, names: tuple[str, ...]) -> TrialKey:
    """A swept item's identity: from its node id and its parameters, nothing parsed.

    A repeat's combination (its session group, its baseline entry) is named
    from the same parts: the sweep, the values and the other parameters.
    """
    params: Mapping[str, Any] = item.callspec.params
    source = params.get("hparams", params)
    # A search's hparams are asked when its trial starts (the runner fills them in).
    hparams = {} if SEARCH_PARAM in params else {n: source[n] for n in names}
    case = _case(params, names)
    repeat = params.get(REPEAT_PARAM)
    combo, where = item.nodeid, f"[{item.callspec.id}]"
    if repeat is not None:
        where = f"[{trial_id(hparams)}{'-' + case if case else ''}]"
        combo = sweep.test + where
    return TrialKey(
        item.nodeid,
        sweep.test,
        item.callspec.id,
        hparams,
        case,
        repeat,
        combo,
        sweep.file,
        sweep.function,
        where,
        params.get(SEARCH_PARAM),
    )


def _case(params: Mapping[str, Any], names: tuple[str, ...]) -> str:
    """The item's parameters that are not the sweep's (`@pytest.mark.parametrize`'s):
    `dataset=mnist, seed=1`."""
    ours = {*names, "hparams", REPEAT_PARAM, SEARCH_PARAM}
    return ", ".join(f"{k}={_shown(v)}" for k, v in params.items() if k not in ours)


def _shown(value: object) -> str:
    if isinstance(value, (bool, int, float, str)):
        return format_value(value)
    return type(value).__name__


def shard(
    items: list[pytest.Item], keys: Mapping[str, TrialKey], k: int, n: int
) -> tuple[list[pytest.Item], list[pytest.Item]]:
    """Splits items for shard k of n, whatever order other plugins put them in.

    Each sweep's combinations, sorted, are dealt round-robin: every trial
    lands in exactly one shard, a combination's repeats in the same one (so
    each shard's baseline gate sees all of them), and a sweep's shards differ
    by one combination at most. Tests that are not swept run in shard 1 only.
    """
    position = _positions(keys.values())
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        key = keys.get(item.nodeid)
        index = position.get(key.group) if key is not None else None
        mine = k == 1 if index is None else index % n == k - 1
        (keep if mine else drop).append(item)
    return keep, drop


def _positions(keys: Iterable[TrialKey]) -> dict[str, int]:
    """Each combination's place among its sweep's, sorted."""
    by_test: dict[str, set[str]] = {}
    for trial in keys:
        by_test.setdefault(trial.test, set()).add(trial.group)
    return {combo: i for combos in by_test.values() for i, combo in enumerate(sorted(combos))}


def read_best(path: Path, goals: Mapping[str, tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """Each sweep's best trial in a baseline or JSON report: its node id, and
    the hparams it was given (a search's trial is given them again).

    Args:
      path: The file.
      goals: The primary metric and its goal, by sweep, of the collected sweeps.

    Raises:
      SweepError: If the file is not JSON, or not a baseline or report.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") == "pytest-hparams-report":
            return _best_in_report(data)
        if data.get("format") != "pytest-hparams-baseline":
            raise KeyError("format")
        by_test, given = _baseline_trials(data)
    # OverflowError: an integer beyond float64, such as 10**400 written out.
    except (OSError, ValueError, KeyError, TypeError, AttributeError, OverflowError) as e:
        raise SweepError(
            f"{path} is not a pytest-hparams baseline or JSON report ({type(e).__name__}: {e}); "
            "give a file written by --hparams-save-baseline or --hparams-json"
        ) from None
    return _best_of_baseline(by_test, given, goals)


def _best_of_baseline(
    by_test: Mapping[str, list[tuple[str, dict[str, float]]]],
    given: Mapping[str, dict[str, Any]],
    goals: Mapping[str, tuple[str, str]],
) -> dict[str, dict[str, Any]]:
    """Each sweep's best trial in a baseline, by node id, with the hparams it was given."""
    best = {}
    for test, trials in by_test.items():
        nodeid = _best_in_baseline(trials, goals.get(test))
        if nodeid is not None:
            best[nodeid] = given[nodeid]
    return best


def _best_in_report(data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each sweep's best trial in a JSON report, which ranks them best first."""
    best: dict[str, dict[str, Any]] = {}
    for sweep in data["sweeps"]:
        passed = [t for t in sweep["trials"] if t["outcome"] in ("passed", "resumed")]
        if passed:
            _floats(passed[0]["metrics"])
            best[passed[0]["nodeid"]] = dict(passed[0].get("hparams") or {})
    return best


def _baseline_trials(
    data: Mapping[str, Any],
) -> tuple[dict[str, list[tuple[str, dict[str, float]]]], dict[str, dict[str, Any]]]:
    """A baseline's trials, as (node id, metrics) by sweep, and the hparams
    each was given, by node id."""
    by_test: dict[str, list[tuple[str, dict[str, float]]]] = {}
    given: dict[str, dict[str, Any]] = {}
    for nodeid, entry in data["trials"].items():
        by_test.setdefault(entry["test"], []).append((nodeid, _floats(entry["metrics"])))
        given[nodeid] = dict(entry.get("hparams") or {})
    return by_test, given


def _best_in_baseline(
    trials: list[tuple[str, dict[str, float]]], primary: tuple[str, str] | None
) -> str | None:
    """The node id of a sweep's best trial in a baseline, by its primary
    metric and goal (a sweep not collected: its first metric, maximized)."""
    name, goal = primary or (next(iter(trials[0][1]), ""), "max")
    scored = [(m[name], nodeid) for nodeid, m in trials if name in m]
    if not scored:
        return None
    return (max(scored) if goal == "max" else min(scored))[1]


def _floats(metrics: Mapping[str, Any]) -> dict[str, float]:
    # float() takes the "nan" and "inf" a JSON report writes.
    return {name: float(value) for name, value in metrics.items()}
