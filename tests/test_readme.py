"""The README's promises, run as a new user runs them: the Quickstart's code,
command and table agree with what pytest prints, and `--lf` and `--sw` work on
a sweep as on any test."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
# A duration as pytest and the table print it ("0.00s", "12.34s"): the one
# thing in the Quickstart's output that differs between runs.
DURATION = re.compile(r"\d+\.\d+s")


def quickstart_block(language: str) -> str:
    """The first ```<language> block after the Quickstart heading."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("\n## Quickstart\n") :]
    start = section.index(f"\n```{language}\n") + len(f"\n```{language}\n")
    return section[start : section.index("\n```\n", start)]


def quickstart_command() -> list[str]:
    """The arguments of the Quickstart's `pytest` command, without `pytest`."""
    (line,) = [line for line in quickstart_block("bash").splitlines() if line.startswith("pytest ")]
    return shlex.split(line)[1:]


def as_pattern(line: str) -> str:
    # fnmatch reads "[" as a character class; durations vary, and a
    # separator's "=" padding grows with the duration's width.
    pattern = DURATION.sub("*", line.replace("[", "[[]"))
    if pattern.startswith("="):
        pattern = "*" + pattern.strip("= ") + "*"
    return pattern


def test_the_quickstart_runs_as_pasted_and_prints_the_readme_table(
    pytester: pytest.Pytester,
) -> None:
    args = quickstart_command()
    (test_file,) = [arg for arg in args if arg.endswith(".py")]
    pytester.makepyfile(**{test_file.removesuffix(".py"): quickstart_block("python")})
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=12)
    expected = quickstart_block("text").splitlines()
    result.stdout.fnmatch_lines([as_pattern(line) for line in expected], consecutive=True)
    assert (pytester.path / "logs").is_dir()


def test_the_install_section_installs_from_a_clone_with_extras_that_exist() -> None:
    # pytest-hparams is not published yet: `pip install pytest-hparams` fails.
    text = README.read_text(encoding="utf-8")
    section = text[text.index("\n## Install\n") : text.index("\n## Quickstart\n")]
    commands = [
        line.split("#")[0].split()
        for block in re.findall(r"```bash\n(.*?)```", section, re.S)
        for line in block.splitlines()
    ]
    installs = [words[2] for words in commands if words[:2] == ["pip", "install"]]
    assert installs and all(re.match(r'"?(\.|dist/)', target) for target in installs), installs
    pyproject = tomllib.loads((README.parent / "pyproject.toml").read_text(encoding="utf-8"))
    extras = set(pyproject["project"]["optional-dependencies"])
    wanted = {extra for target in installs for extra in re.findall(r"\[(\w+)\]", target)}
    assert wanted and wanted <= extras, wanted - extras


ONE_FAILING_TRIAL = """
from pytest_hparams import hparam_grid

@hparam_grid(a=[1, 2, 3])
def test_sweep(a):
    assert a != 2
    return {"score": a}
"""


def test_last_failed_reruns_only_the_failed_trial(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweep=ONE_FAILING_TRIAL)
    pytester.runpytest().assert_outcomes(passed=2, failed=1)
    result = pytester.runpytest("--lf", "-v")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "run-last-failure: rerun previous 1 failure",
            "*test_sweep[[]a:2[]] FAILED*",
            "1 trial: 1 failed",
        ]
    )


def test_stepwise_stops_at_the_failed_trial_and_resumes_from_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweep=ONE_FAILING_TRIAL)
    pytester.runpytest("--sw", "-p", "no:randomly").assert_outcomes(passed=1, failed=1)
    result = pytester.runpytest("--sw", "-p", "no:randomly", "-v")
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(["*test_sweep[[]a:2[]] FAILED*"])
