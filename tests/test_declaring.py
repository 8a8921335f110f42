"""The search space on its own: validation, expansion, ids, seeds, domains."""

from __future__ import annotations

import fnmatch

import numpy
import numpy as np
import pytest
from tensorboard.plugins.hparams import summary_v2 as hp

from pytest_hparams.errors import HParamsError
from pytest_hparams.metrics import Metric, Tolerance, parse_tolerance
from pytest_hparams.sweep import (
    Domain,
    build_sweep,
    format_value,
    merge_domains,
    trial_id,
    trial_seed,
)


def test_grid_expands_in_declaration_order_last_varying_fastest() -> None:
    sweep = build_sweep([], {"units": [16, 32], "opt": ["adam", "sgd"]})
    assert list(sweep.combinations()) == [
        {"units": 16, "opt": "adam"},
        {"units": 16, "opt": "sgd"},
        {"units": 32, "opt": "adam"},
        {"units": 32, "opt": "sgd"},
    ]
    assert sweep.size == 4


def test_ranges_tuples_and_numpy_scalars_become_plain_values() -> None:
    sweep = build_sweep([], {"a": range(2), "b": (True, False), "c": list(np.array([0.5, 1.5]))})
    values = [h.values for h in sweep.hparams]
    assert values == [(0, 1), (True, False), (0.5, 1.5)]
    assert all(type(v) in (int, bool, float) for vs in values for v in vs)


def test_tensorboard_discrete_and_int_interval_give_the_values() -> None:
    units = hp.HParam("num_units", hp.Discrete([32, 16]), display_name="Units")
    sweep = build_sweep([units], {"depth": hp.IntInterval(1, 3)})
    assert sweep.hparams[0].values == (16, 32)  # Discrete sorts its values
    assert sweep.hparams[0].display_name == "Units"
    assert sweep.hparams[1].values == (1, 2, 3)


def test_keyword_gives_points_and_hparam_gives_interval_domain() -> None:
    lr = hp.HParam("learning_rate", hp.RealInterval(0.001, 0.1), description="step size")
    sweep = build_sweep([lr], {"learning_rate": [0.01, 0.1]})
    (h,) = sweep.hparams
    assert h.values == (0.01, 0.1)
    assert h.domain == Domain("interval", "number", min_value=0.001, max_value=0.1)
    assert h.description == "step size"


@pytest.mark.parametrize(
    ("positional", "values", "message"),
    [
        ([], {}, "needs at least one hparam"),
        ([], {"lr": []}, "'lr' has no values"),
        ([], {"lr": [0.01, 0.02, 0.01]}, "'lr' lists 0.01 more than once"),
        ([], {"x": [[1], [2]]}, "'x' values must be bool, int, float or str (got list [1])"),
        ([], {"x": [{"a": 1}]}, "(got dict {'a': 1})"),
        ([], {"x": [None]}, "(got NoneType None)"),
        ([], {"opt": ["adam", 3]}, "'opt' values must all be one type (got 'adam' and 3)"),
        ([], {"flag": [True, 1]}, "must all be one type"),
        ([], {"lr": 0.1}, "for a single value write lr=[0.1]"),
        ([], {"lr": {0.1, 0.2}}, "must be a list, tuple, range or TensorBoard domain (got set"),
        (
            [],
            {"lr": {0.1, 0.2}},
            "a set has no order, so ids would differ between runs: write lr=sorted(...)",
        ),
        (
            [],
            {"lr": numpy.array([[0.1], [0.2]])},
            "(got ndarray array([[0.1], [0.2]])); write lr=values.tolist()",
        ),
        (
            [],
            {"lr": [numpy.array([0.1, 0.2])]},
            "'lr' values must be bool, int, float or str (got ndarray array([0.1, 0.2])); "
            "write lr=values.tolist()",
        ),
        ([], {"x": [float("nan")]}, "'x' value nan is not a finite number"),
        ([], {"hparams": [1]}, "'hparams' cannot be an hparam name"),
        ([], {"trial": [1]}, "'trial' cannot be an hparam name"),
        (["lr"], {}, "positional arguments must be TensorBoard HParam objects (got 'lr')"),
        (
            [hp.HParam("lr", hp.RealInterval(0.0, 1.0))],
            {},
            "'lr' is a RealInterval, which has no grid points; list them",
        ),
        (
            [hp.HParam("lr")],
            {},
            "HParam 'lr' has no domain to take values from; give them as lr=[...]",
        ),
        (
            [hp.HParam("u", hp.Discrete([1, 2])), hp.HParam("u", hp.Discrete([3]))],
            {},
            "hparam 'u' is declared twice",
        ),
        (
            [hp.HParam("u", hp.Discrete([16, 32]))],
            {"u": [64]},
            "'u' value 64 lies outside its HParam domain {16, 32}",
        ),
    ],
)
def test_bad_grids_are_refused_with_a_message_that_says_what_to_fix(
    positional: list[object], values: dict[str, object], message: str
) -> None:
    with pytest.raises(HParamsError) as excinfo:
        build_sweep(positional, values)
    assert message in str(excinfo.value)
    assert "\n" not in str(excinfo.value)


def test_ints_and_floats_mix_as_numbers() -> None:
    (h,) = build_sweep([], {"x": [0, 0.5, 1]}).hparams
    assert h.domain.dtype == "number"


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        ("accuracy", "metrics must be a list"),
        (["accuracy", "accuracy"], "metric 'accuracy' is declared twice"),
        ([3], "metrics entries must be names or Metric objects (got int 3)"),
    ],
)
def test_bad_metrics_are_refused(metrics: object, message: str) -> None:
    with pytest.raises(HParamsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_sweep([], {"x": [1]}, metrics)


def test_metrics_accept_names_our_metric_and_tensorboard_metric() -> None:
    sweep = build_sweep(
        [], {"x": [1]}, ["accuracy", Metric("loss"), hp.Metric("val_acc", group="validation")]
    )
    assert [(m.name, m.goal, m.group) for m in sweep.metrics] == [
        ("accuracy", "max", ""),
        ("loss", "min", ""),
        ("val_acc", "max", "validation"),
    ]


@pytest.mark.parametrize(
    ("metric", "message"),
    [
        (
            Metric("accuracy", goal="up"),
            "Metric 'accuracy': goal must be 'max', 'min', 'maximize' or 'minimize' (got 'up')",
        ),
        (Metric("acc", min=0.9, max=0.5), "Metric 'acc': min 0.9 is greater than max 0.5"),
        (Metric("acc", min="high"), "Metric 'acc': min must be a number (got 'high')"),
        (Metric("acc", tolerance=-1), "tolerance must be a number >= 0 or a percentage like 5%"),
        (Metric("acc", tolerance="lots"), "(got 'lots')"),
        (Metric(""), "Metric name must be a non-blank string: it titles a table column"),
        (Metric(" "), "Metric name must be a non-blank string: it titles a table column"),
    ],
)
def test_bad_metric_declarations_are_refused_when_the_sweep_is_built(
    metric: Metric, message: str
) -> None:
    with pytest.raises(HParamsError) as excinfo:
        build_sweep([], {"x": [1]}, [metric])
    assert message in str(excinfo.value)


@pytest.mark.parametrize(
    ("text", "tolerance", "amount"),
    [("0.02", Tolerance(0.02), 0.02), ("5%", Tolerance(0.05, True), 0.1), (0, Tolerance(0.0), 0.0)],
)
def test_tolerances_are_absolute_or_relative_to_the_baseline(
    text: object, tolerance: Tolerance, amount: float
) -> None:
    assert parse_tolerance(text) == tolerance
    assert parse_tolerance(text).amount(-2.0) == pytest.approx(amount)


@pytest.mark.parametrize("text", ["-0.1", "%", "abc", "nan", "-5%", True])
def test_malformed_tolerances_are_refused(text: object) -> None:
    with pytest.raises(ValueError, match="a tolerance must be a number >= 0"):
        parse_tolerance(text)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.1, "0.1"),
        (1e-05, "1e-05"),
        (0.30000000000000004, "0.30000000000000004"),
        (16, "16"),
        (True, "True"),
        ("adam", "adam"),
    ],
)
def test_values_format_in_their_shortest_form(value: object, text: str) -> None:
    assert format_value(value) == text  # type: ignore[arg-type]


def test_trial_id_joins_name_value_pairs_with_dashes() -> None:
    assert trial_id({"num_units": 16, "lr": 0.01, "opt": "adam"}) == "num_units:16-lr:0.01-opt:adam"


def test_trial_seed_is_stable_and_differs_between_trials() -> None:
    assert trial_seed("t.py::test[a:1]") == trial_seed("t.py::test[a:1]")
    assert trial_seed("t.py::test[a:1]") != trial_seed("t.py::test[a:2]")
    # Pinned, so a change of derivation (which would change every user's
    # seeds) cannot slip in unnoticed.
    assert trial_seed("t.py::test[a:1]") == 1396887882
    assert 0 <= trial_seed("x") < 2**31


@pytest.mark.parametrize(
    ("a", "b", "merged"),
    [
        (
            Domain("discrete", "str", ("a",)),
            Domain("discrete", "str", ("b",)),
            Domain("discrete", "str", ("a", "b")),
        ),
        (
            Domain("discrete", "number", (1, 5)),
            Domain("interval", "number", min_value=2.0, max_value=9.0),
            Domain("interval", "number", min_value=1.0, max_value=9.0),
        ),
        (Domain("discrete", "str", ("a",)), Domain("discrete", "number", (1,)), None),
        (
            Domain("discrete", "bool", (True,)),
            Domain("interval", "number", min_value=0.0, max_value=1.0),
            None,
        ),
    ],
)
def test_domains_of_two_sweeps_merge_into_one_that_holds_both(
    a: Domain, b: Domain, merged: Domain | None
) -> None:
    assert merge_domains(a, b) == merged


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            10**400,
            "'v' value is an int of 401 digits, beyond float64 *; give a smaller value or a str",
        ),
        ("bad\ud800", "'v' value 'bad\\ud800' is not valid text (it holds a lone surrogate); *"),
    ],
    ids=["huge-int", "lone-surrogate"],
)
def test_a_value_tensorboard_cannot_store_is_refused_at_declaration(
    value: object, message: str
) -> None:
    with pytest.raises(HParamsError) as info:
        build_sweep((), {"v": [value, 1 if isinstance(value, int) else "ok"]})
    assert fnmatch.fnmatch(str(info.value), message), str(info.value)


@pytest.mark.parametrize(
    ("declaration", "message"),
    [
        (
            "@hparam_random(4, lr=RealInterval(0.0, float('inf')))",
            "'lr' is a RealInterval with bounds 0.0 and inf; give finite bounds, "
            "such as RealInterval(0.0, 1.0)",
        ),
        (
            "@hparam_random(4, lr=RealInterval(float('nan'), 1.0))",
            "'lr' is a RealInterval with bounds nan and 1.0; give finite bounds, "
            "such as RealInterval(0.0, 1.0)",
        ),
        (
            "@hparam_random(4, lr=LogUniform(1e-3, float('inf')))",
            "'lr': LogUniform needs finite bounds (got 0.001, inf); "
            "give a finite high, such as LogUniform(1e-4, 0.1)",
        ),
        (
            "@hparam_random(4, HParam('lr', RealInterval(0.0, float('inf'))))",
            "'lr' is a RealInterval with bounds 0.0 and inf; give finite bounds, "
            "such as RealInterval(0.0, 1.0)",
        ),
        (
            "@hparam_grid(HParam('lr', RealInterval(0.0, float('inf'))), lr=[0.1])",
            "'lr' is a RealInterval with bounds 0.0 and inf; give finite bounds, "
            "such as RealInterval(0.0, 1.0)",
        ),
    ],
)
def test_a_domain_with_a_bound_that_is_not_finite_is_a_collection_error(
    pytester: pytest.Pytester, declaration: str, message: str
) -> None:
    pytester.makepyfile(
        test_bounds=f"""
        from pytest_hparams import HParam, LogUniform, RealInterval, hparam_grid, hparam_random

        {declaration}
        def test_train(lr):
            return {{"score": lr}}
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"In test_bounds.py::test_train: {message}"])
    result.stdout.no_fnmatch_line("*lr:inf*")


@pytest.mark.parametrize("name", ["repeat", "case", "duration", "outcome", "baseline", "hparams"])
def test_an_hparam_named_like_an_id_part_or_a_column_is_a_collection_error(
    pytester: pytest.Pytester, name: str
) -> None:
    pytester.makepyfile(
        test_names=f"""
        from pytest_hparams import hparam_grid

        @hparam_grid({name}=[1, 2], repeats=2)
        def test_train(hparams):
            return {{"score": 1}}
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [f"In test_names.py::test_train: '{name}' cannot be an hparam name: *; rename it"]
    )


@pytest.mark.parametrize("declaration", ['metrics=[""]', 'metrics=[Metric(" ")]'])
def test_a_blank_metric_name_is_a_collection_error(
    pytester: pytest.Pytester, declaration: str
) -> None:
    pytester.makepyfile(
        test_blank=f"""
        from pytest_hparams import Metric, hparam_grid

        @hparam_grid(a=[1], {declaration})
        def test_train(a):
            return 1.0
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "In test_blank.py::test_train: Metric name must be a non-blank string: it titles "
            "a table column and names a TensorBoard tag (got *)"
        ]
    )
