"""Random search, command-line overrides and rerunning the best trial."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Dashboard
from tensorboard.plugins.hparams import summary_v2 as hp

from pytest_hparams.errors import HParamsError
from pytest_hparams.sampling import LogUniform, sample_sweep

RANDOM = """
from pytest_hparams import LogUniform, hparam_random

@hparam_random(6, seed=7, lr=LogUniform(1e-4, 1e-1), units=[16, 32, 64], opt="adam",
               metrics=["score"])
def test_search(lr, units, opt):
    return {"score": units * lr}
"""


def collected(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if "::test_search[" in line]


def test_log_uniform_samples_stay_in_bounds_and_spread_evenly_over_decades() -> None:
    sweep = sample_sweep(3000, 1, [], {"lr": LogUniform(1e-4, 1e-1)})
    values = [t["lr"] for t in sweep.fixed]
    assert len(values) == 3000
    assert all(1e-4 <= v <= 1e-1 for v in values)
    # Log-uniform: each of the three decades holds about a third of the draws
    # (a uniform draw would put 90% in the top one).
    decades = [sum(1 for v in values if 10**k <= v < 10 ** (k + 1)) / 3000 for k in (-4, -3, -2)]
    assert all(abs(share - 1 / 3) < 0.04 for share in decades), decades
    logs = sorted(math.log10(v) for v in values)
    assert abs(logs[1500] - (-2.5)) < 0.1  # the median sits mid-way in log space


def test_the_same_seed_gives_the_same_trials_and_another_seed_others() -> None:
    domains = {"lr": hp.RealInterval(0.0, 1.0), "depth": hp.IntInterval(1, 8), "opt": ["a", "b"]}
    first = sample_sweep(5, 3, [], domains).fixed
    assert first == sample_sweep(5, 3, [], domains).fixed
    assert first != sample_sweep(5, 4, [], domains).fixed
    assert all(isinstance(t["depth"], int) and 1 <= t["depth"] <= 8 for t in first)


def test_duplicate_samples_are_not_run_twice() -> None:
    sweep = sample_sweep(10, 0, [], {"a": [1, 2], "b": ["x", "y"]})
    assert len(sweep.fixed) == 4
    assert len({tuple(t.values()) for t in sweep.fixed}) == 4


@pytest.mark.parametrize(
    ("n", "domains", "message"),
    [
        (0, {"a": [1]}, "@hparam_random needs a number of trials >= 1 (got 0)"),
        (3, {}, "@hparam_random needs at least one hparam"),
        (3, {"lr": LogUniform(0.0, 1.0)}, "'lr': LogUniform needs 0 < low < high (got 0.0, 1.0)"),
        (3, {"lr": {1, 2}}, "'lr' must be a list (a choice), a fixed value, LogUniform"),
    ],
)
def test_bad_random_sweeps_are_refused(n: int, domains: dict[str, object], message: str) -> None:
    with pytest.raises(HParamsError) as excinfo:
        sample_sweep(n, 0, [], domains)
    assert message in str(excinfo.value)


def test_a_random_sweep_has_readable_ids_and_the_same_trials_every_run_and_under_xdist(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_search=RANDOM)
    first = collected(pytester.runpytest("--collect-only", "-q"))
    assert len(first) == 6
    assert re.fullmatch(r"test_search.py::test_search\[lr:[0-9.e-]+-units:\d+-opt:adam\]", first[0])
    assert first == collected(pytester.runpytest("--collect-only", "-q"))
    pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider").assert_outcomes(passed=6)
    selected = pytester.runpytest("-k", "units:64")
    assert selected.parseoutcomes()["passed"] == sum("units:64" in line for line in first)


def test_the_dashboard_shows_the_declared_domains(
    pytester: pytest.Pytester, dashboard: Callable[[Path], Dashboard]
) -> None:
    pytester.makepyfile(test_search=RANDOM)
    pytester.runpytest("--hparams-logdir=logs").assert_outcomes(passed=6)
    board = dashboard(pytester.path / "logs")
    infos = {h.name: h for h in board.experiment.hparam_infos}
    assert (infos["lr"].domain_interval.min_value, infos["lr"].domain_interval.max_value) == (
        pytest.approx(1e-4),
        pytest.approx(1e-1),
    )
    assert [v.number_value for v in infos["units"].domain_discrete.values] == [16, 32, 64]
    assert len(board.groups) == 6


def test_grid_and_random_on_one_test_are_refused(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_mixed="""
        from pytest_hparams import LogUniform, hparam_grid, hparam_random

        @hparam_grid(opt=["adam", "sgd"])
        @hparam_random(4, lr=LogUniform(1e-3, 1e-1))
        def test_mixed(opt, lr):
            pass
        """
    )
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(
        [
            "In test_mixed.py::test_mixed: @hparam_grid, @hparam_random or @hparam_search "
            "is applied 2 times; use one (a list in @hparam_random samples a choice)"
        ]
    )


GRID = """
from pytest_hparams import hparam_grid

@hparam_grid(units=[16, 32], lr=[0.01, 0.1], flag=[True], metrics=["score"])
def test_grid(units, lr, flag):
    return {"score": units * lr}
"""


def test_set_replaces_a_swept_hparams_values_parsed_to_its_type(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_grid=GRID)
    result = pytester.runpytest(
        "--collect-only", "-q", "--hparams-set", "units=8,64", "--hparams-set", "flag=false"
    )
    result.stdout.fnmatch_lines(
        [
            "test_grid.py::test_grid[[]units:8-lr:0.01-flag:False[]]",
            "test_grid.py::test_grid[[]units:8-lr:0.1-flag:False[]]",
            "test_grid.py::test_grid[[]units:64-lr:0.01-flag:False[]]",
            "test_grid.py::test_grid[[]units:64-lr:0.1-flag:False[]]",
            "4 tests collected*",
        ]
    )


def test_set_on_a_random_sweep_makes_that_hparam_a_choice(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_search=RANDOM)
    lines = collected(pytester.runpytest("--collect-only", "-q", "--hparams-set", "units=128"))
    assert lines and all("-units:128-" in line for line in lines)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--hparams-set", "units=big"],
            "ERROR: --hparams-set: units='big' is not a number, as 'units' values are",
        ),
        (
            ["--hparams-set", "flag=maybe"],
            "ERROR: --hparams-set: flag='maybe' is not true or false",
        ),
        (
            ["--hparams-set", "depth=3"],
            "ERROR: --hparams-set names 'depth', which no collected sweep"
            " has (hparams: flag, lr, units); fix the name",
        ),
        (
            ["--hparams-set", "units"],
            "*expected NAME=VALUE[[],VALUE...[]], like lr=0.1,0.01; got 'units'",
        ),
    ],
)
def test_bad_overrides_are_usage_errors(
    pytester: pytest.Pytester, args: list[str], message: str
) -> None:
    pytester.makepyfile(test_grid=GRID)
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


@pytest.mark.parametrize("source", ["--hparams-save-baseline", "--hparams-json"])
def test_only_best_reruns_the_winner_recorded_in_a_baseline_or_report(
    pytester: pytest.Pytester, source: str
) -> None:
    pytester.makepyfile(test_grid=GRID)
    pytester.runpytest(f"{source}=record.json").assert_outcomes(passed=4)
    json.loads((pytester.path / "record.json").read_text())
    result = pytester.runpytest("--hparams-only-best=record.json", "-v")
    result.assert_outcomes(passed=1, deselected=3)
    result.stdout.fnmatch_lines(["*test_grid[[]units:32-lr:0.1-flag:True[]] PASSED*"])


def test_only_best_with_a_missing_file_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_grid=GRID)
    result = pytester.runpytest("--hparams-only-best=nope.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --hparams-only-best: */nope.json does not exist; *"])
