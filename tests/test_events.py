"""Event records read back by TensorBoard's own loader, no parser of ours."""

from __future__ import annotations

from pathlib import Path

import pytest
from tensorboard.backend.event_processing import event_file_loader
from tensorboard.compat.proto import types_pb2
from tensorboard.plugins.hparams import metadata
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
