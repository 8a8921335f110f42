"""Shared fixtures: pytester, and TensorBoard's own hparams backend as a reader."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# pytester's in-process runs re-import test modules; numpy must be loaded once
# per process before that, and TensorBoard's backend pulls it in.
import numpy  # noqa: F401
import pytest
from tensorboard import context
from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
from tensorboard.plugins import base_plugin
from tensorboard.plugins.hparams import (
    api_pb2,
    backend_context,
    get_experiment,
    list_session_groups,
)

pytest_plugins = ["pytester"]

ALL_STATUSES = [
    api_pb2.STATUS_UNKNOWN,
    api_pb2.STATUS_SUCCESS,
    api_pb2.STATUS_FAILURE,
    api_pb2.STATUS_RUNNING,
]


@dataclass
class Dashboard:
    """What TensorBoard's HParams dashboard would show for a logdir."""

    experiment: Any  # api_pb2.Experiment
    groups: list[Any]  # api_pb2.SessionGroup, one per trial
    multiplexer: Any

    @property
    def hparam_names(self) -> set[str]:
        return {h.name for h in self.experiment.hparam_infos}

    @property
    def metric_names(self) -> set[str]:
        return {m.name.tag for m in self.experiment.metric_infos}

    def group(self, suffix: str) -> Any:
        found = [g for g in self.groups if g.name.endswith(suffix)]
        assert len(found) == 1, [g.name for g in self.groups]
        return found[0]

    @staticmethod
    def hparams(group: Any) -> dict[str, Any]:
        out = {}
        for name, value in group.hparams.items():
            out[name] = getattr(value, value.WhichOneof("kind"))
        return out

    @staticmethod
    def metrics(group: Any) -> dict[str, float]:
        return {m.name.tag: m.value for m in group.metric_values}

    @staticmethod
    def status(group: Any) -> str:
        (session,) = group.sessions
        return str(api_pb2.Status.Name(session.status))


def read_dashboard(logdir: Path) -> Dashboard:
    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, str(logdir))
    tb_context = base_plugin.TBContext(
        logdir=str(logdir), multiplexer=multiplexer, data_provider=provider
    )
    backend = backend_context.Context(tb_context)
    request = context.RequestContext()
    experiment = get_experiment.Handler(request, backend, "", api_pb2.GetExperimentRequest()).run()
    groups = list_session_groups.Handler(
        request,
        backend,
        "",
        api_pb2.ListSessionGroupsRequest(allowed_statuses=ALL_STATUSES, slice_size=100_000),
    ).run()
    return Dashboard(experiment, list(groups.session_groups), multiplexer)


@pytest.fixture
def dashboard() -> Callable[[Path], Dashboard]:
    return read_dashboard
