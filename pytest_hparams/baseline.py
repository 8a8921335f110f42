"""Baselines: a committed JSON file of every trial's metrics, read and
updated (the comparison of a run against it is gates.py's). Pure but for
`load` and `save`.

The file is meant to be reviewed in pull requests, so trials are keyed by
their node id (the test and its hparam values, readable), keys are sorted and
the layout is stable: an unchanged run writes an identical file.

    {
      "format": "pytest-hparams-baseline",
      "version": 1,
      "trials": {
        "test_train.py::test_train[units:16-lr:0.01]": {
          "test": "test_train.py::test_train",
          "hparams": {"lr": 0.01, "units": 16},
          "metrics": {"accuracy": 0.93, "loss": 0.21}
        }
      }
    }
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pytest_hparams.errors import BaselineError
from pytest_hparams.files import write_atomically
from pytest_hparams.records import Outcome, TrialRecord
from pytest_hparams.repeats import Combination, combine
from pytest_hparams.verdicts import Verdict

FORMAT = "pytest-hparams-baseline"
VERSION = 1

Entry = dict[str, Any]
_MOVES = (Outcome.PASSED, Outcome.RESUMED)  # outcomes whose metrics a baseline takes


def load(path: Path, blank_ok: bool = False) -> dict[str, Entry]:
    """Reads and validates a baseline file; returns its trials by node id.
    `blank_ok`: a blank file (`mktemp`'s, given to be saved into) holds none yet.

    Raises:
      BaselineError: If the file is missing, unreadable, not JSON, or not a
        baseline of this version.
    """
    text = _read(path)
    if blank_ok and not text.strip():
        return {}
    return _trials(_baseline_json(text).get("trials"))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BaselineError("no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BaselineError(f"cannot be read ({e})") from None


def _baseline_json(text: str) -> dict[str, Any]:
    """The file's JSON, which must be a baseline of this version."""
    try:
        data = json.loads(text)
    except ValueError as e:  # also an integer of more than 4,300 digits
        raise BaselineError(f"is not valid JSON ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BaselineError(f'is not a pytest-hparams baseline (no "format": "{FORMAT}")')
    if data.get("version") != VERSION:
        raise BaselineError(
            f"has version {data.get('version')!r}; this pytest-hparams reads version {VERSION}"
        )
    return data


def _trials(trials: object) -> dict[str, Entry]:
    """The file's "trials" table, each entry checked."""
    try:
        if isinstance(trials, dict) and all(_valid_entry(e) for e in trials.values()):
            return trials
    except OverflowError:  # an integer beyond float64, such as 10**400 written out
        pass
    raise BaselineError('has a malformed "trials" table')


def _valid_entry(entry: object) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("metrics"), dict)
        and all(_number(v) for v in entry["metrics"].values())
        and isinstance(entry.get("stats", {}), dict)
        and all(_valid_stats(s) for s in entry.get("stats", {}).values())
    )


def _valid_stats(stats: object) -> bool:
    return (
        isinstance(stats, dict)
        and _valid_sample(stats.get("n"), stats.get("values"))
        and _number(stats.get("mean"))
        and _number(stats.get("std"))
        and stats["std"] >= 0
    )


def _valid_sample(n: object, values: object) -> bool:
    """Whether `values` is a list of `n` >= 1 finite numbers."""
    return (
        isinstance(n, int)
        and not isinstance(n, bool)
        and isinstance(values, list)
        and len(values) == n >= 1
        and all(_number(v) for v in values)
    )


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def dumps(trials: Mapping[str, Entry]) -> bytes:
    """The file's bytes: sorted, indented, ending with a newline."""
    data = {"format": FORMAT, "version": VERSION, "trials": dict(trials)}
    # NaN is not JSON: a metric that became NaN is left out of the baseline.
    return (json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")


def updated(
    existing: Mapping[str, Entry],
    records: Iterable[TrialRecord],
    regressed: Iterable[str] = (),
    judged: Mapping[str, Entry] | None = None,
) -> tuple[dict[str, Entry], list[str]]:
    """The existing trials, with those this run measured replaced, and the
    entries this run measured but kept (their trials regressed or failed).

    Only a trial that passed (or was resumed from a session that passed)
    moves its entry: a failed or regressed one keeps the entry it was judged
    against, or a regression saved into the baseline it regressed from would
    pass on the next run. A metric that is not finite (NaN) keeps its
    recorded value. Repeats make one entry per combination: each metric's
    mean, and its n, mean, std and values under "stats"; a combination in
    `regressed` keeps its entry.
    """
    trials = dict(existing)
    kept: list[str] = []
    all_records = list(records)
    repeats = combine(r for r in all_records if r.key.repeat is not None)
    _update_combinations(trials, kept, repeats, set(regressed), judged)
    singles = [r for r in all_records if r.key.repeat is None]
    _update_trials(trials, kept, singles, judged)
    return trials, kept


def _update_combinations(
    trials: dict[str, Entry],
    kept: list[str],
    combinations: Iterable[Combination],
    regressed: set[str],
    judged: Mapping[str, Entry] | None,
) -> None:
    """Moves the entry of each combination whose every repeat passed and
    that did not regress; keeps the others' (see `updated`)."""
    for combination in combinations:
        gate_failed = combination.combo in regressed
        if gate_failed or not all(_moves(r) for r in combination.records):
            # Every repeat must have passed: a baseline of survivors flatters.
            if gate_failed or any(_kept(r) for r in combination.records):
                _keep(trials, kept, combination.combo, judged)
            continue
        entry = _combination_entry(combination, trials.get(combination.combo, {}))
        if entry is not None:
            trials[combination.combo] = entry


def _update_trials(
    trials: dict[str, Entry],
    kept: list[str],
    records: Iterable[TrialRecord],
    judged: Mapping[str, Entry] | None,
) -> None:
    """Moves the entry of each single trial that passed; keeps the others'."""
    for record in records:
        if not _moves(record):
            if _kept(record):
                _keep(trials, kept, record.nodeid, judged)
            continue
        entry = _trial_entry(record, trials.get(record.nodeid, {}))
        if entry is not None:
            trials[record.nodeid] = entry


def _trial_entry(record: TrialRecord, old: Entry) -> Entry | None:
    """A passed trial's new entry; a metric that came out NaN keeps its
    recorded value. None when no metric is left to record."""
    metrics = _finite_or_recorded(record.metrics, old.get("metrics", {}))
    if not metrics:
        return None
    return {"test": record.test, "hparams": dict(record.key.hparams), "metrics": metrics}


def _finite_or_recorded(
    metrics: Mapping[str, float], recorded: Mapping[str, float]
) -> dict[str, float]:
    """Each finite metric's value; a metric that is not finite, its recorded value if any."""
    out = {k: v for k, v in metrics.items() if math.isfinite(v)}
    out.update({k: v for k, v in recorded.items() if k not in out and k in metrics})
    return out


def _moves(record: TrialRecord) -> bool:
    """Whether a trial's metrics may replace its entry: it passed (or was
    resumed from a session that passed) and did not regress."""
    return record.outcome in _MOVES and record.verdict is not Verdict.REGRESSED


def _combination_entry(combination: Combination, old: Entry) -> Entry | None:
    """A combination's new entry, every repeat having passed; None leaves
    the old one: a partial run (-k "repeat:0") does not shrink it."""
    recorded = old.get("stats", {})
    if len(combination.records) < max((s.get("n", 0) for s in recorded.values()), default=0):
        return None
    stats = _combination_stats(combination, recorded)
    if not stats:
        return None
    key = combination.key
    return {
        "test": key.test,
        "hparams": dict(key.hparams),
        "metrics": {n: s["mean"] for n, s in stats.items()},
        "stats": stats,
    }


def _combination_stats(
    combination: Combination, recorded: Mapping[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Each metric's statistics over the repeats, by name."""
    stats: dict[str, dict[str, Any]] = {}
    for name, summary in combination.summaries().items():
        if combination.lost(name) or not math.isfinite(summary.mean + summary.std):
            # A repeat came out NaN (or the values overflow): the survivors
            # would flatter, so the metric keeps its recorded value.
            if name in recorded:
                stats[name] = recorded[name]
        elif summary.n:
            stats[name] = summary.to_dict()
    return stats


def _keep(
    trials: dict[str, Entry], kept: list[str], key: str, judged: Mapping[str, Entry] | None
) -> None:
    """Keeps the entry a trial was judged against: the file's own, or, saved
    to another file, the compared baseline's (left out, the regression would
    read as a new trial in the next run, and pass)."""
    if key not in trials and judged is not None and key in judged:
        trials[key] = judged[key]
    if key in trials:
        kept.append(key)


def _kept(record: TrialRecord) -> bool:
    """Whether a trial keeps its entry for how it ended (a skip is not that)."""
    return record.outcome.bad or record.verdict is Verdict.REGRESSED


def save(path: Path, trials: Mapping[str, Entry]) -> None:
    write_atomically(path, dumps(trials))


def save_records(
    path: Path,
    existing: Mapping[str, Entry],
    records: Iterable[TrialRecord],
    regressed: Iterable[str] = (),
    judged: Mapping[str, Entry] | None = None,
) -> str:
    """Merges a run's records into the baseline at `path`; returns what the
    report line adds: " (N trials)", and the entries kept at their old values
    (`judged`: the baseline the run was compared with)."""
    trials, kept = updated(existing, records, regressed, judged)
    save(path, trials)
    combos = sum(1 for entry in trials.values() if entry.get("stats"))
    if combos:
        detail = f" ({len(trials)} entries, {combos} of them combinations of repeats)"
    else:
        detail = f" ({len(trials)} trials)"
    if kept:
        detail += (
            f"; {len(kept)} kept at their old values, as their trials regressed or failed: "
            "to accept the new values, save without a baseline to compare with "
            "(leave out --hparams-baseline, or add -o hparams_baseline=)"
        )
    return detail
