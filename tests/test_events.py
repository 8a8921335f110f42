"""Event records read back by TensorBoard's own loader, no parser of ours."""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import Any

import pytest
from tensorboard.backend.event_processing import event_file_loader
from tensorboard.compat.proto import event_pb2, summary_pb2, types_pb2
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from tensorboard.util import tensor_util

from pytest_hparams import events
from pytest_hparams.metrics import Metric


def write(path: Path, *records: bytes) -> Path:
    path.write_bytes(b"".join(events.frame(r) for r in records))
    return path


def load(path: Path) -> list:  # type: ignore[type-arg]
    return list(event_file_loader.EventFileLoader(str(path)).Load())


def test_framed_events_are_read_by_tensorboards_loader(tmp_path: Path) -> None:
    path = write(
        tmp_path / "events.out.tfevents.1",
        events.event_bytes(1.0),
        events.event_bytes(2.0, 7, events.scalar_summary("accuracy", 0.1 + 0.2)),
    )
    header, scalar = load(path)
    assert header.file_version == "brain.Event:2"
    assert scalar.step == 7
    (value,) = scalar.summary.value
    assert value.metadata.plugin_data.plugin_name == "scalars"
    # float32, the only scalar type TensorBoard's data server reads
    assert value.tensor.dtype == types_pb2.DT_FLOAT
    assert tensor_util.make_ndarray(value.tensor).item() == pytest.approx(0.3)


def test_hparams_summaries_parse_with_tensorboards_metadata_module(tmp_path: Path) -> None:
    start = events.session_start_summary("t.py::test[a:1]", {"a": 1, "b": True, "c": "x"}, 5.0)
    end = events.session_end_summary(events.STATUS_FAILURE, 6.0)
    path = write(
        tmp_path / "events.out.tfevents.2",
        events.event_bytes(1.0, 0, start),
        events.event_bytes(1.0, 0, end),
    )
    first, second = (e.summary.value[0] for e in load(path))
    info = metadata.parse_session_start_info_plugin_data(first.metadata.plugin_data.content)
    assert info.group_name == "t.py::test[a:1]"
    assert info.hparams["a"].number_value == 1
    assert info.hparams["b"].bool_value is True
    assert info.hparams["c"].string_value == "x"
    end_info = metadata.parse_session_end_info_plugin_data(second.metadata.plugin_data.content)
    assert end_info.status == events.STATUS_FAILURE


def test_experiment_round_trips_through_our_reader_and_tensorboards(tmp_path: Path) -> None:
    hparams = [
        {"name": "u", "domain": {"kind": "discrete", "dtype": "number", "values": [16, 32]}},
        {"name": "lr", "domain": {"kind": "interval", "dtype": "number", "min": 0.1, "max": 1.0}},
        {"name": "mixed", "domain": None},
    ]
    summary = events.experiment_summary(hparams, [Metric("loss", group="validation")], 3.0)
    path = write(tmp_path / "events.out.tfevents.3", events.event_bytes(1.0, 0, summary))
    (event,) = load(path)
    exp = metadata.parse_experiment_plugin_data(event.summary.value[0].metadata.plugin_data.content)
    assert [h.name for h in exp.hparam_infos] == ["u", "lr", "mixed"]
    assert exp.metric_infos[0].name.group == "validation"
    parsed = events.parse_experiment(events.unframe(path.read_bytes()))
    assert parsed is not None
    assert parsed[0][0]["domain"]["values"] == [16, 32]
    assert parsed[0][1]["domain"]["max"] == 1.0
    assert parsed[1] == [Metric("loss", group="validation")]


def test_a_torn_record_ends_reading_instead_of_raising() -> None:
    blob = events.frame(b"abc") + events.frame(b"defg")[:-3]
    assert list(events.unframe(blob)) == [b"abc"]
    corrupt = bytearray(events.frame(b"abc"))
    corrupt[13] ^= 0xFF
    assert list(events.unframe(bytes(corrupt))) == []


def test_the_pure_python_crc32c_matches_the_c_one_and_the_standard_check_value() -> None:
    # RFC 3720's check value: CRC-32C of "123456789" is 0xE3069283.
    assert events._crc32c_python(b"123456789") == 0xE3069283
    for size in (0, 1, 7, 8, 9, 64, 511):
        data = bytes(range(256)) * 2
        assert events._crc32c_python(data[:size]) == events._crc32c(data[:size])


# --- our encoding against TensorBoard's generated classes ---------------------
# events.py writes protobuf by hand; these build the same messages with the
# classes TensorBoard reads them with, and the two must parse to equal messages.


def _reference_hparams(tag: str, data: plugin_data_pb2.HParamsPluginData) -> summary_pb2.Summary:
    summary = summary_pb2.Summary()
    value = summary.value.add(tag=tag)
    value.metadata.plugin_data.plugin_name = "hparams"
    value.metadata.plugin_data.content = data.SerializeToString()
    value.tensor.dtype = types_pb2.DT_FLOAT
    value.tensor.tensor_shape.dim.add(size=0)
    return summary


def _set(target: Any, value: object) -> None:
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, (int, float)):
        target.number_value = value
    else:
        target.string_value = value


def _normal(event: event_pb2.Event) -> bytes:
    """An event's bytes with each hparams payload re-serialized the same way."""
    for value in event.summary.value:
        if value.metadata.plugin_data.plugin_name == "hparams":
            content = plugin_data_pb2.HParamsPluginData.FromString(
                value.metadata.plugin_data.content
            )
            value.metadata.plugin_data.content = content.SerializeToString(deterministic=True)
    return event.SerializeToString(deterministic=True)  # type: ignore[no-any-return]


def assert_same(ours: bytes, reference: event_pb2.Event) -> None:
    assert _normal(event_pb2.Event.FromString(ours)) == _normal(reference)


ODD_VALUES: list[object] = [
    True,
    False,
    0,
    -3,
    2**53 + 1,
    0.1,
    -0.0,
    1e-300,
    1e300,
    math.inf,
    -math.inf,
    math.nan,
    "",
    "adam",
    "é✓ unicode",
    "x" * 300,
]


@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
def test_a_session_start_encodes_as_tensorboards_classes_do(value: object) -> None:
    hparams = {"v": value, "sweep": "test_x · tests/test_x.py", "n" * 200: 1}
    group = "0.1, adam · " + "tests/test_x.py::test_x[" + "long-id-" * 30 + "]"
    ours = events.event_bytes(2.5, 0, events.session_start_summary(group, hparams, 1.25))
    info = plugin_data_pb2.SessionStartInfo(group_name=group, start_time_secs=1.25)
    for name, v in hparams.items():
        _set(info.hparams[name], v)
    data = plugin_data_pb2.HParamsPluginData(session_start_info=info)
    reference = event_pb2.Event(
        wall_time=2.5, summary=_reference_hparams(events.SESSION_START_TAG, data)
    )
    assert_same(ours, reference)


@pytest.mark.parametrize(
    "status", [events.STATUS_UNKNOWN, events.STATUS_SUCCESS, events.STATUS_FAILURE]
)
@pytest.mark.parametrize("step", [0, 1, 2**40, -1])
def test_a_session_end_with_its_metrics_encodes_as_tensorboards_classes_do(
    status: int, step: int
) -> None:
    metrics = {"accuracy": 0.1 + 0.2, "loss": math.nan, "big": 1e39, "small": -1e39, "zero": 0.0}
    summary = b"".join(events.scalar_summary(k, v) for k, v in metrics.items())
    summary += events.session_end_summary(status, 9.5)
    ours = events.event_bytes(3.0, step, summary)
    reference = event_pb2.Event(wall_time=3.0, step=step)
    for name, v in metrics.items():
        value = reference.summary.value.add(tag=name)
        value.metadata.plugin_data.plugin_name = "scalars"
        value.metadata.data_class = summary_pb2.DATA_CLASS_SCALAR
        value.tensor.dtype = types_pb2.DT_FLOAT
        value.tensor.tensor_shape.SetInParent()
        value.tensor.float_val.append(v)  # past float32: inf, as in a C cast
    end = plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=9.5)
    ended = _reference_hparams(
        events.SESSION_END_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=end)
    )
    reference.summary.value.extend(ended.value)
    assert_same(ours, reference)


def test_the_file_version_header_encodes_as_tensorboards_classes_do() -> None:
    reference = event_pb2.Event(wall_time=1.5, file_version=events.FILE_VERSION)
    assert_same(events.event_bytes(1.5), reference)


def test_an_experiment_encodes_as_tensorboards_classes_do() -> None:
    hparams = [
        {"name": "u", "domain": {"kind": "discrete", "dtype": "number", "values": [16, 32.5]}},
        {"name": "opt", "domain": {"kind": "discrete", "dtype": "str", "values": ["adam", "é"]}},
        {"name": "flag", "domain": {"kind": "discrete", "dtype": "bool", "values": [False, True]}},
        {"name": "lr", "domain": {"kind": "interval", "dtype": "number", "min": 0.0, "max": 1e-3}},
        {"name": "mixed", "domain": None, "display_name": "Mixed", "description": "d" * 200},
    ]
    metrics = [Metric("loss", group="validation"), Metric("acc", display_name="A", description="x")]
    ours = events.event_bytes(1.0, 0, events.experiment_summary(hparams, metrics, 3.0))
    experiment = api_pb2.Experiment(time_created_secs=3.0)
    for hp in hparams:
        info = experiment.hparam_infos.add(
            name=hp["name"],
            display_name=hp.get("display_name", ""),
            description=hp.get("description", ""),
        )
        domain = hp["domain"]
        if domain is None:
            info.type = api_pb2.DATA_TYPE_STRING
        elif domain["kind"] == "interval":
            info.type = api_pb2.DATA_TYPE_FLOAT64
            info.domain_interval.min_value = domain["min"]
            info.domain_interval.max_value = domain["max"]
        else:
            info.type = {"number": 3, "str": 1, "bool": 2}[domain["dtype"]]
            for v in domain["values"]:
                _set(info.domain_discrete.values.add(), v)
    for m in metrics:
        experiment.metric_infos.add(
            name=api_pb2.MetricName(group=m.group, tag=m.name),
            display_name=m.display_name,
            description=m.description,
        )
    data = plugin_data_pb2.HParamsPluginData(experiment=experiment)
    reference = event_pb2.Event(
        wall_time=1.0, summary=_reference_hparams(events.EXPERIMENT_TAG, data)
    )
    assert_same(ours, reference)


@pytest.mark.parametrize(
    "hparams",
    [{"a": 1}, {"lr": 0.5, "opt": "adam", "deep": False, "n": -3}, {"é" * 70: "x" * 200}],
)
def test_a_trials_start_is_its_header_and_session_start_framed(hparams: dict[str, Any]) -> None:
    group = "1, adam · t.py::test[a:1]" * 6  # long enough for a two-byte length
    expected = events.frame(events.event_bytes(2.5)) + events.frame(
        events.event_bytes(2.5, 0, events.session_start_summary(group, hparams, 2.5))
    )
    assert events.start_records(2.5, group, hparams) == expected


def test_a_scalar_written_as_tensorflows_writer_writes_it_is_a_curve_point() -> None:
    # tf.summary.scalar (Keras' TensorBoard callback) packs the value into
    # tensor_content, where TensorBoard's scalars plugin reads it.
    def point(step: int, value: float) -> bytes:
        tensor = tensor_util.make_tensor_proto(value, dtype=types_pb2.DT_FLOAT)
        tensor.tensor_content = struct.pack("<f", value)
        del tensor.float_val[:]
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="epoch_accuracy")])
        summary.value[0].tensor.CopyFrom(tensor)
        summary.value[0].metadata.plugin_data.plugin_name = "scalars"
        return event_pb2.Event(step=step, summary=summary).SerializeToString()

    curves = events.parse_scalars(iter([point(0, 0.5), point(1, 0.75)]))
    assert curves == {"epoch_accuracy": {0: 0.5, 1: 0.75}}
