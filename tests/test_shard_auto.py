"""`--hparams-shard auto` and `auto/N`: the shard from the CI's environment."""

from __future__ import annotations

import argparse
import re

import pytest

from pytest_hparams.ci import VARIABLES, shard_from_env
from pytest_hparams.options import shard_spec

# Six trials: three shards of two.
SWEEP = """
from pytest_hparams import hparam_grid

@hparam_grid(a=[1, 2, 3], b=["x", "y"], metrics=["score"])
def test_sweep(a, b):
    return {"score": a}

def test_plain():
    pass
"""


@pytest.fixture(autouse=True)
def no_ci_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    # This suite may itself run in a CI job that sets some of them.
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2/4", (2, 4)), ("1/1", (1, 1)), ("auto", (None, None)), ("auto/3", (None, 3))],
)
def test_shard_spec_accepts_k_of_n_auto_and_auto_of_n(
    text: str, expected: tuple[int | None, int | None]
) -> None:
    assert shard_spec(text) == expected


@pytest.mark.parametrize(
    "text", ["", "x", "0/4", "5/4", "2", "2/", "auto/", "auto/0", "auto/x", "auto/2/3", "Auto"]
)
def test_shard_spec_rejects_invalid_values(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"K/N .*, auto, or auto/N; got"):
        shard_spec(text)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "3"}, (1, 3)),  # GitLab: 1-based
        ({"CI_NODE_INDEX": "3", "CI_NODE_TOTAL": "3"}, (3, 3)),
        ({"CI_NODE_TOTAL": "1"}, (1, 1)),  # GitLab's job without `parallel:`
        ({"CIRCLE_NODE_INDEX": "0", "CIRCLE_NODE_TOTAL": "3"}, (1, 3)),  # CircleCI: 0-based
        ({"CIRCLE_NODE_INDEX": "2", "CIRCLE_NODE_TOTAL": "3"}, (3, 3)),
        ({"CIRCLE_NODE_INDEX": "0", "CIRCLE_NODE_TOTAL": "1"}, (1, 1)),
        ({"BUILDKITE_PARALLEL_JOB": "0", "BUILDKITE_PARALLEL_JOB_COUNT": "4"}, (1, 4)),
        ({"BUILDKITE_PARALLEL_JOB": " 3 ", "BUILDKITE_PARALLEL_JOB_COUNT": "4"}, (4, 4)),
        (  # two providers that agree
            {"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "3"}
            | {"CIRCLE_NODE_INDEX": "1", "CIRCLE_NODE_TOTAL": "3"},
            (2, 3),
        ),
        ({"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "3", "JOB_COMPLETION_INDEX": "0"}, (2, 3)),
    ],
)
def test_auto_reads_each_providers_index_in_its_own_base(
    environ: dict[str, str], expected: tuple[int, int]
) -> None:
    assert shard_from_env(None, environ) == expected


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"JOB_COMPLETION_INDEX": "0"}, (1, 4)),  # Kubernetes: 0-based
        ({"JOB_COMPLETION_INDEX": "3"}, (4, 4)),
        ({"HPARAMS_SHARD_INDEX": "1"}, (1, 4)),  # ours: 1-based, the K of K/N
        ({"HPARAMS_SHARD_INDEX": "4"}, (4, 4)),
        ({"HPARAMS_SHARD_INDEX": "2", "JOB_COMPLETION_INDEX": "1"}, (2, 4)),
        ({"HPARAMS_SHARD_INDEX": "2", "CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "9"}, (2, 4)),
    ],
)
def test_auto_of_n_reads_the_index_alone(
    environ: dict[str, str], expected: tuple[int, int]
) -> None:
    assert shard_from_env(4, environ) == expected


@pytest.mark.parametrize(
    ("total", "environ", "message"),
    [
        (
            None,
            {},
            "no CI shard variables are set (looked for CI_NODE_INDEX/CI_NODE_TOTAL "
            "(GitLab, 1-based), CIRCLE_NODE_INDEX/CIRCLE_NODE_TOTAL (CircleCI, 0-based), "
            "BUILDKITE_PARALLEL_JOB/BUILDKITE_PARALLEL_JOB_COUNT (Buildkite, 0-based)); run in "
            "a parallel CI job, use auto/N with JOB_COMPLETION_INDEX or HPARAMS_SHARD_INDEX, "
            "or give K/N",
        ),
        (None, {"JOB_COMPLETION_INDEX": "1"}, "no CI shard variables are set"),
        (
            4,
            {},
            "neither JOB_COMPLETION_INDEX (a Kubernetes Indexed Job, 0-based) nor "
            "HPARAMS_SHARD_INDEX (1-based, 1 to 4; set it from your CI matrix) is set; "
            "set one, or give K/N",
        ),
        (4, {"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "4"}, "neither JOB_COMPLETION_INDEX"),
        (
            None,
            {"CIRCLE_NODE_INDEX": "x", "CIRCLE_NODE_TOTAL": "3"},
            "CIRCLE_NODE_INDEX='x' is not a whole number >= 0: CircleCI's CIRCLE_NODE_INDEX is "
            "0-based, 0 to 2",
        ),
        (
            None,
            {"CIRCLE_NODE_INDEX": "-1", "CIRCLE_NODE_TOTAL": "3"},
            "CIRCLE_NODE_INDEX='-1' is not a whole number >= 0",
        ),
        (
            None,
            {"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "0"},
            "CI_NODE_TOTAL='0' is not a whole number >= 1: it is GitLab's number of jobs",
        ),
        (
            None,
            {"CI_NODE_INDEX": "0", "CI_NODE_TOTAL": "3"},
            "CI_NODE_INDEX=0 is out of range: GitLab's CI_NODE_INDEX is 1-based, 1 to 3 for "
            "CI_NODE_TOTAL=3; fix the variable, or give K/N",
        ),
        (
            None,
            {"BUILDKITE_PARALLEL_JOB": "3", "BUILDKITE_PARALLEL_JOB_COUNT": "3"},
            "BUILDKITE_PARALLEL_JOB=3 is out of range: Buildkite's BUILDKITE_PARALLEL_JOB is "
            "0-based, 0 to 2",
        ),
        (
            None,
            {"CI_NODE_INDEX": "1"},
            "CI_NODE_INDEX is set but CI_NODE_TOTAL is not; set both, as GitLab does, or give K/N",
        ),
        (
            None,
            {"CIRCLE_NODE_TOTAL": "3"},
            "CIRCLE_NODE_TOTAL=3 is set but CIRCLE_NODE_INDEX is not",
        ),
        (
            None,
            {"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "3"}
            | {"BUILDKITE_PARALLEL_JOB": "2", "BUILDKITE_PARALLEL_JOB_COUNT": "3"},
            "the environment names different shards (CI_NODE_INDEX/CI_NODE_TOTAL: 2/3, "
            "BUILDKITE_PARALLEL_JOB/BUILDKITE_PARALLEL_JOB_COUNT: 3/3); unset the variables this "
            "job's CI did not set, or give K/N",
        ),
        (
            4,
            {"JOB_COMPLETION_INDEX": "4"},
            "JOB_COMPLETION_INDEX=4 is out of range: a Kubernetes Indexed Job's "
            "JOB_COMPLETION_INDEX is 0-based, 0 to 3 for auto/4; give the Job's completions as "
            "the N of auto/N",
        ),
        (
            4,
            {"HPARAMS_SHARD_INDEX": "0"},
            "HPARAMS_SHARD_INDEX=0 is out of range: HPARAMS_SHARD_INDEX is 1-based, 1 to 4 for "
            "auto/4; set it from 1 to N, as the K of K/N",
        ),
        (
            4,
            {"HPARAMS_SHARD_INDEX": ""},
            "HPARAMS_SHARD_INDEX='' is empty (an unset matrix value?)",
        ),
        (
            4,
            {"HPARAMS_SHARD_INDEX": "2", "JOB_COMPLETION_INDEX": "0"},
            "the environment names different shards (JOB_COMPLETION_INDEX: 1/4, "
            "HPARAMS_SHARD_INDEX: 2/4)",
        ),
    ],
    ids=[
        "none-auto",
        "index-only-var-for-auto",
        "none-auto-n",
        "paired-var-for-auto-n",
        "malformed-index",
        "negative-index",
        "zero-total",
        "gitlab-index-0",
        "buildkite-index-n",
        "index-without-total",
        "total-without-index",
        "providers-disagree",
        "k8s-index-n",
        "ours-index-0",
        "ours-empty",
        "indexes-disagree",
    ],
)
def test_a_missing_malformed_or_out_of_range_variable_is_named_in_one_line(
    total: int | None, environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError) as raised:
        shard_from_env(total, environ)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def ran(result: pytest.RunResult) -> set[str]:
    return {m.group(1) for line in result.outlines if (m := re.match(r"(\S+) PASSED", line))}


def explicit_shards(pytester: pytest.Pytester) -> list[set[str]]:
    """What `--hparams-shard K/3` runs, for K = 1, 2, 3."""
    shards = [ran(pytester.runpytest("-v", f"--hparams-shard={k}/3")) for k in (1, 2, 3)]
    assert [len(s) for s in shards] == [3, 2, 2]  # two trials each, test_plain in shard 1
    return shards


@pytest.mark.parametrize(
    ("index", "total", "base"),
    [
        ("CI_NODE_INDEX", "CI_NODE_TOTAL", 1),
        ("CIRCLE_NODE_INDEX", "CIRCLE_NODE_TOTAL", 0),
        ("BUILDKITE_PARALLEL_JOB", "BUILDKITE_PARALLEL_JOB_COUNT", 0),
    ],
    ids=["gitlab", "circleci", "buildkite"],
)
def test_auto_runs_the_shard_the_providers_variables_name(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, index: str, total: str, base: int
) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    expected = explicit_shards(pytester)
    monkeypatch.setenv(total, "3")
    for k in (1, 2, 3):
        monkeypatch.setenv(index, str(k - 1 + base))
        result = pytester.runpytest("-v", "--hparams-shard=auto")
        assert ran(result) == expected[k - 1], f"{index}={k - 1 + base}"


@pytest.mark.parametrize(
    ("index", "base"), [("JOB_COMPLETION_INDEX", 0), ("HPARAMS_SHARD_INDEX", 1)]
)
def test_auto_of_n_runs_the_shard_the_index_names(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, index: str, base: int
) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    expected = explicit_shards(pytester)
    for k in (1, 2, 3):
        monkeypatch.setenv(index, str(k - 1 + base))
        result = pytester.runpytest("-v", "--hparams-shard=auto/3")
        assert ran(result) == expected[k - 1], f"{index}={k - 1 + base}"


def test_xdist_workers_run_the_shard_the_controller_read(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Workers inherit the environment and read it as the controller does; had
    # they dealt another shard, xdist would stop on their different collections.
    pytester.makepyfile(test_sweep=SWEEP)
    expected = explicit_shards(pytester)[1]
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "1")
    result = pytester.runpytest_subprocess("-n", "2", "-v", "--hparams-shard=auto/3")
    assert result.ret == pytest.ExitCode.OK
    passed = {m.group(1) for line in result.outlines if (m := re.search(r"PASSED (\S+)", line))}
    assert passed == expected


@pytest.mark.parametrize(
    ("option", "environ", "message"),
    [
        (
            "auto",
            {},
            "ERROR: --hparams-shard auto: no CI shard variables are set (looked for "
            "CI_NODE_INDEX/CI_NODE_TOTAL (GitLab, 1-based), *",
        ),
        ("auto/4", {}, "ERROR: --hparams-shard auto/4: neither JOB_COMPLETION_INDEX *"),
        (
            "auto",
            {"CIRCLE_NODE_INDEX": "one", "CIRCLE_NODE_TOTAL": "3"},
            "ERROR: --hparams-shard auto: CIRCLE_NODE_INDEX='one' is not a whole number >= 0: *",
        ),
        (
            "auto/4",
            {"JOB_COMPLETION_INDEX": "4"},
            "ERROR: --hparams-shard auto/4: JOB_COMPLETION_INDEX=4 is out of range: *",
        ),
        (
            "auto",
            {"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "2"}
            | {"CIRCLE_NODE_INDEX": "1", "CIRCLE_NODE_TOTAL": "2"},
            "ERROR: --hparams-shard auto: the environment names different shards *",
        ),
    ],
    ids=["none-auto", "none-auto-n", "malformed", "out-of-range", "providers-disagree"],
)
def test_a_shard_the_environment_does_not_name_is_a_usage_error(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    option: str,
    environ: dict[str, str],
    message: str,
) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    result = pytester.runpytest(f"--hparams-shard={option}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert len([line for line in result.errlines if line.startswith("ERROR")]) == 1
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stderr.no_fnmatch_line("*Traceback*")


def test_a_malformed_shard_option_names_auto(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--hparams-shard=automatic")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*--hparams-shard: expected K/N with 1 <= K <= N (like 2/4), auto, or auto/N; "
            "got 'automatic'"
        ]
    )
