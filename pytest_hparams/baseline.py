"""Baselines: a committed JSON file of every trial's metrics, and the
comparison of a run against it. Pure but for `load` and `save`.

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
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from pytest_hparams.atomic import write_atomically
from pytest_hparams.errors import BaselineError
from pytest_hparams.metrics import Metric, Tolerance
from pytest_hparams.records import Outcome, TrialRecord

FORMAT = "pytest-hparams-baseline"
VERSION = 1

Entry = dict[str, Any]
_MOVES = (Outcome.PASSED, Outcome.RESUMED)  # outcomes whose metrics a baseline takes


def load(path: Path) -> dict[str, Entry]:
    """Reads and validates a baseline file; returns its trials by node id.

    Raises:
      BaselineError: If the file is missing, unreadable, not JSON, or not a
        baseline of this version.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BaselineError("no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BaselineError(f"cannot be read ({e})") from None
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
    trials = data.get("trials")
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
    if not isinstance(stats, dict):
        return False
    values = stats.get("values")
    n = stats.get("n")
    return (
        isinstance(n, int)
        and not isinstance(n, bool)
        and isinstance(values, list)
        and len(values) == n >= 1
        and all(_number(v) for v in values)
        and _number(stats.get("mean"))
        and _number(stats.get("std"))
        and stats["std"] >= 0
    )


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def dumps(trials: Mapping[str, Entry]) -> bytes:
    """The file's bytes: sorted, indented, ending with a newline."""
    data = {"format": FORMAT, "version": VERSION, "trials": dict(trials)}
    # NaN is not JSON: a metric that became NaN is left out of the baseline.
    return (json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")


def repeated(entry: Mapping[str, Any] | None) -> bool:
    """Whether a baseline entry holds two or more repeats of some metric."""
    stats = (entry or {}).get("stats") or {}
    return any(s.get("n", 0) >= 2 for s in stats.values())


def updated(
    existing: Mapping[str, Entry],
    records: Iterable[TrialRecord],
    regressed: Iterable[str] = (),
) -> dict[str, Entry]:
    """The existing trials, with those this run measured replaced.

    Only a trial that passed (or was resumed from a session that passed)
    moves its entry: a failed or regressed one keeps the entry it was judged
    against, or a regression saved into the baseline it regressed from would
    pass on the next run. A metric that is not finite (NaN) keeps its
    recorded value. Repeats make one entry per combination: each metric's
    mean, and its n, mean, std and values under "stats"; a combination in
    `regressed` keeps its entry.
    """
    from pytest_hparams.repeats import combine

    trials = dict(existing)
    all_records = list(records)
    skip = set(regressed)
    for combination in combine(r for r in all_records if r.key.repeat is not None):
        if combination.combo in skip or any(
            r.verdict == "regressed" or r.outcome not in _MOVES for r in combination.records
        ):
            continue  # every repeat must have passed: a baseline of survivors flatters
        old_n = max(
            (s.get("n", 0) for s in trials.get(combination.combo, {}).get("stats", {}).values()),
            default=0,
        )
        if len(combination.records) < old_n:
            continue  # a partial run (-k "repeat:0") does not shrink the entry
        summaries = {n: s for n, s in combination.summaries().items() if s.n}
        if summaries:
            key = combination.key
            trials[combination.combo] = {
                "test": key.test,
                "hparams": dict(key.hparams),
                "metrics": {n: s.mean for n, s in summaries.items()},
                "stats": {n: s.to_dict() for n, s in summaries.items()},
            }
    for record in all_records:
        if record.key.repeat is not None:
            continue
        if record.outcome not in _MOVES or record.verdict == "regressed":
            continue
        old = trials.get(record.nodeid, {}).get("metrics", {})
        metrics = {k: v for k, v in record.metrics.items() if math.isfinite(v)}
        metrics.update({k: v for k, v in old.items() if k not in metrics and k in record.metrics})
        if metrics:
            trials[record.nodeid] = {
                "test": record.test,
                "hparams": dict(record.key.hparams),
                "metrics": metrics,
            }
    return trials


def save(path: Path, trials: Mapping[str, Entry]) -> None:
    write_atomically(path, dumps(trials))


def save_records(
    path: Path,
    existing: Mapping[str, Entry],
    records: Iterable[TrialRecord],
    regressed: Iterable[str] = (),
) -> str:
    """Merges a run's records into the baseline at `path`; returns " (N trials)"."""
    trials = updated(existing, records, regressed)
    save(path, trials)
    combos = sum(1 for entry in trials.values() if entry.get("stats"))
    if combos:
        return f" ({len(trials)} entries, {combos} of them combinations of repeats)"
    return f" ({len(trials)} trials)"


def compare(
    metrics: Mapping[str, float],
    entry: Entry | None,
    declared: Iterable[Metric],
    tolerance: Callable[[Metric], Tolerance],
) -> dict[str, Any]:
    """Compares one trial's metrics with its baseline entry.

    Args:
      metrics: What the trial returned.
      entry: Its baseline entry, or None for a trial the baseline lacks.
      declared: The sweep's metrics (for goals); others default by name.
      tolerance: The tolerance that applies to a metric.

    Returns:
      {"verdict": "new" | "ok" | "improved" | "regressed",
       "metrics": {name: {"baseline", "value", "delta", "tolerance", "verdict"}},
       "messages": [one line per regressed metric]}
    """
    if entry is None:
        return {"verdict": "new", "metrics": {}, "messages": []}
    by_name = {m.name: m for m in declared}
    out: dict[str, Any] = {}
    messages = []
    for name, base in sorted(entry["metrics"].items()):
        metric = by_name.get(name) or Metric(name)
        tol = tolerance(metric)
        value = metrics.get(name)
        verdict, message = _judge(metric, value, base, tol)
        out[name] = {
            "baseline": base,
            "value": value,
            "delta": None if value is None or not math.isfinite(value) else value - base,
            "tolerance": str(tol),
            "verdict": verdict,
        }
        if message:
            messages.append(message)
    return comparison(out, messages)


def comparison(metrics: dict[str, Any], messages: list[str]) -> dict[str, Any]:
    """A comparison's overall verdict from its metrics': regressed wins, then improved."""
    verdicts = {m["verdict"] for m in metrics.values()}
    overall = (
        "regressed" if "regressed" in verdicts else "improved" if "improved" in verdicts else "ok"
    )
    return {"verdict": overall, "metrics": metrics, "messages": messages}


def _judge(metric: Metric, value: float | None, base: float, tol: Tolerance) -> tuple[str, str]:
    name = metric.name
    if value is None:
        return "regressed", f"{name} is missing (baseline {_num(base)})"
    if not math.isfinite(value):
        return "regressed", f"{name} regressed: {value} (baseline {_num(base)})"
    # Values read back from a logdir went through float32: a difference in
    # the 7th digit is that rounding, never a move.
    amount = max(tol.amount(base), 1e-6 * max(1.0, abs(base)))
    shown = str(tol) if not tol.relative else f"{tol} ({_num(amount)})"
    if metric.goal == "max":
        if value < base - amount:
            return "regressed", (
                f"{name} regressed: {_num(value)} < baseline {_num(base)} - tolerance {shown}"
            )
        return ("improved" if value > base + amount else "ok"), ""
    if value > base + amount:
        return "regressed", (
            f"{name} regressed: {_num(value)} > baseline {_num(base)} + tolerance {shown}"
        )
    return ("improved" if value < base - amount else "ok"), ""


def not_run(entries: Mapping[str, Entry], ran: Iterable[str]) -> list[str]:
    """Node ids in the baseline that this run did not record."""
    seen = set(ran)
    return sorted(k for k in entries if k not in seen)


def _num(value: float) -> str:
    return f"{value:.6g}"
