"""The promises of the README and the docs, run as a new user runs them: every
table they show is what pytest prints (the Quickstart's, the example
project's, the guides' on pruning, repeats and baselines), and `--lf` and
`--sw` work on a sweep as on any test."""

from __future__ import annotations

import json
import math
import re
import shlex
import subprocess
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest
from conftest import EXAMPLE, PrunedExample, run_example

README = Path(__file__).resolve().parent.parent / "README.md"
DOCS = README.parent / "docs"
# A duration as pytest and the table print it ("0.00s", "12.34s", pytest's
# "70.59s (0:01:10)"), with the padding that aligns it: the one thing in a
# table that differs between runs.
DURATION = re.compile(r" *\d+\.\d+s( \(\d+:\d\d:\d\d\))?")


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


def doc_block(first_line: str) -> list[str]:
    """The lines of the one code block, in the README or a page of the docs,
    whose first line holds `first_line`."""
    pages = [README, *sorted(DOCS.rglob("*.md"))]
    text = "\n".join(page.read_text(encoding="utf-8") for page in pages)
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```$", text, re.M | re.S)
    (block,) = [b for b in blocks if first_line in b.partition("\n")[0]]
    return block.splitlines()


def assert_prints(stdout: str, shown: list[str], logdir: Path) -> None:
    """Every line `shown` is in `stdout`, in runs of consecutive lines that
    "..." separates; the docs' logdir stands for the run's."""
    readme_logdir = "example_project/logs/hparam_tuning"
    matcher = pytest.LineMatcher(stdout.splitlines())
    run: list[str] = []
    for line in [*shown, "..."]:
        if line != "...":
            run.append(as_pattern(line.replace(readme_logdir, str(logdir))))
        elif run:
            matcher.fnmatch_lines(run, consecutive=True)
            run = []


# TensorFlow picks its CPU kernels by instruction set (oneDNN), so a Keras
# sweep's last digits differ between machines: its rows are held to the
# docs' within the sweep's own tolerances (abs, rel per metric, in the
# order of its columns), and everything else exactly.
KERAS_TOLERANCES = [(0.03, 0.0), (0.0, 0.3)]  # accuracy 0.03, loss 30%
PRUNED_TOLERANCES = [(0.03, 0.0), (0.03, 0.0)]  # both accuracies 0.03
SUMMARY = re.compile(r"\d+ trials: ")


def is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def close(got: str, want: str, tolerance: tuple[float, float]) -> bool:
    return math.isclose(float(got), float(want), abs_tol=tolerance[0], rel_tol=tolerance[1])


def assert_row_close(
    printed: str, shown: str, hparams: int, tolerances: list[tuple[float, float]]
) -> None:
    """A table row as the docs show it: the hparams, outcome and verdict
    exactly, each metric within its tolerance, and a "same" that moved off
    the committed baseline (saved where the docs' table was printed)
    naming that baseline with the difference."""
    got, want = printed.lstrip("* ").split(), shown.lstrip("* ").split()
    g, metric, metrics_done = 0, 0, False
    for i, token in enumerate(want):
        assert g < len(got), (printed, shown)
        if DURATION.fullmatch(" " + token):
            assert DURATION.fullmatch(" " + got[g]), (printed, shown)
            metrics_done = True
        elif token == "same" and got[g] != "same":
            assert got[g] == want[i - 1] and re.fullmatch(r"[+-]\S+", got[g + 1]), (printed, shown)
            g += 1
        elif i >= hparams and not metrics_done and (is_number(token) or token == "-"):
            if token != "-":
                assert close(got[g], token, tolerances[metric]), (printed, shown)
            else:
                assert got[g] == "-", (printed, shown)
            metric += 1
        else:
            assert got[g] == token, (printed, shown)
        g += 1
    assert g == len(got), (printed, shown)


def assert_summary_close(
    printed: str, shown: str, tolerance: tuple[float, float], best: str
) -> None:
    """The sweep's summary line: its counts exactly, the best value within
    the primary metric's tolerance, at the combination the table stars."""
    counts, _, rest = shown.partition("; best ")
    name, _, value = rest.partition(" at ")[0].partition("=")
    found = re.fullmatch(rf"{re.escape(counts)}; best {re.escape(name)}=(\S+) at \[(.*)\]", printed)
    assert found, (printed, shown)
    assert close(found[1], value, tolerance), (printed, shown)
    assert found[2] == best, (printed, best)


def assert_keras_table(
    stdout: str,
    shown: list[str],
    logdir: Path,
    hparams: int,
    tolerances: list[tuple[float, float]],
) -> None:
    """A Keras sweep's block as the docs show it: its title and header,
    each row (matched by its hparams: close values may rank apart), the
    summary, and the lines after it."""
    end = next(i for i, line in enumerate(shown) if SUMMARY.match(line))
    lines = stdout.splitlines()
    (title,) = [i for i, line in enumerate(lines) if fnmatch(line, as_pattern(shown[0]))]
    assert lines[title + 1].split() == shown[1].split()
    rows = lines[title + 2 : title + end]
    printed = {tuple(row.lstrip("* ").split()[:hparams]): row for row in rows}
    assert len(printed) == end - 2 and SUMMARY.match(lines[title + end]), stdout
    for row in shown[2:end]:
        assert_row_close(
            printed[tuple(row.lstrip("* ").split()[:hparams])], row, hparams, tolerances
        )
    names = shown[1].split()[:hparams]

    def best(rows: list[str]) -> str:
        (starred,) = [row.lstrip("* ").split() for row in rows if row.startswith("*")]
        return "-".join(f"{n}:{v}" for n, v in zip(names, starred[:hparams], strict=True))

    assert shown[end].endswith(f" at [{best(shown[2:end])}]"), shown[end]
    assert_summary_close(lines[title + end], shown[end], tolerances[0], best(rows))
    assert_prints(stdout, shown[end + 1 :], logdir)


def test_the_example_keras_table_is_what_the_example_prints(
    keras_example: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    result, logdir = keras_example
    assert result.returncode == 0, result.stdout
    shown = doc_block("hparams: test_keras_sweep.py::test_train_digits")
    assert_keras_table(result.stdout, shown, logdir, 3, KERAS_TOLERANCES)
    # -q joins the sweep's two summary lines into one.
    quiet = doc_block("= hparams =")[1]
    test, _, summary = quiet.partition(": ")
    assert test == "test_keras_sweep.py::test_train_digits"
    trials, _, baseline = summary.partition("; baseline: ")
    assert trials == next(line for line in shown if SUMMARY.match(line))
    assert_prints(result.stdout, [f"baseline: {baseline}"], logdir)


@pytest.mark.parametrize(
    "command", ["$ pytest example_project/test_seeded", "$ EXAMPLE_SGD_EPOCHS=3 pytest"]
)
def test_the_seeded_sweeps_tables_are_what_their_commands_print(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown = doc_block(command)
    words = shlex.split(shown[0].removeprefix("$ ").split(";")[0])
    while "=" in words[0]:
        monkeypatch.setenv(*words.pop(0).split("=", 1))
    assert words[0] == "pytest"
    target = Path(words[1]).relative_to(EXAMPLE.name)
    result = run_example(str(target), tmp_path, *words[2:])
    expected = shown[1:]
    if expected[-1].startswith("exit "):
        assert result.returncode == int(expected.pop().removeprefix("exit ")), result.stdout
    assert_prints(result.stdout, expected, tmp_path)


def test_the_pruned_sweeps_table_is_what_the_example_prints(
    keras_pruned_example: PrunedExample,
) -> None:
    # Held as the Keras table above: the pruner's decisions here have wide
    # margins, the last digits do not.
    command, *shown = doc_block("$ pytest example_project/test_keras_pruned.py")
    assert command == "$ pytest example_project/test_keras_pruned.py"
    result = keras_pruned_example.result
    assert result.returncode == 0, result.stdout
    # The fixture also writes a JSON report, which the docs' command does not.
    printed = [line for line in result.stdout.splitlines() if not line.startswith("json report: ")]
    assert_keras_table("\n".join(printed), shown, keras_pruned_example.logdir, 3, PRUNED_TOLERANCES)


# The sweep behind the baseline section's table: BEFORE in the environment
# gives the values its baseline was saved from.
BASELINE_SWEEP = """
import os
from pytest_hparams import Metric, hparam_grid

ACCURACY = {(16, "adam"): 0.63, (16, "sgd"): 0.58, (32, "adam"): 0.71, (32, "sgd"): 0.69,
            (64, "adam"): 0.84, (64, "sgd"): 0.82}
BEFORE = {(32, "sgd"): 0.66, (64, "adam"): 0.87}

@hparam_grid(num_units=[16, 32, 64], optimizer=["adam", "sgd"],
             metrics=["accuracy", Metric("loss", goal="min")])
def test_train(num_units, optimizer):
    accuracy = ACCURACY[num_units, optimizer]
    if os.environ.get("BEFORE"):
        accuracy = BEFORE.get((num_units, optimizer), accuracy)
    return {"accuracy": accuracy, "loss": round(1 - accuracy, 2)}
"""


def test_the_baseline_sections_table_is_what_pytest_prints(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_sweep=BASELINE_SWEEP)
    monkeypatch.setenv("BEFORE", "1")
    pytester.runpytest("--hparams-save-baseline=baseline.json").assert_outcomes(passed=6)
    monkeypatch.delenv("BEFORE")
    result = pytester.runpytest(
        "--hparams-baseline=baseline.json", "--hparams-tolerance=accuracy:0.02"
    )
    result.assert_outcomes(passed=5, failed=1)
    assert_prints(
        result.stdout.str(), doc_block("hparams: test_sweep.py::test_train"), pytester.path
    )


def test_the_examples_requirements_install_what_its_readme_runs() -> None:
    requirements = (EXAMPLE / "requirements.txt").read_text(encoding="utf-8")
    assert "-n 2" in (EXAMPLE / "README.md").read_text(encoding="utf-8")
    assert re.search(r"^pytest-xdist\b", requirements, re.M), requirements


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


def test_the_json_reports_spelling_of_nan_and_infinity_is_what_the_docs_say(
    pytester: pytest.Pytester,
) -> None:
    text = " ".join((DOCS / "reference" / "formats.md").read_text(encoding="utf-8").split())
    assert 'written as the string `"nan"`, `"inf"` or `"-inf"`' in text
    pytester.makepyfile(
        """
        from pytest_hparams import hparam_grid

        @hparam_grid(a=["nan", "inf", "-inf"])
        def test_odd(a):
            return {"score": float(a)}
        """
    )
    pytester.runpytest("--hparams-json=r.json", "-W", "ignore").assert_outcomes(passed=3)
    report = json.loads((pytester.path / "r.json").read_text())
    scores = {t["hparams"]["a"]: t["metrics"]["score"] for t in report["sweeps"][0]["trials"]}
    assert scores == {"nan": "nan", "inf": "inf", "-inf": "-inf"}


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
