"""Fixes found by using the plugin as the README documents it, each test failing
before its fix."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from conftest import GRID, free_port

# A project laid out as the repository is: a pyproject.toml at the top whose
# pytest settings differ from the example's own pytest.ini below it.
PYPROJECT = """
[tool.pytest.ini_options]
addopts = "--hparams-top 1"
"""
EXAMPLE_INI = """
[pytest]
hparams_top = 0
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".toml", pyproject=PYPROJECT)
    example = pytester.mkdir("example")
    example.joinpath("pytest.ini").write_text(EXAMPLE_INI)
    example.joinpath("test_grid.py").write_text(GRID)
    return pytester


EQUALS = (
    "ERROR: {option} {path}: write {option}={path}; pytest would take a path after an "
    "option for a test path when it chooses its rootdir and ini file"
)


@pytest.mark.parametrize(
    ("option", "path"),
    [
        ("--hparams-logdir", "logs"),
        ("--hparams-json", "report.json"),
        ("--hparams-markdown", "sweep.md"),
        ("--hparams-save-baseline", "base.json"),
    ],
)
def test_a_path_option_in_two_words_that_could_move_the_rootdir_is_refused_on_the_first_run(
    project: pytest.Pytester, option: str, path: str
) -> None:
    # Beside the tests, the path would take pytest up to pyproject.toml once
    # it exists: the first run is refused as the second would be.
    for _ in range(2):
        result = project.runpytest_subprocess("example", option, path)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([EQUALS.format(option=option, path=path)])
        assert len([line for line in result.stderr.lines if line]) == 1, result.stderr.lines
    written = project.runpytest_subprocess("example", f"{option}={path}")
    written.assert_outcomes(passed=12)
    written.stdout.fnmatch_lines(["rootdir: */example", "configfile: pytest.ini"])


@pytest.mark.parametrize("option", ["--hparams-baseline", "--hparams-only-best"])
def test_an_existing_input_file_in_two_words_is_refused(
    project: pytest.Pytester, option: str
) -> None:
    project.runpytest("example", "--hparams-save-baseline=base.json").assert_outcomes(passed=12)
    result = project.runpytest("example", option, "base.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([EQUALS.format(option=option, path="base.json")])


def test_under_xdist_a_two_word_logdir_is_refused_by_the_controller(
    project: pytest.Pytester,
) -> None:
    # The workers start after the controller made the logdir: they took it
    # for a test path and chose pyproject.toml, whose ids no trial had.
    result = project.runpytest_subprocess("example", "-n", "2", "--hparams-logdir", "logs_n2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([EQUALS.format(option="--hparams-logdir", path="logs_n2")])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    written = project.runpytest_subprocess("example", "-n", "2", "--hparams-logdir=logs_n2")
    written.assert_outcomes(passed=12)
    written.stdout.fnmatch_lines(["rootdir: */example", "configfile: pytest.ini"])


@pytest.mark.parametrize(
    ("option", "path"),
    [
        ("--hparams-logdir", "example/logs"),  # inside the tests' folder, which cannot move it
        ("--hparams-json", "example/report.json"),
        ("--hparams-logdir", "s3://bucket/sweeps"),  # a URL, never a test path
        ("--hparams-html", "report.html"),
    ],
)
def test_a_path_option_in_two_words_is_refused_wherever_it_points(
    project: pytest.Pytester, option: str, path: str
) -> None:
    # One rule, whether or not this path could move the rootdir today.
    result = project.runpytest_subprocess("example", option, path)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.errlines[0] == EQUALS.format(option=option, path=path)


def test_a_path_option_in_two_words_in_pytest_addopts_is_refused(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_ADDOPTS", "--hparams-json report.json")
    result = project.runpytest_subprocess("example")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([EQUALS.format(option="--hparams-json", path="report.json")])
    monkeypatch.setenv("PYTEST_ADDOPTS", "--hparams-json=report.json")
    project.runpytest_subprocess("example").assert_outcomes(passed=12)


def test_a_two_word_logdir_elsewhere_without_a_test_path_is_refused(
    project: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    result = project.runpytest("--hparams-logdir", str(elsewhere))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([EQUALS.format(option="--hparams-logdir", path=elsewhere)])


def test_a_logdir_holding_the_tests_is_refused_when_no_test_path_is_given(
    pytester: pytest.Pytester,
) -> None:
    pytester.mkdir("tests").joinpath("test_grid.py").write_text(GRID)
    result = pytester.runpytest("--hparams-logdir=tests")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: --hparams-logdir: {pytester.path / 'tests'} holds the tests being run "
            "(tests/test_grid.py), and a logdir is never collected; choose a directory of its "
            "own, such as logs/"
        ]
    )
    recorded = pytester.runpytest("--hparams-logdir=logs")
    recorded.assert_outcomes(passed=12)
    pytester.runpytest("--hparams-logdir=logs").assert_outcomes(passed=12)  # logs holds runs


@pytest.mark.parametrize(("goal", "best"), [("maximize", "3"), ("minimize", "1")])
def test_a_goal_in_optunas_words_ranks_the_sweep(
    pytester: pytest.Pytester, goal: str, best: str
) -> None:
    pytester.makepyfile(
        f"""
        from pytest_hparams import Metric, hparam_grid

        @hparam_grid(a=[1, 2, 3], metrics=[Metric("score", goal="{goal}")])
        def test_sweep(a):
            return {{"score": a}}
        """
    )
    result = pytester.runpytest("--hparams-json=r.json")
    result.assert_outcomes(passed=3)
    shown = goal[:3]
    result.stdout.fnmatch_lines([f"* a score ({shown})*", f"*best score={best} at [[]a:{best}[]]"])
    report = json.loads((pytester.path / "r.json").read_text())
    assert report["sweeps"][0]["metrics"][0]["goal"] == shown


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


SET_SWEEP = """
from pytest_hparams import HParam, RealInterval, hparam_grid

@hparam_grid(units=[16, 32], lr=[0.1, 0.01])
def test_train(units, lr):
    return {"score": units * lr}

@hparam_grid(HParam("scale", RealInterval(0.0, 10.0)), scale=[1, 2])
def test_scaled(scale):
    return {"score": scale}
"""


def test_a_fraction_for_an_int_hparam_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_set=SET_SWEEP)
    result = pytester.runpytest("--hparams-set", "units=1.5")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: --hparams-set: units='1.5' is not an int, as 'units' values are; "
            "give whole numbers, like units=16"
        ]
    )


def test_an_int_hparam_takes_whole_numbers_and_a_real_one_fractions(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_set=SET_SWEEP)
    result = pytester.runpytest(
        "--collect-only",
        "-q",
        "--hparams-set=units=8",
        "--hparams-set=lr=1",
        "--hparams-set=scale=2.5",
    )
    result.stdout.fnmatch_lines(
        [
            "test_set.py::test_train[[]units:8-lr:1[]]",
            "test_set.py::test_scaled[[]scale:2.5[]]",
        ]
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


@pytest.mark.parametrize("protocol", ["ftp", "http"])
def test_an_unreachable_url_logdir_is_a_usage_error_naming_it_and_the_cause(
    pytester: pytest.Pytester, protocol: str
) -> None:
    if protocol == "http":
        pytest.importorskip("aiohttp", reason="fsspec's http:// needs aiohttp")
    pytest.importorskip("fsspec")
    pytester.makepyfile(test_grid=GRID)
    url = f"{protocol}://127.0.0.1:{free_port()}/sweeps"  # nothing listens there
    result = pytester.runpytest_subprocess(f"--hparams-logdir={url}", timeout=60)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: --hparams-logdir: cannot reach {url} (*Error: *); "
            "check the URL, the credentials and the endpoint"
        ]
    )
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


# 1e400 written out: json.loads gives an int that no float64 holds.
HUGE = "1" + "0" * 400


def put_huge(path: Path) -> None:
    """Writes HUGE as the first trial's accuracy in a baseline or JSON report."""
    data = json.loads(path.read_text())
    trials = data["sweeps"][0]["trials"] if "sweeps" in data else list(data["trials"].values())
    trials[0]["metrics"]["accuracy"] = 12345.5
    path.write_text(json.dumps(data).replace("12345.5", HUGE))


def test_a_baseline_with_a_number_beyond_float64_is_malformed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_grid=GRID)
    pytester.runpytest("--hparams-save-baseline=base.json").assert_outcomes(passed=12)
    put_huge(pytester.path / "base.json")
    result = pytester.runpytest("--hparams-baseline=base.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: --hparams-baseline: {pytester.path / 'base.json'} has a malformed "
            '"trials" table*'
        ]
    )
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


@pytest.mark.parametrize("option", ["--hparams-save-baseline", "--hparams-json"])
def test_only_best_refuses_a_file_with_a_number_beyond_float64(
    pytester: pytest.Pytester, option: str
) -> None:
    pytester.makepyfile(test_grid=GRID)
    pytester.runpytest(f"{option}=f.json").assert_outcomes(passed=12)
    put_huge(pytester.path / "f.json")
    result = pytester.runpytest("--hparams-only-best=f.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: --hparams-only-best: {pytester.path / 'f.json'} is not a pytest-hparams *"]
    )
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


def test_merge_refuses_a_report_with_a_number_beyond_float64_in_one_line(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_grid=GRID)
    pytester.runpytest("--hparams-json=r.json").assert_outcomes(passed=12)
    put_huge(pytester.path / "r.json")
    result = pytester.run(sys.executable, "-m", "pytest_hparams", "merge", "r.json")
    assert result.ret == 2
    result.stderr.fnmatch_lines(["error: r.json: a malformed pytest-hparams report (*)*"])
    assert "Traceback" not in result.stderr.str()


def test_the_docs_write_every_path_option_with_equals() -> None:
    root = Path(__file__).resolve().parent.parent
    two_words = re.compile(
        r"--hparams-(logdir|baseline|save-baseline|json|markdown|only-best) [\w$.~/{\"']"
    )
    docs = [root / "README.md", *sorted((root / "docs").rglob("*.md"))]
    for doc in [*docs, *sorted((root / "example_project").glob("*"))]:
        if doc.is_file() and doc.suffix in (".md", ".ini", ".py", ".txt"):
            for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
                if "ERROR: " not in line and "`--hparams-logdir logs`" not in line:  # the refusal
                    assert not two_words.search(line), f"{doc.name}:{number}: {line}"


def test_a_returned_blank_metric_name_fails_the_trial_in_one_line(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_blank="""
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1])
        def test_blank(a):
            return {"": 1.0, "m": 2.0}
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*metric names must be non-blank strings (got '')*"])
