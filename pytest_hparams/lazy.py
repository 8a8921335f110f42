"""The packages imported on first use, all of them here: the optional extras
(Optuna, scipy, fsspec, TensorFlow) and TensorBoard's protocol buffers.
Every other module imports at its top, but for the two that draw the HTML
report with plotly: they import `report_html` where they draw it.

The plugin loads in every pytest run of a project that installs it, sweeps
or not: a run that never prunes, searches, gates repeats, writes to a bucket,
calls Keras or draws a report imports none of the extras (and works without
them installed), and a run that records nothing imports no protobuf
(`benchmarks/bench.py`'s startup row).
"""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Any

#: How to install each extra, as the one-line errors say it.
OPTUNA_EXTRA = "pip install 'pytest-hparams[optuna]'"
STATS_EXTRA = "pip install 'pytest-hparams[stats]'"
REMOTE_EXTRA = "pip install 'pytest-hparams[remote]'"
TENSORFLOW_EXTRA = "pip install 'pytest-hparams[tensorflow]'"
REPORT_EXTRA = "pip install 'pytest-hparams[report]'"


def optuna() -> Any:
    """Optuna, with the submodules the plugin uses (its storages, trial,
    distributions, pruners and samplers load with it)."""
    import optuna  # the optuna extra: pruning and @hparam_search

    return optuna


def sqlalchemy_exc() -> Any:
    """SQLAlchemy's exceptions, which Optuna's database storage raises."""
    import sqlalchemy.exc  # with Optuna's RDB storage, for a database URL

    return sqlalchemy.exc


def scipy_stats(user: str = "the baseline gate on repeats") -> Any:
    """scipy.stats, for the Welch's t-test on repeats.

    Raises:
      ModuleNotFoundError: If scipy is not installed; the message names the
        extra, and `user`, what needed it.
    """
    try:
        from scipy import stats  # the stats extra: only a gate on repeats tests
    except ModuleNotFoundError:
        raise ModuleNotFoundError(f"{user} needs scipy; install it with: {STATS_EXTRA}") from None
    return stats


def fsspec() -> Any:
    """fsspec, for a logdir at a URL (`s3://bucket/prefix`)."""
    import fsspec  # the remote extra

    return fsspec


def tensorflow() -> Any:
    """TensorFlow, for `trial.keras_callbacks()`.

    Raises:
      ModuleNotFoundError: If TensorFlow is not installed; the message names the extra.
    """
    try:
        import tensorflow  # the tensorflow extra: seconds and hundreds of MB to import
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            f"trial.keras_callbacks() needs TensorFlow; install it with: {TENSORFLOW_EXTRA}"
        ) from None
    return tensorflow


@functools.cache
def protos() -> SimpleNamespace:
    """TensorBoard's event and hparams protocol buffers and its tensor
    decoder: protobuf costs a run that records nothing a tenth of a second."""
    from tensorboard.compat.proto import event_pb2  # protobuf: only where events are read
    from tensorboard.plugins.hparams import plugin_data_pb2  # protobuf, likewise
    from tensorboard.util import tensor_util  # numpy, to decode a tensor's bytes

    return SimpleNamespace(
        event_pb2=event_pb2, plugin_data_pb2=plugin_data_pb2, tensor_util=tensor_util
    )
