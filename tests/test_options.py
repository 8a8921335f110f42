"""How the options are written and read: path options take `=`, a blank or
misplaced value is one usage error, the command line wins over the ini
file, and `--hparams-set` parses each value to its hparam's type."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from conftest import GRID, free_port


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "--hparams-logdir is empty (an unset variable?); give a directory such as logs/*"),
        (
            ".",
            "--hparams-logdir: '.' is the project directory (*): trials would be written "
            "among the test files; choose a subdirectory such as logs/",
        ),
    ],
)
def test_an_empty_or_project_logdir_is_a_usage_error(
    pytester: pytest.Pytester, value: str, message: str
) -> None:
    pytester.makepyfile(test_grid=GRID)
    result = pytester.runpytest(f"--hparams-logdir={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    # Nothing written; other plugins' folders (pytest-benchmark's) are theirs.
    others = {".benchmarks", ".pytest_cache", ".hypothesis"}
    assert {p.name for p in pytester.path.iterdir()} - others == {"test_grid.py"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--hparams-storage="], "--hparams-storage is empty (an unset variable?); give an *"),
        (["--hparams-json="], "--hparams-json is empty (an unset variable?); give a file *"),
        (["--hparams-only-best="], "--hparams-only-best is empty (an unset variable?); *"),
        (
            ["--hparams-save-baseline=test_grid.py"],
            "--hparams-save-baseline: *test_grid.py is not valid JSON *; give a path of its own",
        ),
        (
            ["-o", "hparams_baseline=a.json b.json"],
            "hparams_baseline (ini) names 2 files; a run compares with one",
        ),
    ],
)
def test_an_empty_option_or_a_baseline_path_holding_another_file_is_a_usage_error(
    pytester: pytest.Pytester, args: list[str], message: str
) -> None:
    pytester.makepyfile(test_grid=GRID)
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert "hparam_grid" in (pytester.path / "test_grid.py").read_text()


def test_the_command_lines_hparams_set_wins_over_addopts_and_a_blank_baseline_file_is_none(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_grid=GRID)
    pytester.makeini("[pytest]\naddopts = --hparams-set=num_units=16,32\n")
    result = pytester.runpytest("--hparams-set=num_units=64", "--collect-only", "-q")
    assert all("num_units:64" in line for line in result.outlines if "::" in line)
    (pytester.path / "blank.json").write_text("")  # as `mktemp` leaves it
    result = pytester.runpytest("--hparams-save-baseline=blank.json")
    result.assert_outcomes(passed=8)  # num_units 16 and 32, from addopts
    assert json.loads((pytester.path / "blank.json").read_text())["trials"]


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="needs a directory outside /tmp")
def test_an_existing_logdir_that_pytest_takes_for_the_rootdir_says_to_write_it_with_equals(
    pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Written as two words, an existing directory looks like a test path to
    # pytest; with no common ancestor but / it becomes the rootdir itself.
    pytester.makepyfile(test_grid=GRID)
    elsewhere = Path(tempfile.mkdtemp(dir="/dev/shm"))
    try:
        result = pytester.runpytest_subprocess("--hparams-logdir", str(elsewhere))
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(
            [
                f"ERROR: --hparams-logdir {elsewhere}: write --hparams-logdir={elsewhere}; "
                "pytest would take a path after an option for a test path when it chooses its "
                "rootdir and ini file"
            ]
        )
        equals = pytester.runpytest_subprocess(f"--hparams-logdir={elsewhere}")
        equals.assert_outcomes(passed=12)
    finally:
        shutil.rmtree(elsewhere)


def test_a_logdir_that_holds_the_tests_being_run_is_a_usage_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.mkpydir("tests").joinpath("test_grid.py").write_text(GRID)
    result = pytester.runpytest("tests", "--hparams-logdir=tests")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --hparams-logdir: *tests holds the tests being run*"])


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


SET_SWEEP = """
from pytest_hparams import HParam, RealInterval, hparam_grid

@hparam_grid(units=[16, 32], lr=[0.1, 0.01])
def test_train(units, lr):
    return {"score": units * lr}

@hparam_grid(HParam("scale", RealInterval(0.0, 10.0)), scale=[1, 2])
def test_scaled(scale):
    return {"score": scale}
"""


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
