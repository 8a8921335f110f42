"""The running trial: the object behind the `trial` fixture, and the checks
on what a swept test returns."""

from __future__ import annotations

import contextlib
import numbers
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from pytest_hparams.metrics import Metric
from pytest_hparams.space import SWEEP_HPARAM, Sweep, Value, trial_seed

if TYPE_CHECKING:
    from pytest_hparams.logdir import TrialWriter
    from pytest_hparams.storage import LocalStore


class MetricsError(Exception):
    """A swept test returned something that is not a dict of numbers."""


class TrialSpec(NamedTuple):
    """What collection knows of a swept item."""

    test: str  # the node id without the parameter part
    nodeid: str
    id: str  # the hparam part of the pytest id
    case: str  # the rest of the pytest id (other parametrize arguments)
    hparams: dict[str, Value]
    sweep: Sweep
    argnames: tuple[str, ...] = ()
    # sweep.definition(), built once per sweep: it travels in every report.
    definition: dict[str, Any] | None = None

    @property
    def pytest_id(self) -> str:
        return f"{self.id}-{self.case}" if self.case else self.id


class Trial:
    """One trial of a sweep, as the `trial` fixture gives it to a test.

    Attributes:
      hparams: The trial's values, keyed by hparam name.
      id: The pytest node id, unique in the session and stable across runs.
      seed: A 31-bit int derived from the trial's key, for seeding RNGs: the
        same on every run and in every xdist worker.
    """

    def __init__(self, spec: TrialSpec, store: LocalStore | None) -> None:
        self.spec = spec
        self.hparams: dict[str, Value] = dict(spec.hparams)
        self.id = spec.nodeid
        self.seed = trial_seed(spec.nodeid)
        self._store = store
        self._root = store.root if store is not None else None
        self._logdir: Path | None = None
        self._fresh = False  # this trial created its run directory
        self._writer: TrialWriter | None = None
        self.metrics: dict[str, float] = {}
        self.comparison: dict[str, Any] | None = None  # the baseline verdict, if any
        self._groups = {m.name: m.group for m in spec.sweep.metrics if m.group}

    @property
    def logdir(self) -> Path:
        """The trial's run directory (a temporary one without --hparams-logdir)."""
        if self._logdir is None:
            if self._root is None:
                self._logdir = Path(tempfile.mkdtemp(prefix="hparams-trial-"))
            else:
                from pytest_hparams.logdir import run_dir

                self._logdir = run_dir(self._root, self.spec.test, self.spec.pytest_id)
                try:
                    self._logdir.mkdir(parents=True)
                    self._fresh = True
                except FileExistsError:
                    pass
        return self._logdir

    def log(self, step: int, **metrics: float) -> None:
        """Writes a point of each named scalar's curve (TensorBoard's Scalars tab).

        Without --hparams-logdir nothing is written.

        Raises:
          TypeError: If `step` is not an int or a value is not a number.
        """
        if isinstance(step, bool) or not isinstance(step, int):
            raise TypeError(f"trial.log step must be an int (got {step!r})")
        values = {k: _number(k, v) for k, v in metrics.items()}
        writer = self.open()
        if writer is not None:
            writer.scalars(step, values, self._groups)

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
        try:
            import tensorflow as tf
        except ModuleNotFoundError:
            raise ModuleNotFoundError(
                "trial.keras_callbacks() needs TensorFlow; "
                "install it with: pip install 'pytest-hparams[tensorflow]'"
            ) from None
        trial = self

        class LastEpoch(tf.keras.callbacks.Callback):  # type: ignore[misc]
            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                writer = trial.open()
                if writer is not None:
                    writer.last_step = max(writer.last_step, epoch)

        options = {"log_dir": str(self.logdir), "write_graph": False, "profile_batch": 0}
        options.update(tensorboard_options)
        return [tf.keras.callbacks.TensorBoard(**options), LastEpoch()]

    def open(self) -> TrialWriter | None:
        """Starts the trial's session in the logdir (once); None without one."""
        if self._writer is None and self._root is not None:
            from pytest_hparams.logdir import TrialWriter

            hparams = {**self.hparams, SWEEP_HPARAM: self.spec.test}
            self._writer = TrialWriter(self.logdir, self.spec.nodeid, hparams, fresh=self._fresh)
        return self._writer

    def finish(self, success: bool) -> None:
        """Ends the trial's session as SUCCESS or FAILURE (nothing without a logdir).

        Raises:
          storage.LogdirError: If a remote logdir could not take the run.
        """
        writer = self.open()
        if writer is not None:
            from pytest_hparams import events

            status = events.STATUS_SUCCESS if success else events.STATUS_FAILURE
            writer.finish(status, self.metrics, self._groups)
            self._writer = None
            self._publish(finished=True)

    def abort(self) -> None:
        """Ends the trial without a session end: it reads as unknown."""
        if self._writer is not None:
            from pytest_hparams.storage import LogdirError

            self._writer.abort()
            self._writer = None
            # Cut short anyway; if the upload fails the staged files stay here.
            with contextlib.suppress(LogdirError):
                self._publish(finished=False)

    def _publish(self, finished: bool) -> None:
        if self._store is not None:
            self._store.publish(self.logdir, finished)

    def __repr__(self) -> str:
        return f"<Trial {self.id}>"


def coerce_metrics(result: object, declared: tuple[Metric, ...]) -> dict[str, float]:
    """Turns a swept test's return value into a dict of metric name to float.

    Raises:
      MetricsError: With a message naming the offending key and its type.
    """
    if result is None:
        return {}
    if not isinstance(result, Mapping):
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
    out: dict[str, float] = {}
    for key, value in result.items():
        if not isinstance(key, str):
            raise MetricsError(f"metric names must be strings (got {key!r})")
        out[key] = _number(key, value)
    return out


def _is_number(value: object) -> bool:
    if isinstance(value, (bool, str, bytes)):
        return False
    return isinstance(value, numbers.Real) or (
        hasattr(value, "__float__") and getattr(value, "ndim", 0) == 0
    )


def _number(key: str, value: Any) -> float:
    # numpy scalars and 0-d tensors convert through __float__; plain floats
    # are what travels between xdist processes.
    if not _is_number(value):
        raise MetricsError(
            f"metric {key!r} must be a number (got {type(value).__name__} {value!r})"
        )
    return float(value)


def bound_problems(metrics: Mapping[str, float], declared: tuple[Metric, ...]) -> list[str]:
    """One line per declared bound (`Metric(min=..., max=...)`) the trial misses."""
    problems = []
    for metric in declared:
        if metric.min is None and metric.max is None:
            continue
        value = metrics.get(metric.name)
        if value is None:
            problems.append(f"{metric.name} has a bound but the test did not return it")
        elif metric.min is not None and not value >= metric.min:  # NaN fails too
            problems.append(f"{metric.name} {value:.6g} is below its minimum {metric.min:g}")
        elif metric.max is not None and not value <= metric.max:
            problems.append(f"{metric.name} {value:.6g} is above its maximum {metric.max:g}")
    return problems
