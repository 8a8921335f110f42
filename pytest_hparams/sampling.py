"""Random search: `hparam_random`'s domains and the seeded sampler.

Pure: no pytest, no I/O. The sampler uses its own `random.Random(seed)`, so
the same seed gives the same trials on every run, machine and xdist worker.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pytest_hparams.errors import SweepError
from pytest_hparams.space import (
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


Sampler = Callable[[random.Random], Value]


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
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise SweepError(f"@hparam_random needs a number of trials >= 1 (got {n!r})")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SweepError(f"@hparam_random seed must be an int (got {seed!r})")
    declared = declared_hparams(positional)
    names = [*declared, *(k for k in domains if k not in declared)]
    if not names:
        raise SweepError(
            "@hparam_random needs at least one hparam, "
            "e.g. @hparam_random(8, lr=LogUniform(1e-4, 0.1))"
        )
    samplers: dict[str, Sampler] = {}
    shown: dict[str, Domain] = {}
    for name in names:
        check_name(name)
        hp = declared.get(name)
        raw = domains.get(name, hp.domain if hp is not None else None)
        if raw is None:
            raise SweepError(f"HParam {name!r} has no domain to sample; give one as {name}=...")
        samplers[name], shown[name] = _sampler(name, raw)
        if hp is not None and hp.domain is not None:
            shown[name] = tb_domain_of(name, hp.domain)

    rng = random.Random(seed)
    trials: dict[tuple[Value, ...], dict[str, Value]] = {}
    for _ in range(n * _MAX_DRAWS_PER_TRIAL):
        combo = {name: samplers[name](rng) for name in names}
        trials.setdefault(tuple(combo.values()), combo)  # a repeated draw runs once
        if len(trials) == n:
            break
    fixed = tuple(trials.values())
    hparams = []
    for name in names:
        hp = declared.get(name)
        values = tuple(dict.fromkeys(t[name] for t in fixed))
        hparams.append(
            HParamDef(
                name,
                values,
                shown[name],
                display_name=(hp.display_name or "") if hp is not None else "",
                description=(hp.description or "") if hp is not None else "",
                declared=hp,
            )
        )
    return Sweep(tuple(hparams), parse_metrics(metrics), fixed)


def _sampler(name: str, raw: Any) -> tuple[Sampler, Domain]:
    if isinstance(raw, LogUniform):
        problem = raw.problem()
        if problem:
            raise SweepError(f"{name!r}: {problem}")
        low, high = math.log(raw.low), math.log(raw.high)
        domain = Domain("interval", "number", min_value=float(raw.low), max_value=float(raw.high))
        return (lambda rng: _round(math.exp(rng.uniform(low, high)))), domain
    kind = tb_kind(raw)
    if kind == "RealInterval":
        lo, hi = finite_bounds(name, kind, raw.min_value, raw.max_value)
        domain = Domain("interval", "number", min_value=lo, max_value=hi)
        return (lambda rng: _round(rng.uniform(lo, hi))), domain
    if kind == "IntInterval":
        lo_i, hi_i = int(raw.min_value), int(raw.max_value)
        domain = Domain("interval", "number", min_value=float(lo_i), max_value=float(hi_i))
        return (lambda rng: rng.randint(lo_i, hi_i)), domain
    if kind == "Discrete":
        raw = raw.values
    if isinstance(raw, (list, tuple, range)):
        choices = [scalar_value(name, v) for v in raw]
        if not choices:
            raise SweepError(f"{name!r} has no values to choose from")
        if len({dtype_of(v) for v in choices}) > 1:
            raise SweepError(f"{name!r} values must all be one type (got {choices!r})")
        domain = Domain("discrete", dtype_of(choices[0]), values=sorted_values(set(choices)))
        return (lambda rng: rng.choice(choices)), domain
    if isinstance(raw, (bool, int, float, str)):
        fixed = scalar_value(name, raw)
        return (lambda rng: fixed), Domain("discrete", dtype_of(fixed), values=(fixed,))
    raise SweepError(
        f"{name!r} must be a list (a choice), a fixed value, LogUniform, or a TensorBoard "
        f"RealInterval, IntInterval or Discrete (got {type(raw).__name__} {raw!r})"
    )


def _round(value: float) -> float:
    return float(f"{value:.{_DIGITS}g}")
