"""TensorBoard records: pure builders of event protos and TFRecord framing.

Nothing here touches files. TensorFlow is never imported: the protos are
TensorBoard's own generated modules, and the TFRecord framing (with its
masked CRC-32C) is the documented format, written out below because
TensorBoard's `EventFileWriter` reaches for TensorFlow whenever it is installed.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, types_pb2
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

from pytest_hparams.metrics import Metric
from pytest_hparams.space import Domain, Value

EXPERIMENT_TAG = "_hparams_/experiment"
SESSION_START_TAG = "_hparams_/session_start_info"
SESSION_END_TAG = "_hparams_/session_end_info"
FILE_VERSION = "brain.Event:2"

STATUS_UNKNOWN = api_pb2.STATUS_UNKNOWN
STATUS_SUCCESS = api_pb2.STATUS_SUCCESS
STATUS_FAILURE = api_pb2.STATUS_FAILURE

_DTYPES = {
    "bool": api_pb2.DATA_TYPE_BOOL,
    "number": api_pb2.DATA_TYPE_FLOAT64,
    "str": api_pb2.DATA_TYPE_STRING,
}
_DTYPE_NAMES = {v: k for k, v in _DTYPES.items()}

# The hparams plugin stores its data in summary metadata; the tensor only has
# to be valid, and an empty float vector is the smallest valid one.
_NULL_TENSOR = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT)
_NULL_TENSOR.tensor_shape.dim.add(size=0)
_SCALAR_METADATA = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
    data_class=summary_pb2.DATA_CLASS_SCALAR,
)


def experiment_summary(
    hparams: Sequence[Mapping[str, Any]],
    metrics: Sequence[Metric],
    time_created_secs: float,
) -> summary_pb2.Summary:
    """Builds the experiment config (`_hparams_/experiment`) for the root run.

    Args:
      hparams: Dicts as made by `HParamDef.to_dict()`; a None domain leaves
        the hparam untyped, which the dashboard shows with a text filter.
      metrics: The metrics, in column order.
      time_created_secs: Seconds since the epoch.
    """
    experiment = api_pb2.Experiment(time_created_secs=time_created_secs)
    for hp in hparams:
        info = experiment.hparam_infos.add(
            name=hp["name"],
            display_name=hp.get("display_name", ""),
            description=hp.get("description", ""),
        )
        if hp.get("domain") is None:
            info.type = api_pb2.DATA_TYPE_STRING
            continue
        domain = Domain.from_dict(hp["domain"])
        info.type = _DTYPES[domain.dtype]
        if domain.kind == "interval":
            info.domain_interval.min_value = domain.min_value
            info.domain_interval.max_value = domain.max_value
        else:
            info.domain_discrete.extend(domain.values)
    for metric in metrics:
        experiment.metric_infos.add(
            name=api_pb2.MetricName(group=metric.group, tag=metric.name),
            display_name=metric.display_name,
            description=metric.description,
        )
    return _hparams_summary(
        EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=experiment)
    )


def session_start_summary(
    group_name: str, hparams: Mapping[str, Value], start_time_secs: float
) -> summary_pb2.Summary:
    """Builds a trial's `session_start_info`, with its own readable group name."""
    info = plugin_data_pb2.SessionStartInfo(group_name=group_name, start_time_secs=start_time_secs)
    for name, value in hparams.items():
        if isinstance(value, bool):
            info.hparams[name].bool_value = value
        elif isinstance(value, (int, float)):
            info.hparams[name].number_value = value
        else:
            info.hparams[name].string_value = value
    return _hparams_summary(
        SESSION_START_TAG, plugin_data_pb2.HParamsPluginData(session_start_info=info)
    )


def session_end_summary(status: int, end_time_secs: float) -> summary_pb2.Summary:
    """Builds a trial's `session_end_info` with an `api_pb2.Status`."""
    info = plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=end_time_secs)
    return _hparams_summary(
        SESSION_END_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=info)
    )


def add_scalar(summary: summary_pb2.Summary | None, tag: str, value: float) -> summary_pb2.Summary:
    """Adds a scalar to `summary` (or a new one): one event can carry several."""
    if summary is None:
        summary = summary_pb2.Summary()
    tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[value])
    tensor.tensor_shape.SetInParent()
    summary.value.add(tag=tag, metadata=_SCALAR_METADATA, tensor=tensor)
    return summary


def scalar_summary(tag: str, value: float) -> summary_pb2.Summary:
    """A scalar as `tf.summary.scalar` writes one: a float32 rank-0 tensor.

    TensorBoard's data server reads scalars only as float32 (a float64
    tensor is silently dropped), so values are stored rounded to float32.
    """
    return add_scalar(None, tag, value)


def event_bytes(
    wall_time: float, step: int = 0, summary: summary_pb2.Summary | None = None
) -> bytes:
    """A serialized `Event`: the file-version header when `summary` is None."""
    if summary is None:
        event = event_pb2.Event(wall_time=wall_time, step=step, file_version=FILE_VERSION)
    else:
        event = event_pb2.Event(wall_time=wall_time, step=step, summary=summary)
    return event.SerializeToString()  # type: ignore[no-any-return]


def _hparams_summary(tag: str, data: plugin_data_pb2.HParamsPluginData) -> summary_pb2.Summary:
    data.version = 0
    summary = summary_pb2.Summary()
    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name="hparams", content=data.SerializeToString()
        )
    )
    summary.value.add(tag=tag, metadata=metadata, tensor=_NULL_TENSOR)
    return summary


def parse_experiment(records: Iterator[bytes]) -> tuple[list[dict[str, Any]], list[Metric]] | None:
    """Finds the experiment config among serialized events (our own root file).

    Returns:
      (hparams as `HParamDef.to_dict()` dicts, metrics), or None if absent.
    """
    for record in records:
        event = event_pb2.Event.FromString(record)
        for value in event.summary.value:
            if value.tag != EXPERIMENT_TAG:
                continue
            data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
            return _experiment_to_plain(data.experiment)
    return None


def parse_session(records: Iterator[bytes]) -> tuple[dict[str, Value], int, dict[str, float]]:
    """Reads a trial's own run back: its hparams, its end status, its final metrics.

    The final metrics are the scalars written in the same event as the
    session end. A run with no session end has status STATUS_UNKNOWN.
    """
    hparams: dict[str, Value] = {}
    status = STATUS_UNKNOWN
    metrics: dict[str, float] = {}
    for record in records:
        event = event_pb2.Event.FromString(record)
        tags = {v.tag for v in event.summary.value}
        for value in event.summary.value:
            if value.metadata.plugin_data.plugin_name != "hparams":
                continue
            data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
            if value.tag == SESSION_START_TAG:
                hparams = {
                    k: _from_proto_value(v) for k, v in data.session_start_info.hparams.items()
                }
            elif value.tag == SESSION_END_TAG:
                status = data.session_end_info.status
        if SESSION_END_TAG in tags:
            metrics = {
                v.tag: float(v.tensor.float_val[0])
                for v in event.summary.value
                if v.tag != SESSION_END_TAG and v.tensor.float_val
            }
    return hparams, status, metrics


def _experiment_to_plain(exp: api_pb2.Experiment) -> tuple[list[dict[str, Any]], list[Metric]]:
    hparams: list[dict[str, Any]] = []
    for info in exp.hparam_infos:
        dtype = _DTYPE_NAMES.get(info.type)
        domain: dict[str, Any] | None = None
        if dtype is not None and info.HasField("domain_interval"):
            domain = {
                "kind": "interval",
                "dtype": dtype,
                "min": info.domain_interval.min_value,
                "max": info.domain_interval.max_value,
            }
        elif dtype is not None and info.HasField("domain_discrete"):
            values = [_from_proto_value(v) for v in info.domain_discrete.values]
            domain = {"kind": "discrete", "dtype": dtype, "values": values}
        hparams.append(
            {
                "name": info.name,
                "domain": domain,
                "display_name": info.display_name,
                "description": info.description,
            }
        )
    metrics = [
        Metric(
            m.name.tag, display_name=m.display_name, description=m.description, group=m.name.group
        )
        for m in exp.metric_infos
    ]
    return hparams, metrics


def _from_proto_value(v: Any) -> Value:
    kind = v.WhichOneof("kind")
    if kind == "bool_value":
        return bool(v.bool_value)
    if kind == "number_value":
        n = v.number_value
        return int(n) if float(n).is_integer() else float(n)
    return str(v.string_value)


# --- TFRecord framing --------------------------------------------------------
# Each record: uint64 length, uint32 masked CRC-32C of the length, the data,
# uint32 masked CRC-32C of the data; all little-endian.


def _crc32c_tables() -> list[list[int]]:
    # Slicing-by-8: eight tables let the loop take eight bytes a step, about
    # 1.4x faster than a byte at a time in pure Python.
    first = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        first.append(crc)
    tables = [first]
    for _ in range(7):
        prev = tables[-1]
        tables.append([first[c & 0xFF] ^ (c >> 8) for c in prev])
    return tables


_T0, _T1, _T2, _T3, _T4, _T5, _T6, _T7 = _crc32c_tables()
_WORDS = struct.Struct("<II")


def _crc32c_python(data: bytes) -> int:
    crc = 0xFFFFFFFF
    end = len(data) - len(data) % 8
    for lo, hi in _WORDS.iter_unpack(data[:end]):
        x = crc ^ lo
        crc = (
            _T7[x & 0xFF]
            ^ _T6[(x >> 8) & 0xFF]
            ^ _T5[(x >> 16) & 0xFF]
            ^ _T4[x >> 24]
            ^ _T3[hi & 0xFF]
            ^ _T2[(hi >> 8) & 0xFF]
            ^ _T1[(hi >> 16) & 0xFF]
            ^ _T0[hi >> 24]
        )
    for byte in data[end:]:
        crc = _T0[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


try:
    # The C implementation (a default dependency, with wheels for common platforms)
    # is some 200x faster: a large share of a no-op trial's cost otherwise.
    from google_crc32c import value as _crc32c
except ImportError:  # pragma: no cover - depends on the environment
    _crc32c = _crc32c_python


def _masked_crc32c(data: bytes) -> int:
    crc: int = _crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    """Wraps one serialized event as a TFRecord."""
    header = struct.pack("<Q", len(data))
    return (
        header
        + struct.pack("<I", _masked_crc32c(header))
        + data
        + struct.pack("<I", _masked_crc32c(data))
    )


def unframe(blob: bytes) -> Iterator[bytes]:
    """Yields the records of a TFRecord file, stopping at a torn or corrupt one."""
    pos = 0
    while pos + 12 <= len(blob):
        header = blob[pos : pos + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack("<I", blob[pos + 8 : pos + 12])
        end = pos + 12 + length + 4
        if header_crc != _masked_crc32c(header) or end > len(blob):
            return
        data = blob[pos + 12 : pos + 12 + length]
        if struct.unpack("<I", blob[end - 4 : end])[0] != _masked_crc32c(data):
            return
        yield data
        pos = end
