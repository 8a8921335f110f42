"""TensorBoard records: pure builders of event records and TFRecord framing.

Nothing here touches files, and writing never imports protobuf or
TensorFlow. The few messages a trial writes are encoded below by hand, from
the field numbers of TensorBoard's .proto files: building them with the
generated classes cost some 25 ms of imports a run and ~30 us a trial
(benchmarks/RESULTS.md), and TensorBoard's own `EventFileWriter` reaches for
TensorFlow whenever it is installed. Reading back (`parse_*`) uses
TensorBoard's generated modules; the tests parse every record we write with
them too.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pytest_hparams import lazy
from pytest_hparams.metrics import Metric
from pytest_hparams.sweep import Domain, Value

EXPERIMENT_TAG = "_hparams_/experiment"
SESSION_START_TAG = "_hparams_/session_start_info"
SESSION_END_TAG = "_hparams_/session_end_info"
FILE_VERSION = "brain.Event:2"

# tensorboard.hparams.Status
STATUS_UNKNOWN = 0
STATUS_SUCCESS = 1
STATUS_FAILURE = 2

# tensorboard.hparams.DataType
_DTYPES = {"str": 1, "bool": 2, "number": 3}
_DTYPE_NAMES = {v: k for k, v in _DTYPES.items()}
_DT_FLOAT = 1  # tensorboard.DataType
_DATA_CLASS_SCALAR = 1  # tensorboard.DataClass

# --- protobuf wire format ----------------------------------------------------
# A field is a key (number << 3 | wire type), then a varint, 8 bytes (a
# double), 4 bytes (a float), or a length and that many bytes (strings and
# messages). Default values may be written or left out: a reader sees the same.

_DOUBLE = struct.Struct("<d")
_FLOAT = struct.Struct("<f")


_BYTES = [bytes((i,)) for i in range(0x80)]  # the one-byte varints


def _varint(n: int) -> bytes:
    if 0 <= n < 0x80:
        return _BYTES[n]
    if 0 < n < 0x4000:  # two bytes: most records' lengths
        return bytes((n & 0x7F | 0x80, n >> 7))
    n &= 0xFFFFFFFFFFFFFFFF  # a negative int64 takes ten bytes, two's complement
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _wrap(payload: bytes, *keys: bytes) -> bytes:
    """`payload` nested in messages, innermost first: each of `keys` is a
    field's one-byte key, then the payload's length."""
    for key in keys:
        n = len(payload)
        # Most lengths here take one byte: that case skips a call.
        payload = key + (_BYTES[n] if n < 0x80 else _varint(n)) + payload
    return payload


# Every field number here is below 16, so a field's key is one byte.
def _message(field: int, payload: bytes) -> bytes:
    return _wrap(payload, _BYTES[field << 3 | 2])


def _string(field: int, text: str) -> bytes:
    return _message(field, text.encode("utf-8"))


def _double(field: int, x: float) -> bytes:
    return _BYTES[field << 3 | 1] + _DOUBLE.pack(x)


def _int(field: int, n: int) -> bytes:
    return _BYTES[field << 3] + _varint(n)


def _float32(x: float) -> bytes:
    try:
        return _FLOAT.pack(x)
    except OverflowError:  # past float32: inf, as a C cast (and protobuf) makes it
        return _FLOAT.pack(float("inf") if x > 0 else float("-inf"))


def _value(v: Value) -> bytes:
    """A google.protobuf.Value: number_value 2, string_value 3, bool_value 4."""
    if isinstance(v, bool):
        return _int(4, int(v))
    if isinstance(v, (int, float)):
        return _double(2, float(v))
    return _string(3, v)


# Fields that never change, encoded once. The hparams plugin stores its data
# in summary metadata; the tensor only has to be valid, and an empty float
# vector is the smallest valid one: TensorProto{dtype: DT_FLOAT,
# tensor_shape{dim{size: 0}}}, as Summary.Value's tensor (field 8).
_NULL_TENSOR = _message(8, _int(1, _DT_FLOAT) + _message(2, _message(2, b"")))
# Summary.Value's metadata (field 9): SummaryMetadata{plugin_data{plugin_name:
# "scalars"}, data_class: SCALAR}.
_SCALAR_METADATA = _message(9, _message(1, _string(1, "scalars")) + _int(4, _DATA_CLASS_SCALAR))
# A scalar's TensorProto up to its value: dtype 1, tensor_shape 2 (empty: rank
# 0), then float_val 5, packed, four bytes long.
_SCALAR_TENSOR_HEAD = _int(1, _DT_FLOAT) + _message(2, b"") + _BYTES[5 << 3 | 2] + _BYTES[4]
# Summary.Value's tensor (field 8) up to the scalar's four bytes: its length never changes.
_SCALAR_HEAD = _BYTES[8 << 3 | 2] + _BYTES[len(_SCALAR_TENSOR_HEAD) + 4] + _SCALAR_TENSOR_HEAD
_HPARAMS_PLUGIN = _string(1, "hparams")  # PluginData.plugin_name
_FILE_VERSION = _string(3, FILE_VERSION)  # Event.file_version


def _nest(payload: bytes, levels: tuple[tuple[bytes, bytes], ...]) -> bytes:
    """`payload` as the last field of nested messages, innermost first: each
    level is a field's one-byte key and the fields that come before it."""
    for key, before in levels:
        payload = before + payload
        n = len(payload)
        # `_wrap`'s step, written out: this runs at every level of every
        # trial's records (benchmarks/RESULTS.md has the cost of the call).
        payload = key + (_BYTES[n] if n < 0x80 else _varint(n)) + payload
    return payload


def _hparams_levels(tag: str, data_key: bytes) -> tuple[tuple[bytes, bytes], ...]:
    """From an `HParamsPluginData` field out to the `Summary.value` holding it."""
    return (
        (data_key, b""),  # experiment 2, session_start_info 3 or session_end_info 4
        (b"\x12", b""),  # PluginData.content (HParamsPluginData's version 0 left out)
        (b"\x0a", _HPARAMS_PLUGIN),  # SummaryMetadata.plugin_data, after its name
        (b"\x4a", b""),  # Summary.Value.metadata
        (b"\x0a", _string(1, tag) + _NULL_TENSOR),  # Summary.value, after tag 1 and tensor 8
    )


_EXPERIMENT_LEVELS = _hparams_levels(EXPERIMENT_TAG, b"\x12")
_START_LEVELS = _hparams_levels(SESSION_START_TAG, b"\x1a")
_END_LEVELS = _hparams_levels(SESSION_END_TAG, b"\x22")
_START_EVENT = (*_START_LEVELS, (b"\x2a", b""))  # and out to Event.summary 5


def experiment_summary(
    hparams: Sequence[Mapping[str, Any]],
    metrics: Sequence[Metric],
    time_created_secs: float,
) -> bytes:
    """Builds the experiment config (`_hparams_/experiment`) for the root run.

    Args:
      hparams: Dicts as made by `HParamDef.to_dict()`; a None domain leaves
        the hparam untyped, which the dashboard shows with a text filter.
      metrics: The metrics, in column order.
      time_created_secs: Seconds since the epoch.
    """
    parts = [_message(4, _hparam_info(hp)) for hp in hparams]  # Experiment.hparam_infos
    for metric in metrics:
        # MetricInfo: name 1 (MetricName: group 1, tag 2), display_name 3, description 4.
        name = _string(1, metric.group) + _string(2, metric.name)
        info = _message(1, name) + _string(3, metric.display_name) + _string(4, metric.description)
        parts.append(_message(5, info))  # Experiment.metric_infos
    experiment = b"".join(parts) + _double(3, time_created_secs)
    return _nest(experiment, _EXPERIMENT_LEVELS)


def _hparam_info(hp: Mapping[str, Any]) -> bytes:
    # HParamInfo: name 1, display_name 2, description 3, type 4,
    # domain_discrete 5 (a ListValue), domain_interval 6.
    info = (
        _string(1, hp["name"])
        + _string(2, hp.get("display_name", ""))
        + _string(3, hp.get("description", ""))
    )
    if hp.get("domain") is None:
        return info + _int(4, _DTYPES["str"])
    domain = Domain.from_dict(hp["domain"])
    return info + _int(4, _DTYPES[domain.dtype]) + _domain_info(domain)


def _domain_info(domain: Domain) -> bytes:
    if domain.kind == "interval":
        low, high = domain.min_value, domain.max_value
        assert low is not None and high is not None  # set on every interval
        return _message(6, _double(1, low) + _double(2, high))
    return _message(5, b"".join(_message(1, _value(v)) for v in domain.values))


# Entries of string values, which recur across a sweep's trials (its name is
# in every one) and equal no value of another type (1 == 1.0 == True).
_STRING_ENTRIES: dict[tuple[str, str], bytes] = {}


def _entry(name: str, value: Value) -> bytes:
    """One entry of SessionStartInfo's hparams map (key 1, value 2), as field 1.

    The value's field is written out by hand: this runs for every hparam of
    every trial.
    """
    if isinstance(value, str):
        return _string_entry(name, value)
    if value is True or value is False:
        field = b"\x12\x02\x20" + _BYTES[value]  # value 2 {bool_value 4}
    else:
        field = b"\x12\x09\x11" + _DOUBLE.pack(value)  # value 2 {number_value 2}
    return _keyed(name, field)


def _string_entry(name: str, value: str) -> bytes:
    """A string hparam's entry, made once and kept (up to 4096 of them)."""
    cached = _STRING_ENTRIES.get((name, value))
    if cached is not None:
        return cached
    entry = _keyed(name, _wrap(value.encode("utf-8"), b"\x1a", b"\x12"))  # value 2 {string_value 3}
    if len(_STRING_ENTRIES) < 4096:
        _STRING_ENTRIES[name, value] = entry
    return entry


def _keyed(name: str, field: bytes) -> bytes:
    """An entry of the hparams map: key 1 (`name`), then the value's `field`, as field 1."""
    return _wrap(_wrap(name.encode("utf-8"), b"\x0a") + field, b"\x0a")


def _session_start_info(group_name: str, hparams: Mapping[str, Value], time: bytes) -> bytes:
    # SessionStartInfo: hparams 1 (a map: entries of key 1, value 2),
    # group_name 4, start_time_secs 5 (a packed double).
    info = b"".join([_entry(name, value) for name, value in hparams.items()])
    return info + _wrap(group_name.encode("utf-8"), b"\x22") + b"\x29" + time


def session_start_summary(
    group_name: str, hparams: Mapping[str, Value], start_time_secs: float
) -> bytes:
    """Builds a trial's `session_start_info`, with its own readable group name."""
    info = _session_start_info(group_name, hparams, _DOUBLE.pack(start_time_secs))
    return _nest(info, _START_LEVELS)


def session_end_summary(status: int, end_time_secs: float) -> bytes:
    """Builds a trial's `session_end_info` with a `tensorboard.hparams.Status`."""
    # SessionEndInfo: status 1, end_time_secs 2.
    info = b"\x08" + _BYTES[status] + b"\x11" + _DOUBLE.pack(end_time_secs)
    return _nest(info, _END_LEVELS)


def scalar_summary(tag: str, value: float) -> bytes:
    """A scalar as `tf.summary.scalar` writes one: a float32 rank-0 tensor.

    TensorBoard's data server reads scalars only as float32 (a float64
    tensor is silently dropped), so values are stored rounded to float32.
    Summaries concatenate: one event can carry several scalars.
    """
    try:
        packed = _FLOAT.pack(value)
    except OverflowError:
        packed = _float32(value)
    fields = _wrap(tag.encode("utf-8"), b"\x0a") + _SCALAR_HEAD + packed + _SCALAR_METADATA
    return _wrap(fields, b"\x0a")


def event_bytes(wall_time: float, step: int = 0, summary: bytes | None = None) -> bytes:
    """A serialized `Event` (wall_time 1, step 2, file_version 3, summary 5):
    the file-version header when `summary` is None."""
    head = b"\x09" + _DOUBLE.pack(wall_time)
    if step:
        head += b"\x10" + _varint(step)
    if summary is None:
        return head + _FILE_VERSION
    return head + _wrap(summary, b"\x2a")


def start_records(wall_time: float, group_name: str, hparams: Mapping[str, Value]) -> bytes:
    """The start of a trial's own event file, framed: the file-version header,
    then the session start, both at `wall_time`.

    The same bytes as `frame(event_bytes(t), event_bytes(t, 0,
    session_start_summary(group, hparams, t)))`, made with fewer calls: a
    trial's start is on the path of every trial (benchmarks/RESULTS.md).
    """
    time_ = _DOUBLE.pack(wall_time)
    info = _session_start_info(group_name, hparams, time_)
    return frame(b"\x09" + time_ + _FILE_VERSION, b"\x09" + time_ + _nest(info, _START_EVENT))


def parse_experiment(records: Iterator[bytes]) -> tuple[list[dict[str, Any]], list[Metric]] | None:
    """Finds the experiment config among serialized events (our own root file).

    Returns:
      (hparams as `HParamDef.to_dict()` dicts, metrics), or None if absent.
    """
    pb = lazy.protos()
    for record in records:
        event = pb.event_pb2.Event.FromString(record)
        for value in event.summary.value:
            if value.tag != EXPERIMENT_TAG:
                continue
            data = pb.plugin_data_pb2.HParamsPluginData.FromString(
                value.metadata.plugin_data.content
            )
            return _experiment_to_plain(data.experiment)
    return None


def parse_session(records: Iterator[bytes]) -> tuple[dict[str, Value], int, dict[str, float]]:
    """Reads a trial's own run back: its hparams, its end status, its final metrics.

    The final metrics are the scalars written in the same event as the
    session end. A run with no session end has status STATUS_UNKNOWN.
    """
    pb = lazy.protos()
    hparams: dict[str, Value] = {}
    status = STATUS_UNKNOWN
    metrics: dict[str, float] = {}
    for record in records:
        event = pb.event_pb2.Event.FromString(record)
        for tag, data in _hparams_plugin_data(pb, event):
            if tag == SESSION_START_TAG:
                hparams = {
                    k: _from_proto_value(v) for k, v in data.session_start_info.hparams.items()
                }
            elif tag == SESSION_END_TAG:
                status = data.session_end_info.status
        if _ends_session(event):
            metrics = _final_metrics(event)
    return hparams, status, metrics


def _ends_session(event: Any) -> bool:
    """Whether an event holds the session's end, and with it the final metrics."""
    return any(v.tag == SESSION_END_TAG for v in event.summary.value)


def _hparams_plugin_data(pb: Any, event: Any) -> Iterator[tuple[str, Any]]:
    """The tag and `HParamsPluginData` of each of an event's hparams records."""
    for value in event.summary.value:
        if value.metadata.plugin_data.plugin_name == "hparams":
            content = value.metadata.plugin_data.content
            yield value.tag, pb.plugin_data_pb2.HParamsPluginData.FromString(content)


def _final_metrics(event: Any) -> dict[str, float]:
    """The metrics written in the event that ends the session."""
    return {
        v.tag: float(v.tensor.float_val[0])
        for v in event.summary.value
        if v.tag != SESSION_END_TAG and v.tensor.float_val
    }


def parse_scalars(records: Iterator[bytes]) -> dict[str, dict[int, float]]:
    """Every scalar curve in a run's records, by tag then step (TensorBoard's
    own scalars and the hparams plugin's records are told apart by metadata;
    the metrics written with the session's end are not curves' points)."""
    pb = lazy.protos()
    curves: dict[str, dict[int, float]] = {}
    for record in records:
        event = pb.event_pb2.Event.FromString(record)
        if _ends_session(event):
            continue  # the returned metrics, at the last step: no point of a curve
        for value in event.summary.value:
            number = _scalar(pb, value)
            if number is not None:
                curves.setdefault(value.tag, {})[int(event.step)] = number
    return curves


def _scalar(pb: Any, value: Any) -> float | None:
    """A summary value's number, or None for the hparams plugin's records
    and for anything not a single number."""
    if value.metadata.plugin_data.plugin_name == "hparams":
        return None
    if value.HasField("simple_value"):
        return float(value.simple_value)
    if not (value.HasField("tensor") and value.tensor.dtype):
        return None
    return _tensor_scalar(pb, value.tensor)


def _tensor_scalar(pb: Any, tensor: Any) -> float | None:
    """A tensor's number, or None unless it holds a single int or float."""
    # TensorFlow's writer (Keras' callback) packs a scalar into
    # tensor_content; TensorBoard's own decoder reads every form.
    array = pb.tensor_util.make_ndarray(tensor)
    if array.size != 1 or array.dtype.kind not in "fiu":
        return None
    return float(array.reshape(()))


def _experiment_to_plain(exp: Any) -> tuple[list[dict[str, Any]], list[Metric]]:
    hparams: list[dict[str, Any]] = []
    for info in exp.hparam_infos:
        hparams.append(
            {
                "name": info.name,
                "domain": _domain_to_plain(info),
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


def _domain_to_plain(info: Any) -> dict[str, Any] | None:
    """An HParamInfo's domain as `Domain.to_dict()` gives it; None for an
    untyped hparam or one without a domain."""
    dtype = _DTYPE_NAMES.get(info.type)
    if dtype is None:
        return None
    if info.HasField("domain_interval"):
        return {
            "kind": "interval",
            "dtype": dtype,
            "min": info.domain_interval.min_value,
            "max": info.domain_interval.max_value,
        }
    if info.HasField("domain_discrete"):
        values = [_from_proto_value(v) for v in info.domain_discrete.values]
        return {"kind": "discrete", "dtype": dtype, "values": values}
    return None


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
    # Slicing-by-8: eight tables let the loop take eight bytes a step
    # rather than one, the fastest pure-Python form.
    first = _crc32c_byte_table()
    tables = [first]
    for _ in range(7):
        prev = tables[-1]
        tables.append([first[c & 0xFF] ^ (c >> 8) for c in prev])
    return tables


def _crc32c_byte_table() -> list[int]:
    """The CRC-32C of each byte value: the first of the slicing tables."""
    first = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        first.append(crc)
    return first


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
    # The C implementation (a default dependency, with wheels for common
    # platforms): in pure Python the CRC is a large share of a short trial's cost.
    from google_crc32c import value as _crc32c
except ImportError:  # pragma: no cover - depends on the environment
    _crc32c = _crc32c_python


def _masked_crc32c(data: bytes) -> int:
    crc: int = _crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")


_HEADERS: dict[int, bytes] = {}  # a record's length and its masked CRC, by length


def frame(*records: bytes) -> bytes:
    """Wraps serialized events as TFRecords, one after another."""
    parts: list[bytes] = []
    for data in records:
        n = len(data)
        header = _HEADERS.get(n)
        if header is None:  # a sweep's records have a few lengths: each is framed once
            length = _U64.pack(n)
            header = length + _U32.pack(_masked_crc32c(length))
            if len(_HEADERS) < 4096:
                _HEADERS[n] = header
        d = _crc32c(data)  # _masked_crc32c inlined: this runs for every record of every trial
        parts += (header, data, _U32.pack((((d >> 15) | (d << 17)) + 0xA282EAD8) & 0xFFFFFFFF))
    return b"".join(parts)


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
