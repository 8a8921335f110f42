"""Adaptive search on Optuna's samplers: `@hparam_search`'s domains as
Optuna distributions, and each trial's hparams asked of its sweep's study.

A trial asks when it starts, so the sampler sees every trial the study holds
by then, from this process, other xdist workers and other machines. Once
asked, a trial's values are its own for as long as the study lives: a rerun
(`--lf`, or the whole sweep again) asks for them again by the trial's node
id, so ids keep meaning the same hparams, as a grid's do.

Optuna is imported here only, and this module only where a sweep searches.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Container, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytest_hparams import lazy
from pytest_hparams.sampling import round_float
from pytest_hparams.sweep import trial_seed

if TYPE_CHECKING:
    from pytest_hparams.sampling import Dimension, Search

#: What each sampler needs beyond Optuna itself, by the module it imports.
NEEDS = {"cmaes": ("cmaes",), "gp": ("torch", "scipy")}


def missing_modules(sampler: object) -> list[str]:
    """The modules a named sampler needs that are not installed."""
    needs = NEEDS.get(sampler, ()) if isinstance(sampler, str) else ()
    return [m for m in needs if importlib.util.find_spec(m) is None]


def make_sampler(spec: object, seed: int, index: int) -> Any:
    """Optuna's sampler for a `sampler=` value. A named one is made anew for
    each trial, seeded by the sweep's seed and the trial's index: the same
    trial gets the same proposal from the same study in any process, and two
    xdist workers starting at once do not propose the same point."""
    if not isinstance(spec, str):
        return spec  # the user's own instance, as given
    optuna = lazy.optuna()

    trial_rng = trial_seed(f"{seed}/{index}")
    if spec == "random":
        return optuna.samplers.RandomSampler(seed=trial_rng)
    if spec == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=trial_rng)
    if spec == "gp":
        return optuna.samplers.GPSampler(seed=trial_rng)
    return optuna.samplers.TPESampler(seed=trial_rng)


def distributions(dimensions: Sequence[Dimension]) -> dict[str, Any]:
    """Each hparam's Optuna distribution, in declaration order."""
    kinds = lazy.optuna().distributions
    out: dict[str, Any] = {}
    for d in dimensions:
        if d.kind in ("choice", "fixed"):
            out[d.name] = kinds.CategoricalDistribution(d.choices)
        elif d.kind == "int":
            out[d.name] = kinds.IntDistribution(int(d.low), int(d.high))
        else:
            out[d.name] = kinds.FloatDistribution(d.low, d.high, log=d.kind == "log")
    return out


def ask(study: Any, search: Search, index: int, before: Mapping[str, Any] | None = None) -> Any:
    """Asks the study for a trial's hparams.

    Args:
      study: The sweep's study.
      search: The sweep's search.
      index: The trial's index (`trial:K`).
      before: Values the trial was given before (its latest earlier run's,
        or a report's best), taken again where they still fit the domains.

    Returns:
      Optuna's trial, its `params` set.
    """
    optuna = lazy.optuna()

    wanted = distributions(search.dimensions)
    sampler = make_sampler(search.sampler, search.seed, index)
    fixed = _still_fitting(before or {}, wanted)
    if fixed:
        with warnings.catch_warnings():  # Optuna marks it experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.PartialFixedSampler(fixed, sampler)
    study.sampler = sampler
    with warnings.catch_warnings():
        # CmaEs and GP warn of falling back to independent sampling for a
        # choice; one warning per trial says nothing the docs do not.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message=".*independent sampl", category=UserWarning)
        return study.ask(wanted)  # every value sampled now, in declaration order


def changed_domain(study: Any, search: Search) -> str | None:
    """What the study holds of a searched hparam that the sweep now declares
    otherwise, as Optuna refuses it (a choice's values, a log scale, a kind),
    or None. A range may change: a value outside it is asked anew."""
    compatible = lazy.optuna().distributions.check_distribution_compatibility

    wanted = distributions(search.dimensions)
    for name, held in _first_held(study, wanted).items():
        try:
            compatible(held, wanted[name])
        except ValueError:
            return f"{name!r} as {held}, where the sweep declares {wanted[name]}"
    return None


def _first_held(study: Any, names: Container[str]) -> dict[str, Any]:
    """The distribution of each of `names` in the first trial that holds it."""
    held: dict[str, Any] = {}
    for trial in study.get_trials(deepcopy=False):
        for name, distribution in trial.distributions.items():
            if name in names:
                held.setdefault(name, distribution)
    return held


def values_of(params: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's hparams as the test, ids, tables and the dashboard get them:
    Optuna's, floats to 6 significant digits, as `@hparam_random` draws them
    (`lr 0.00316228`, not `0.0031622776601683794`)."""
    return {n: round_float(v) if isinstance(v, float) else v for n, v in params.items()}


def _still_fitting(before: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any]:
    """The values given before that the domains declared now still hold."""
    return {
        name: value
        for name, value in before.items()
        if name in wanted and _fits(wanted[name], value)
    }


def _fits(distribution: Any, value: Any) -> bool:
    """Whether a value asked before still lies in the (perhaps edited) domain."""
    choices = getattr(distribution, "choices", None)
    if choices is not None:  # type too: True == 1 in Python, not in the dashboard
        return any(type(c) is type(value) and c == value for c in choices)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return bool(distribution.low <= value <= distribution.high)
