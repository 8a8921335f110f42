"""pytest-hparams: hyperparameter sweeps as parametrized pytest tests.

TensorBoard's `HParam`, `Discrete`, `IntInterval`, `RealInterval` and
`hp.Metric` are re-exported lazily from `tensorboard.plugins.hparams.summary_v2`
(which, unlike `tensorboard.plugins.hparams.api`, does not import TensorFlow),
so importing this package stays cheap.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from pytest_hparams.errors import HParamsError, HParamsWarning

if TYPE_CHECKING:
    from tensorboard.plugins.hparams.summary_v2 import Discrete, HParam, IntInterval, RealInterval

    from pytest_hparams.metrics import Metric
    from pytest_hparams.sampling import LogUniform
    from pytest_hparams.trial import Trial

__all__ = [
    "Discrete",
    "HParam",
    "HParamsError",
    "HParamsWarning",
    "IntInterval",
    "LogUniform",
    "Metric",
    "RealInterval",
    "Trial",
    "hparam_grid",
    "hparam_random",
    "hparam_search",
]

_F = TypeVar("_F", bound=Callable[..., Any])
#: The mark behind the decorators; the plugin finds swept tests by it. A name
#: no project would give a marker of its own (`@pytest.mark.hparams` is theirs).
MARK = "pytest_hparams_sweep"
_TENSORBOARD_NAMES = ("HParam", "Discrete", "IntInterval", "RealInterval")
# Loaded on first use: the plugin imports this package in every pytest run.
_LAZY = {
    "Metric": "pytest_hparams.metrics",
    "Trial": "pytest_hparams.trial",
    "LogUniform": "pytest_hparams.sampling",
}


def _disabled_sweep(decorator: str) -> Callable[[_F], _F] | None:
    """A decorator for a sweep that cannot run, or None when it can.

    Only this module loads under `-p no:hparams`, so without this pytest
    reports "fixture 'num_units' not found", which says nothing of the cause.
    Outside pytest (PYTEST_VERSION unset) the sweep is left alone.
    """
    plugin = sys.modules.get("pytest_hparams.plugin")  # loaded by pytest, never here
    if getattr(plugin, "active_runs", 0) or "PYTEST_VERSION" not in os.environ:
        return None
    message = (
        f"pytest-hparams is disabled (-p no:hparams), so this @{decorator} sweep cannot run; "
        "remove -p no:hparams, or add -p hparams under PYTEST_DISABLE_PLUGIN_AUTOLOAD"
    )

    def replace(function: _F) -> _F:
        # *args take `self` in a test class and request no fixtures; no
        # __wrapped__, or pytest would read the swept arguments through it.
        def disabled(*args: object, **kwargs: object) -> None:
            pytest.fail(message, pytrace=False)

        for name in ("__name__", "__qualname__", "__module__", "__doc__"):
            setattr(disabled, name, getattr(function, name))
        disabled.__dict__.update(function.__dict__)  # marks applied below this one
        return disabled  # type: ignore[return-value]

    return replace


def hparam_grid(
    *hparams: Any, metrics: Any = None, repeats: int = 1, pruner: Any = None, **values: Any
) -> Callable[[_F], _F]:
    """Runs the decorated test once per combination of hparam values.

    Args:
      *hparams: TensorBoard `HParam` objects; a `Discrete` or `IntInterval`
        domain gives the values, and the HParam's domain, display name and
        description go to the dashboard.
      metrics: Names, `Metric` or TensorBoard `hp.Metric` objects; the first
        is the primary metric the summary table ranks by.
      repeats: How often to run each combination, each repeat with its own
        `trial.seed`; TensorBoard groups a combination's repeats into one
        session group, and the table and baseline gate use their mean.
      pruner: Stop hopeless trials early: "median", "halving" (asynchronous
        successive halving), "hyperband", or an `optuna.pruners.BasePruner`.
        `trial.log` reports the primary metric to it (needs the `optuna` extra).
      **values: Each hparam's values: a list, tuple or range of bool, int,
        float or str, or a TensorBoard `Discrete`/`IntInterval` domain.

    Returns:
      A decorator that marks the test. Mistakes are reported as collection
      errors of that test, with one line saying what to fix.
    """
    disabled = _disabled_sweep("hparam_grid")
    if disabled is not None:
        return disabled
    mark = getattr(pytest.mark, MARK)
    return mark(  # type: ignore[no-any-return]
        *hparams, metrics=metrics, _repeats=repeats, _pruner=pruner, **values
    )


def hparam_random(
    n: int,
    *hparams: Any,
    seed: int = 0,
    metrics: Any = None,
    repeats: int = 1,
    pruner: Any = None,
    **domains: Any,
) -> Callable[[_F], _F]:
    """Runs the decorated test on n trials sampled from the domains.

    Args:
      n: How many distinct trials to draw (fewer if the space is smaller).
      *hparams: TensorBoard `HParam` objects, whose domains are sampled.
      seed: The sampler's seed: the same seed gives the same trials on every
        run, machine and xdist worker.
      metrics: As for `hparam_grid`.
      repeats: As for `hparam_grid`.
      pruner: As for `hparam_grid`.
      **domains: `LogUniform(low, high)`, a TensorBoard `RealInterval`
        (uniform), `IntInterval` or `Discrete`, a list (a uniform choice), or
        a fixed value.

    Returns:
      A decorator that marks the test.
    """
    disabled = _disabled_sweep("hparam_random")
    if disabled is not None:
        return disabled
    mark = getattr(pytest.mark, MARK)
    return mark(  # type: ignore[no-any-return]
        *hparams, metrics=metrics, _sample=(n, seed), _repeats=repeats, _pruner=pruner, **domains
    )


def hparam_search(
    n: int,
    *hparams: Any,
    sampler: Any = "tpe",
    seed: int = 0,
    metrics: Any = None,
    pruner: Any = None,
    **domains: Any,
) -> Callable[[_F], _F]:
    """Runs the decorated test on n trials whose hparams an Optuna sampler
    proposes as each trial starts, learning from the trials before it.

    The items are `test_x[trial:0]` to `test_x[trial:{n-1}]`. A trial's values
    reach the function's arguments and `trial.hparams`; once asked, they stay
    the trial's for as long as its study lives (a rerun, `--lf` included,
    runs them again). Needs the `optuna` extra.

    Args:
      n: How many trials.
      *hparams: TensorBoard `HParam` objects, whose domains are searched.
      sampler: "tpe", "random", "cmaes", "gp", or an
        `optuna.samplers.BaseSampler`.
      seed: The sampler's seed, mixed with each trial's index.
      metrics: As for `hparam_grid`; required: the sampler optimizes the first.
      pruner: As for `hparam_grid`.
      **domains: As for `hparam_random`.

    Returns:
      A decorator that marks the test.
    """
    disabled = _disabled_sweep("hparam_search")
    if disabled is not None:
        return disabled
    mark = getattr(pytest.mark, MARK)
    return mark(  # type: ignore[no-any-return]
        *hparams, metrics=metrics, _search=(n, sampler, seed), _pruner=pruner, **domains
    )


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _TENSORBOARD_NAMES:
        from tensorboard.plugins.hparams import summary_v2  # TensorBoard's own classes

        return getattr(summary_v2, name)
    raise AttributeError(f"module 'pytest_hparams' has no attribute {name!r}")
