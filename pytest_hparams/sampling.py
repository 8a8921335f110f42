"""Sampled sweeps: the domains of `hparam_random` and `hparam_search`, and
`hparam_random`'s seeded sampler.

Pure: no pytest, no I/O. The sampler uses its own `random.Random(seed)`, so
the same seed gives the same trials on every run, machine and xdist worker.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from pytest_hparams.errors import SweepError
from pytest_hparams.sweep import (
    Domain,
    HParamDef,
    Sweep,
    Value,
    check_name,
    declared_hparams,
    dtype_of,
    finite_bounds,
    parse_metrics,
    scalar_value,
    sorted_values,
    tb_domain_of,
    tb_kind,
)

# Sampled floats keep 6 significant digits: ids stay readable
# (`lr:0.00316228`, not `lr:0.0031622776601683794`).
_DIGITS = 6
_MAX_DRAWS_PER_TRIAL = 50


class LogUniform:
    """A real interval sampled log-uniformly, like Ray Tune's `loguniform`.

    Args:
      low: The lower bound, > 0.
      high: The upper bound, > low.

    The dashboard shows it as the interval [low, high].
    """

    def __init__(self, low: float, high: float) -> None:
        self.low = low
        self.high = high

    def problem(self) -> str | None:
        valid = all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in (self.low, self.high)
        )
        if not valid or not 0 < self.low < self.high:
            return f"LogUniform needs 0 < low < high (got {self.low!r}, {self.high!r})"
        if not math.isfinite(self.high):
            return (
                f"LogUniform needs finite bounds (got {self.low!r}, {self.high!r}); "
                "give a finite high, such as LogUniform(1e-4, 0.1)"
            )
        return None

    def __repr__(self) -> str:
        return f"LogUniform({self.low!r}, {self.high!r})"


class Dimension(NamedTuple):
    """One sampled hparam: how to draw it, and the domain the dashboard shows.

    kind: "log" (LogUniform), "float" (RealInterval), "int" (IntInterval),
    "choice" (a list or Discrete) or "fixed" (one value). Optuna's samplers
    take the same description (`search.py`).
    """

    name: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    choices: tuple[Value, ...] = ()

    def draw(self, rng: random.Random) -> Value:
        if self.kind == "log":
            return round_float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        if self.kind == "float":
            return round_float(rng.uniform(self.low, self.high))
        if self.kind == "int":
            return rng.randint(int(self.low), int(self.high))
        if self.kind == "choice":
            return rng.choice(self.choices)
        return self.choices[0]  # fixed: draws nothing, so the other draws stay as they were

    @property
    def domain(self) -> Domain:
        if self.kind in ("choice", "fixed"):
            return Domain(
                "discrete", dtype_of(self.choices[0]), values=sorted_values(set(self.choices))
            )
        return Domain("interval", "number", min_value=float(self.low), max_value=float(self.high))


class Search(NamedTuple):
    """`@hparam_search`: n trials, each asked of the study's sampler when it starts."""

    n: int
    sampler: object  # "tpe", "random", "cmaes", "gp" or an Optuna sampler
    seed: int
    dimensions: tuple[Dimension, ...]


SAMPLERS = ("tpe", "random", "cmaes", "gp")


def sample_sweep(
    n: int,
    seed: int,
    positional: Sequence[object],
    domains: Mapping[str, object],
    metrics: object = None,
) -> Sweep:
    """Validates the arguments of `@hparam_random` and draws its trials.

    Returns:
      A Sweep whose `fixed` holds up to n distinct trials, in draw order.
      A space with fewer than n points gives every point once.

    Raises:
      SweepError: With a one-line message naming the problem and the fix.
    """
    _check_count("hparam_random", n, seed)
    declared, dimensions = _dimensions("hparam_random", positional, domains)
    fixed = _draw(n, random.Random(seed), dimensions)
    values = {d.name: tuple(dict.fromkeys(t[d.name] for t in fixed)) for d in dimensions}
    hparams = _hparam_defs(declared, dimensions, values)
    return Sweep(hparams, parse_metrics(metrics), fixed)


def _draw(
    n: int, rng: random.Random, dimensions: Sequence[Dimension]
) -> tuple[dict[str, Value], ...]:
    """Up to n distinct trials, in draw order."""
    trials: dict[tuple[Value, ...], dict[str, Value]] = {}
    for _ in range(n * _MAX_DRAWS_PER_TRIAL):
        combo = {d.name: d.draw(rng) for d in dimensions}
        trials.setdefault(tuple(combo.values()), combo)  # a repeated draw runs once
        if len(trials) == n:
            break
    return tuple(trials.values())


def search_sweep(
    n: int,
    sampler: object,
    seed: int,
    positional: Sequence[object],
    domains: Mapping[str, object],
    metrics: object = None,
) -> tuple[Sweep, Search]:
    """Validates the arguments of `@hparam_search`.

    Returns:
      The sweep (its hparams have no values: they are asked at run time)
      and the search.

    Raises:
      SweepError: With a one-line message naming the problem and the fix.
    """
    _check_count("hparam_search", n, seed)
    if not (sampler in SAMPLERS or _is_optuna(sampler, "sample_relative")):
        raise SweepError(
            f"sampler must be one of {', '.join(SAMPLERS)} or an optuna.samplers.BaseSampler "
            f"(got {sampler!r})"
        )
    declared, dimensions = _dimensions("hparam_search", positional, domains)
    parsed = parse_metrics(metrics)
    if not parsed:
        raise SweepError(
            "@hparam_search needs metrics=[...]: the sampler maximizes the first "
            "(give Metric(name, goal='min') to minimize it)"
        )
    hparams = _hparam_defs(declared, dimensions, {})
    return Sweep(hparams, parsed), Search(n, sampler, seed, dimensions)


def _is_optuna(obj: object, method: str) -> bool:
    return type(obj).__module__.startswith("optuna.") and hasattr(obj, method)


def _check_count(decorator: str, n: object, seed: object) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise SweepError(f"@{decorator} needs a number of trials >= 1 (got {n!r})")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SweepError(f"@{decorator} seed must be an int (got {seed!r})")


def _dimensions(
    decorator: str, positional: Sequence[object], domains: Mapping[str, object]
) -> tuple[dict[str, Any], tuple[Dimension, ...]]:
    """The declared TensorBoard HParams by name, and every hparam's dimension."""
    declared = declared_hparams(positional)
    names = [*declared, *(k for k in domains if k not in declared)]
    if not names:
        raise SweepError(
            f"@{decorator} needs at least one hparam, "
            f"e.g. @{decorator}(8, lr=LogUniform(1e-4, 0.1))"
        )
    dimensions = []
    for name in names:
        check_name(name)
        dimensions.append(_dimension(name, _sampled_domain(name, declared.get(name), domains)))
    return declared, tuple(dimensions)


def _sampled_domain(name: str, hp: Any, domains: Mapping[str, object]) -> object:
    """What an hparam is drawn from: its keyword's domain, else its HParam's."""
    raw = domains.get(name, hp.domain if hp is not None else None)
    if raw is None:
        raise SweepError(f"HParam {name!r} has no domain to sample; give one as {name}=...")
    return raw


def _hparam_defs(
    declared: Mapping[str, Any],
    dimensions: Sequence[Dimension],
    values: Mapping[str, tuple[Value, ...]],
) -> tuple[HParamDef, ...]:
    hparams = []
    for d in dimensions:
        hp = declared.get(d.name)
        hparams.append(
            HParamDef(
                d.name,
                values.get(d.name, ()),
                _shown_domain(d, hp),
                display_name=getattr(hp, "display_name", None) or "",
                description=getattr(hp, "description", None) or "",
                declared=hp,
            )
        )
    return tuple(hparams)


def _shown_domain(d: Dimension, hp: Any) -> Domain:
    """The domain the dashboard shows: the declared HParam's, else the one sampled."""
    if hp is not None and hp.domain is not None:
        return tb_domain_of(d.name, hp.domain)
    return d.domain


def _dimension(name: str, raw: Any) -> Dimension:
    if isinstance(raw, LogUniform):
        return _log_dimension(name, raw)
    from_tensorboard = _TB_DIMENSIONS.get(tb_kind(raw))
    if from_tensorboard is not None:
        return from_tensorboard(name, raw)
    return _plain_dimension(name, raw)


def _log_dimension(name: str, raw: LogUniform) -> Dimension:
    problem = raw.problem()
    if problem:
        raise SweepError(f"{name!r}: {problem}")
    return Dimension(name, "log", float(raw.low), float(raw.high))


def _real_dimension(name: str, raw: Any) -> Dimension:
    lo, hi = finite_bounds(name, "RealInterval", raw.min_value, raw.max_value)
    return Dimension(name, "float", lo, hi)


def _int_dimension(name: str, raw: Any) -> Dimension:
    return Dimension(name, "int", int(raw.min_value), int(raw.max_value))


def _discrete_dimension(name: str, raw: Any) -> Dimension:
    return _plain_dimension(name, raw.values)


_TB_DIMENSIONS: dict[str, Callable[[str, Any], Dimension]] = {
    "RealInterval": _real_dimension,
    "IntInterval": _int_dimension,
    "Discrete": _discrete_dimension,
}


def _plain_dimension(name: str, raw: Any) -> Dimension:
    """A list's choice, or a single value's fixed dimension."""
    if isinstance(raw, (list, tuple, range)):
        return _choice_dimension(name, raw)
    if isinstance(raw, (bool, int, float, str)):
        return Dimension(name, "fixed", choices=(scalar_value(name, raw),))
    raise SweepError(
        f"{name!r} must be a list (a choice), a fixed value, LogUniform, or a TensorBoard "
        f"RealInterval, IntInterval or Discrete (got {type(raw).__name__} {raw!r})"
    )


def _choice_dimension(name: str, raw: Sequence[Any]) -> Dimension:
    choices = [scalar_value(name, v) for v in raw]
    if not choices:
        raise SweepError(f"{name!r} has no values to choose from")
    if len({dtype_of(v) for v in choices}) > 1:
        raise SweepError(f"{name!r} values must all be one type (got {choices!r})")
    return Dimension(name, "choice", choices=tuple(choices))


def round_float(value: float) -> float:
    return float(f"{value:.{_DIGITS}g}")
