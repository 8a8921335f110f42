"""The running trial: the object behind the `trial` fixture, and the checks
on what a swept test returns."""

from __future__ import annotations

import contextlib
import difflib
import functools
import math
import numbers
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from pytest_hparams import gates, lazy
from pytest_hparams.errors import LogdirError, MetricsError
from pytest_hparams.files import real_os  # whatever a test patches, a trial writes for real
from pytest_hparams.logdir import TrialWriter
from pytest_hparams.metrics import Metric
from pytest_hparams.records import Outcome
from pytest_hparams.sweep import SWEEP_HPARAM, Sweep, Value, one_line, trial_seed
from pytest_hparams.verdicts import Comparison

if TYPE_CHECKING:
    from pytest_hparams.progress import LiveLine
    from pytest_hparams.pruning import StudyTrial
    from pytest_hparams.records import TrialKey
    from pytest_hparams.storage import LocalStore


class Baseline(NamedTuple):
    """A trial's baseline entry (None: a NEW trial) and the tolerances it is judged with."""

    entry: gates.Entry | None
    tolerances: gates.Tolerances

    def compare(
        self, metrics: Mapping[str, float], declared: tuple[Metric, ...], repeat: int | None
    ) -> Comparison | None:
        """The trial against its entry; None for a repeat whose entry holds
        repeats: those are judged together, where all of them are known."""
        if repeat is not None and gates.repeated(self.entry):
            return None
        return gates.compare_trial(metrics, self.entry, declared, self.tolerances)


# TensorBoard keeps scalars as float32: a larger value reads back as inf.
FLOAT32_MAX = 3.4028234663852886e38


class Trial:
    """One trial of a sweep, as the `trial` fixture gives it to a test.

    Attributes:
      hparams: The trial's values, keyed by hparam name.
      id: The pytest node id, unique in the session and stable across runs.
      seed: A 31-bit int derived from the trial's key, for seeding RNGs: the
        same on every run and in every xdist worker, different for every
        repeat, and changed for all by `--hparams-seed`.
      repeat: Which repeat of its combination this is (0 without `repeats=`).
    """

    def __init__(
        self,
        key: TrialKey,
        sweep: Sweep,
        store: LocalStore | None,
        scratch: Callable[[], Path] | None = None,
        salt: int = 0,
        run: str | None = None,
    ) -> None:
        # run: the trial's run directory under the store's root (None without
        # a store); the runner names it, each sweep's folder made once.
        self.key = key
        self.hparams: dict[str, Value] = dict(key.hparams)
        self.id = key.nodeid
        self.repeat = key.repeat or 0
        self._salt = salt
        self._store = store
        self._run = run
        self._scratch = scratch  # a temporary directory, without a logdir
        self._logdir: Path | None = None
        self._made = False  # the run directory exists (made here, or found)
        self._fresh = False  # this trial created its run directory
        self._writer: TrialWriter | None = None
        # Set when a file of this trial's run could not be written: the trial
        # goes on unrecorded, and the runner warns once with the reason.
        self.write_error: LogdirError | None = None
        self.metrics: dict[str, float] = {}
        self.logged: set[str] = set()  # metric names written by log()
        self.last: dict[str, float] = {}  # each metric's latest value from log()
        self.step = 0  # the latest step given to log(): where optuna.TrialPruned stops it
        # Its Optuna trial, when its sweep prunes or searches.
        self.study: StudyTrial | None = None
        self.pruned_at: int | None = None
        self.comparison: Comparison | None = None  # the baseline verdict, if any
        self.live: LiveLine | None = None  # its line on a terminal, while its test runs
        self._groups = {m.name: m.group for m in sweep.metrics if m.group}
        self._primary: Metric | None = sweep.metrics[0] if sweep.metrics else None

    @functools.cached_property
    def seed(self) -> int:
        # Salt 0 keeps the seeds of runs made before --hparams-seed existed.
        key = self.key.nodeid
        return trial_seed(key if not self._salt else f"{key}#seed={self._salt}")

    def _make_run(self) -> str:
        """Makes the trial's run directory (once) and returns it."""
        assert self._run is not None
        if not self._made:
            try:
                try:
                    real_os.mkdir(self._run)
                except FileNotFoundError:  # the sweep's first trial: its folders too
                    real_os.makedirs(self._run.rpartition(os.sep)[0], exist_ok=True)
                    real_os.mkdir(self._run)
                self._fresh = True
            except FileExistsError:
                pass
            self._made = True
        return self._run

    @property
    def logdir(self) -> Path:
        """The trial's run directory (a temporary one without --hparams-logdir)."""
        if self._logdir is None:
            if self._run is None:
                if self._scratch is None:
                    raise RuntimeError("this trial has no logdir and no temporary directory")
                self._logdir = self._scratch()
            else:
                self._logdir = Path(self._make_run())
        return self._logdir

    def log(self, step: int, **metrics: float) -> None:
        """Writes a point of each named scalar's curve (TensorBoard's Scalars tab),
        and reports the sweep's primary metric to its pruner, if it has one.

        Without --hparams-logdir nothing is written.

        Raises:
          TypeError: If `step` is not an int or a value is not a number.
          ValueError: If `step` does not fit in 32 bits (TensorBoard reads it so).
          TrialPruned: If the pruner stops the trial (a BaseException: let it go).
        """
        _check_step(step)
        values = {k: _number(k, v) for k, v in metrics.items()}
        if self.pruned_at is not None:
            return  # pruned, and the test is over: its curve ends where it was pruned
        if self.study is not None:
            self.study.check_pruned()  # a caught prune: its curve ends where it was pruned
        self.logged.update(values)
        self.last.update(values)
        self.step = step
        self._write_scalars(step, values)
        if self.live is not None:
            self.live.show(step, self.last)
        self.prune_on(step, values)

    def _write_scalars(self, step: int, values: Mapping[str, float]) -> None:
        """Writes a point of each curve into the trial's run, if it has one."""
        writer = self.open()
        if writer is not None:
            try:
                writer.scalars(step, values, self._groups)
            except OSError as e:
                # Dropped, like a trial whose end cannot be written: a torn
                # curve must not read as a session of the trial.
                writer.discard()
                self._failed(e)

    def prune_on(self, step: int, values: Mapping[str, float]) -> None:
        """Reports the primary metric, if among `values`, to the pruner."""
        study = self.study
        if study is not None and study.prunes:
            value = values.get(study.metric)
            if value is not None:
                study.report(step, value)  # raises TrialPruned

    def keras_callbacks(self, **tensorboard_options: Any) -> list[Any]:
        """Keras callbacks that write the training curves into this trial's run.

        Keras' own `TensorBoard` callback, writing `epoch_*` curves to
        `<run>/train` and `<run>/validation` (declare e.g.
        `Metric("epoch_accuracy", group="validation")` to show the last
        validation value in the HParams table), and one that keeps the
        trial's final metrics at the last epoch's step. TensorFlow is
        imported here, and only here.

        Args:
          **tensorboard_options: Passed to `tf.keras.callbacks.TensorBoard`.

        Raises:
          ModuleNotFoundError: If TensorFlow is not installed.
        """
        tf = lazy.tensorflow()
        trial = self

        callback: Any = tf.keras.callbacks.Callback

        class LastEpoch(callback):  # type: ignore[misc]
            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                writer = trial.open()
                if writer is not None:
                    writer.last_step = max(writer.last_step, epoch)
                if trial.live is not None:
                    trial.live.show(epoch, {k: float(v) for k, v in (logs or {}).items()})
                primary = trial._primary
                if primary is not None:  # the primary metric, by its Keras name
                    value = (logs or {}).get(keras_name(primary.group, primary.name))
                    if value is not None:
                        # Kept whether or not the sweep prunes: a test that
                        # does not return it (a validation metric) is ranked
                        # by its last value, and a search told it.
                        trial.last[primary.name] = float(value)
                        trial.prune_on(epoch, {primary.name: float(value)})

        options = {"log_dir": str(self.logdir), "write_graph": False, "profile_batch": 0}
        options.update(tensorboard_options)
        return [tf.keras.callbacks.TensorBoard(**options), LastEpoch()]

    def open(self) -> TrialWriter | None:
        """Starts the trial's session in the logdir (once); None without one,
        or once a write of this trial has failed."""
        if self._writer is None and self._run is not None and self.write_error is None:
            hparams = {**self.key.hparams, SWEEP_HPARAM: self.key.sweep_label}
            try:
                run = self._make_run()
                self._writer = TrialWriter(run, self.key.label, hparams, self._fresh)
            except OSError as e:
                self._failed(e)
        return self._writer

    def finish(self, success: bool, extra: Mapping[str, float] | None = None) -> None:
        """Ends the trial's session as SUCCESS or FAILURE (nothing without a logdir).

        `extra`: scalars its session ends with that are not its metrics (the
        table and reports leave them out). A file that cannot be written (a
        full disk, a read-only directory) leaves the trial unrecorded, with
        the reason in `write_error`; a remote logdir that refuses the run
        does the same.
        """
        writer = self.open()
        if writer is not None:
            self._writer = None
            try:
                writer.finish(success, {**self.metrics, **(extra or {})}, self._groups)
            except OSError as e:
                # Not a session that reads as unknown: the trial did end, and
                # a session recorded before stays as it was.
                writer.discard()
                self._failed(e)
                return
            try:
                self._publish(finished=True)
            except LogdirError as e:  # the staged files stay, and the message says where
                self._failed(e)

    def abort(self, told: Outcome | None = None) -> None:
        """Ends the trial cut short (Ctrl-C): its session reads as unknown
        (a recorded session it was rerunning stays) and its study says FAIL.

        Args:
          told: How it ended, when it was cut short as it was being told so:
            its session has its end, and its study is told the same.
        """
        if told is None:
            writer, self._writer = self._writer, None
            if writer is None:
                self._drop_unwritten()
            else:
                writer.abort()
                # Cut short anyway; if the upload fails the staged files stay here.
                with contextlib.suppress(OSError, LogdirError):
                    self._publish(finished=False)
        self.tell(told)

    def tell(self, outcome: Outcome | None) -> None:
        """Tells the trial's study, if it has one, how it ended, as pytest
        and the table say it (None: cut short). A finished trial is ranked
        by its final value: returned, else the last one reported (Keras')."""
        study = self.study
        if study is None:
            return
        if outcome is None:
            study.end("interrupted", pruned=False, value=None)
            return
        value = None
        if outcome in (Outcome.PASSED, Outcome.XPASSED):
            value = self.metrics.get(study.metric, self.last.get(study.metric))
        study.end(outcome.value, pruned=outcome is Outcome.PRUNED, value=value)

    def discard(self) -> None:
        """Drops what this run of the trial wrote (it was skipped): a session
        recorded before stays, and a first run leaves no session behind."""
        writer, self._writer = self._writer, None
        if writer is None:
            self._drop_unwritten()
        else:
            writer.discard()

    def _drop_unwritten(self) -> None:
        """Removes the run directory this trial made and never wrote a
        session in (`trial.logdir` in a fixture, then a skip), if nothing
        else is in it."""
        if self._fresh and self._run is not None:
            with contextlib.suppress(OSError):  # the test's own files stay, with it
                real_os.rmdir(self._run)

    def _failed(self, error: Exception) -> None:
        if isinstance(error, LogdirError):
            self.write_error = error
        else:
            where = getattr(error, "filename", None) or self._run
            reason = getattr(error, "strerror", None) or str(error)
            self.write_error = LogdirError(
                f"{self.id}: could not write its TensorBoard run at {where} "
                f"({type(error).__name__}: {reason}); the trial ran but is not recorded"
            )
        self._writer = None

    def _publish(self, finished: bool) -> None:
        if self._store is not None and self._run is not None:
            self._store.publish(self._run, finished)

    def __repr__(self) -> str:
        return f"<Trial {self.id}>"


def _check_step(step: int) -> None:
    """Raises unless `step` is an int that fits in 32 bits, as `Trial.log` needs."""
    if isinstance(step, bool) or not isinstance(step, int):
        raise TypeError(f"trial.log step must be an int (got {step!r})")
    if not -(2**31) <= step < 2**31:
        # TensorBoard's HParams view reads a metric's step as an int32:
        # one step past it fails the whole logdir's table.
        raise ValueError(f"trial.log step must fit in 32 bits, -2**31 to 2**31-1 (got {step})")


def judge(
    trial: Trial,
    result: object,
    declared: tuple[Metric, ...],
    baseline: Baseline | None = None,
) -> tuple[list[str], list[str]]:
    """Keeps what a swept test returned as its trial's metrics, and judges
    them: returns what fails the trial (a bad return value, a bound, its
    `baseline` entry under `--hparams-gate each`, a primary metric its study
    cannot rank), and what is worth a warning only.

    Sets `trial.metrics`, and `trial.comparison` when it meets its baseline.
    """
    try:
        trial.metrics = coerce_metrics(result, declared)
    except Exception as e:  # MetricsError, or a __float__ that raised
        return [str(e)], []
    primary = declared[0].name if declared else ""
    _keep_reported_primary(trial, primary)
    notes = [out_of_range(trial.metrics)]
    missing = missing_metrics(trial.metrics, declared, trial.logged)
    problems = _failures(trial, primary, declared, baseline)
    if not problems:  # a typo's hint, where nothing worse is said
        notes.append(missing)
    return problems, [n for n in notes if n]


def _keep_reported_primary(trial: Trial, primary: str) -> None:
    """Gives the trial's metrics the primary metric's last reported value,
    when the test reported it but did not return it."""
    if primary in trial.last and primary not in trial.metrics:
        # Reported, not returned (Keras' validation metric through
        # keras_callbacks, or trial.log): its last value is the one
        # TensorBoard reads and a study is told, so the table ranks by it,
        # as a pruned trial's row shows its last value.
        trial.metrics[primary] = trial.last[primary]


def _failures(
    trial: Trial, primary: str, declared: tuple[Metric, ...], baseline: Baseline | None
) -> list[str]:
    """What fails the trial: a bound it misses, its baseline's regressions,
    a primary metric its study cannot rank. Sets `trial.comparison` when it
    meets its baseline."""
    unrankable = _unrankable(trial, primary)
    if baseline is not None:
        trial.comparison = baseline.compare(trial.metrics, declared, trial.key.repeat)
    problems = gates.bounds(trial.metrics, declared)
    if trial.comparison is not None:
        problems += trial.comparison.messages
    return problems + unrankable


def _unrankable(trial: Trial, primary: str) -> list[str]:
    """A primary metric the trial's study cannot rank, as a failure: Optuna
    ranks no NaN, and the study would hold a failed trial that pytest, the
    table and TensorBoard call passed."""
    value = trial.metrics.get(primary)
    if value is None or math.isfinite(value) or trial.study is None:
        return []
    return [
        f"returned {primary}={value}, which its study cannot rank; "
        "a sweep that prunes or searches needs a finite primary metric"
    ]


def coerce_metrics(result: object, declared: tuple[Metric, ...]) -> dict[str, float]:
    """Turns a swept test's return value into a dict of metric name to float.

    Raises:
      MetricsError: With a message naming the offending key and its type.
    """
    if result is None:
        return {}
    if type(result) is not dict and not isinstance(result, Mapping):
        return _bare_number(result, declared)
    out: dict[str, float] = {}
    for key, value in result.items():
        if not isinstance(key, str) or not key.strip():
            raise MetricsError(f"metric names must be non-blank strings (got {key!r})")
        out[key] = _number(key, value)
    return out


def _bare_number(result: object, declared: tuple[Metric, ...]) -> dict[str, float]:
    """A test's return value that is no mapping, as its one declared metric.

    Raises:
      MetricsError: If it is no number, or the sweep declares other than one metric.
    """
    if _is_number(result):
        if len(declared) != 1:
            raise MetricsError(
                f"returned a bare number ({result!r}) but declares {len(declared)} metrics; "
                "return a dict such as {'accuracy': acc}"
            )
        return {declared[0].name: _number(declared[0].name, result)}
    raise MetricsError(
        f"must return a dict of metrics, a number or None (got {type(result).__name__})"
    )


def _is_number(value: object) -> bool:
    if isinstance(value, (bool, str, bytes)):
        return False
    return isinstance(value, numbers.Real) or (
        hasattr(value, "__float__") and getattr(value, "ndim", 0) == 0
    )


def _number(key: str, value: Any) -> float:
    # numpy scalars and 0-d tensors convert through __float__; plain floats
    # are what travels between xdist processes.
    if type(value) is float:  # the common case, without the ABC check below
        return value
    if not _is_number(value):
        raise MetricsError(
            f"metric {key!r} must be a number (got {type(value).__name__} {one_line(value)})"
        )
    try:
        return float(value)
    except OverflowError:  # an int such as 10**400
        raise MetricsError(
            f"metric {key!r} is too large for a float (got an int of {len(str(value))} digits)"
        ) from None


def out_of_range(metrics: Mapping[str, float]) -> str:
    """The metrics TensorBoard cannot show as they are, as one phrase, or ""."""
    bad = []
    for name, value in metrics.items():
        if not math.isfinite(value):
            bad.append(f"{name}={value}")
        elif abs(value) > FLOAT32_MAX:
            bad.append(f"{name}={value:g} (beyond float32: TensorBoard shows inf)")
    return "returned non-finite " + ", ".join(bad) if bad else ""


def missing_metrics(
    metrics: Mapping[str, float], declared: tuple[Metric, ...], logged: set[str]
) -> str:
    """Declared metrics a trial neither returned nor logged, with a close match
    among the returned keys, as one phrase, or "".

    A metric with a group is left out: Keras' callback or `trial.log` write
    those into the group's directory, and TensorBoard reads them from there.
    """
    written = {*metrics, *logged}
    missing = [m.name for m in declared if not m.group and m.name not in written]
    if not missing:
        return ""
    if not metrics:
        names = ", ".join(repr(n) for n in missing)
        return (
            f"returned no metrics but declares {names}; return them, e.g. {{{missing[0]!r}: ...}}"
        )
    return _not_returned(missing, metrics)


def _not_returned(missing: list[str], metrics: Mapping[str, float]) -> str:
    """The declared metrics the trial did not return, each with a returned
    key it may be a typo of, and the keys it returned, as one phrase."""
    parts = []
    for name in missing:
        close = difflib.get_close_matches(name, list(metrics), n=1, cutoff=0.5)
        parts.append(f"{name!r}" + (f" (it returned {close[0]!r}: a typo?)" if close else ""))
    returned = ", ".join(repr(k) for k in metrics)
    return f"did not return the declared metric {', '.join(parts)}; it returned {returned}"


def keras_name(group: str, metric: str) -> str:
    """The key of Keras' epoch logs that a TensorBoard metric declared for its
    callback reads: `epoch_accuracy` in group `validation` is `val_accuracy`."""
    name = metric.removeprefix("epoch_")
    return f"val_{name}" if group == "validation" else name
