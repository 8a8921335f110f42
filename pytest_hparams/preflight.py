"""What is decided once collection ends, before any trial runs: what a run
refuses (options naming what no sweep has, a gate that needs a missing
extra), and which trials `--hparams-resume` skips."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

import pytest

from pytest_hparams import events
from pytest_hparams.gates import repeated
from pytest_hparams.lazy import STATS_EXTRA
from pytest_hparams.logdir import run_path
from pytest_hparams.sweep import PRUNED_METRIC, SWEEP_HPARAM

if TYPE_CHECKING:
    from pytest_hparams.collect import Compiled
    from pytest_hparams.records import TrialKey
    from pytest_hparams.settings import Settings
    from pytest_hparams.storage import LocalStore
    from pytest_hparams.studies import Studies

RESUMED_REASON = "resumed: this trial's session in the logdir ended with SUCCESS"


def check(sweeps: Mapping[str, Compiled], settings: Settings) -> None:
    """Refuses options that name what no collected sweep has, and a gate on
    repeats that would need scipy where it is not installed."""
    _check_overrides(sweeps, settings)
    _check_tolerances(sweeps, settings)
    _check_stats(sweeps, settings)


def _check_overrides(sweeps: Mapping[str, Compiled], settings: Settings) -> None:
    hparams = {n for c in sweeps.values() for n in c.sweep.names}
    unknown_set = sorted({n for n, _ in settings.overrides} - hparams)
    if unknown_set:
        raise pytest.UsageError(
            f"--hparams-set names {unknown_set[0]!r}, which no collected sweep has "
            f"(hparams: {', '.join(sorted(hparams))}); fix the name"
        )


def _check_tolerances(sweeps: Mapping[str, Compiled], settings: Settings) -> None:
    declared = {m.name for c in sweeps.values() for m in c.sweep.metrics}
    for source, names in settings.tolerance_names():
        unknown = sorted(names - declared)
        if unknown:
            raise pytest.UsageError(
                f"{source} names {unknown[0]!r}, which no collected sweep declares "
                f"(declared: {', '.join(sorted(declared)) or 'none'}); "
                "declare it with metrics=[...] or fix the name"
            )


def _check_stats(sweeps: Mapping[str, Compiled], settings: Settings) -> None:
    # Checked now: the gate on repeats is decided only once every trial ran.
    if _gates_repeats(sweeps, settings) and importlib.util.find_spec("scipy") is None:
        raise pytest.UsageError(
            "the baseline holds repeats, and the gate on repeats needs scipy for its "
            f"Welch's t-test; install it with: {STATS_EXTRA}"
        )


def _gates_repeats(sweeps: Mapping[str, Compiled], settings: Settings) -> bool:
    """Whether a sweep repeats its trials against a baseline that holds repeats."""
    entries = settings.baseline
    if not entries or not any(c.repeats > 1 for c in sweeps.values()):
        return False
    return any(repeated(e) for e in entries.values())


class Resumed(NamedTuple):
    """A trial `--hparams-resume` skips, and what its record keeps."""

    key: TrialKey  # a search's, with the hparams it was given
    metrics: dict[str, float]
    reason: str  # its skip's
    pruned_at: int | None = None


def resumed(
    key: TrialKey,
    store: LocalStore,
    sweeps: Mapping[str, Compiled],
    studies: Studies | None,
) -> Resumed | None:
    """How a trial resumes, or None when it runs again.

    A session that ended with SUCCESS with the same hparams comes first: a
    run with --hparams-no-prune finished, in the logdir, a trial the study
    still holds as pruned. Then a trial its study holds as pruned stays so.
    A search's trial resumes when its latest run in the study completed:
    its hparams are that run's, its metrics the session's where the logdir
    holds one with those values, else the study's primary value.
    """
    fallback = None
    if key.number is not None:
        assert studies is not None  # a search always has its study
        completed = studies.completed(key)
        if completed is not None:
            key, value = completed
            fallback = {sweeps[key.test].sweep.metrics[0].name: value}
        else:
            # Killed after its session ended and before its study was told:
            # the values it was asked are on its RUNNING run, and the logdir
            # holds how it ended.
            asked = studies.unfinished(key)
            if asked is None:
                return _pruned(key, studies)
            key = asked
    succeeded = _succeeded(key, store)
    if succeeded is not None:
        return succeeded
    if fallback is not None:
        return Resumed(key, fallback, RESUMED_REASON)
    return _pruned(key, studies)


def _succeeded(key: TrialKey, store: LocalStore) -> Resumed | None:
    """The trial as its session in the logdir recorded it, when that ended
    with SUCCESS with the same hparams."""
    recorded = store.session(run_path(key.folder, key.params))
    if recorded is None:
        return None
    hparams, status, metrics = recorded
    hparams.pop(SWEEP_HPARAM, None)
    metrics.pop(PRUNED_METRIC, None)  # the dashboard's column, not a metric of the trial
    if status == events.STATUS_SUCCESS and hparams == dict(key.hparams):
        return Resumed(key, metrics, RESUMED_REASON)
    return None


def _pruned(key: TrialKey, studies: Studies | None) -> Resumed | None:
    pruned = studies.pruned(key) if studies is not None else None
    if pruned is None:
        return None
    key, step, metrics = pruned
    return Resumed(key, metrics, f"resumed: pruned at step {step} in the study", step)
