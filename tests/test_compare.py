"""`python -m pytest_hparams compare BASE.json HEAD.json`, on real reports
of two runs of a sweep, one of them degraded."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_report import assert_drawn_offline

# BONUS lowers every score; DROP leaves a combination out (removed) and
# EXTRA adds one (added). The repeats' noise is fixed by the repeat's index.
SWEEP = """
import os
import re
from pytest_hparams import hparam_grid, Metric

BONUS = float(os.environ.get("BONUS", "0"))
UNITS = [u for u in (16, 32, 64) if str(u) != os.environ.get("DROP")]
UNITS += [int(os.environ["EXTRA"])] if os.environ.get("EXTRA") else []

@hparam_grid(units=UNITS, repeats=int(os.environ.get("REPEATS", "1")),
             metrics=[Metric("score", tolerance=0.01), Metric("loss", goal="min")])
def test_fit(units, trial):
    noise = 0.004 * (trial.repeat or 0)
    score = units / 100 + noise + (BONUS if units == 16 else 0.0)
    return {"score": score, "loss": 1 - score}
"""


def run(pytester: pytest.Pytester, report: str, *args: str, **env: str) -> None:
    environ = {**os.environ, **env}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:randomly",
            f"--hparams-json={report}",
            *args,
        ],
        cwd=pytester.path,
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )
    assert Path(pytester.path, report).exists(), result.stdout + result.stderr


def compare(pytester: pytest.Pytester, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_hparams", "compare", *args],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        check=False,
    )


def rows(stdout: str) -> list[list[str]]:
    """The table's rows, split at spaces, an unmarked row's mark as ""."""
    out = []
    for line in stdout.splitlines()[1:]:
        cells = line.split()
        if "test_sweep.py::" in line:
            out.append(cells if cells[0] == "✗" else ["", *cells])
    return out


def test_a_degraded_single_run_regresses_and_exits_1(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    run(pytester, "base.json")
    run(pytester, "head.json", BONUS="-0.05")
    result = compare(pytester, "base.json", "head.json", "--markdown", "comment.md")
    assert result.returncode == 1, result.stderr
    table = rows(result.stdout)
    # Regressions first: units:16's score fell by 0.05 against a tolerance of 0.01.
    assert table[0][:5] == ["✗", "test_sweep.py::test_fit", "[units:16]", "regressed", "score"]
    assert table[0][5:9] == ["0.16", "0.11", "-0.05", "0.01"]
    assert [r[2] for r in table if r[0] != "✗" and r[1].startswith("test_sweep")] == [
        "[units:32]",
        "[units:64]",
    ]
    assert "❌ 1 regressed beyond tolerance: 1 regressed, 2 ok" in result.stdout
    comment = (pytester.path / "comment.md").read_text()
    verdict = comment.partition("#### Regressions")[0]
    details = comment.partition("<details>")[2]
    assert "**❌ 1 regressed beyond tolerance: 1 regressed, 2 ok**" in verdict
    assert "| ❌ | test_sweep.py::test_fit | [units:16] | regressed | score |" in comment
    assert "<summary>2 other combinations</summary>" in details
    assert "[units:32]" in details and "[units:16]" not in details


def test_the_same_results_pass_with_exit_0(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    run(pytester, "base.json")
    run(pytester, "head.json")
    result = compare(pytester, "base.json", "head.json")
    assert result.returncode == 0, result.stderr
    assert "✅ no regression beyond tolerance in 3 combinations: 3 ok" in result.stdout


def test_repeats_on_both_sides_get_the_gate_s_welch_verdict_and_interval(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    run(pytester, "base.json", REPEATS="3")
    run(pytester, "head.json", REPEATS="3", BONUS="-0.05")
    result = compare(pytester, "base.json", "head.json", "--alpha", "0.05")
    assert result.returncode == 1, result.stderr
    header = result.stdout.splitlines()[0]
    assert "Welch 90% interval" in header and header.rstrip().endswith("p")
    regressed = rows(result.stdout)[0]
    assert regressed[2:5] == ["[units:16]", "regressed", "score"]
    # The mean fell by 0.05 with a spread of 0.004 a side: the interval holds
    # -0.05 and lies below 0, and the one-sided test finds it.
    low, high = (float(x) for x in " ".join(regressed).split("[")[2].split("]")[0].split(","))
    assert low < -0.05 < high < 0
    assert float(regressed[-1]) < 0.05
    # A drift the tolerance allows is no regression, whatever the test says.
    lenient = compare(pytester, "base.json", "head.json", "--tolerance", "0.1")
    assert lenient.returncode == 0, lenient.stdout


def test_a_combination_on_one_side_only_is_added_or_removed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    run(pytester, "base.json")
    run(pytester, "head.json", DROP="64", EXTRA="128")
    result = compare(pytester, "base.json", "head.json")
    assert result.returncode == 0, result.stderr
    status = {r[2]: r[3] for r in rows(result.stdout)}
    assert status["[units:128]"] == "added"
    assert status["[units:64]"] == "removed"
    assert "1 added, 1 removed, 2 ok" in result.stdout


def test_reports_merged_from_shards_compare_as_one_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    for side, bonus in (("base", "0"), ("head", "-0.05")):
        for k in (1, 2):
            run(pytester, f"{side}{k}.json", f"--hparams-shard={k}/2", REPEATS="3", BONUS=bonus)
        merged = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest_hparams",
                "merge",
                f"{side}1.json",
                f"{side}2.json",
                "-o",
                f"{side}.json",
            ],
            cwd=pytester.path,
            capture_output=True,
            text=True,
            check=False,
        )
        assert merged.returncode == 0, merged.stderr
    result = compare(pytester, "base.json", "head.json", "--html", "compare.html")
    assert result.returncode == 1
    assert "❌ 1 regressed beyond tolerance: 1 regressed, 2 ok" in result.stdout
    # The change's figure, then each side's parallel view, slice and repeats.
    assert_drawn_offline(pytester.path / "compare.html", figures=7)


@pytest.mark.parametrize(
    ("files", "error"),
    [
        (("missing.json", "head.json"), "error: missing.json: cannot be read as JSON"),
        (("junk.json", "head.json"), "error: junk.json: not a pytest-hparams JSON report"),
    ],
)
def test_bad_input_is_a_one_line_error_and_exit_2(
    pytester: pytest.Pytester, files: tuple[str, str], error: str
) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    run(pytester, "head.json")
    (pytester.path / "junk.json").write_text('{"hello": 1}')
    result = compare(pytester, *files)
    assert result.returncode == 2
    assert result.stderr.startswith(error) and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_compare_will_not_write_over_a_file_it_did_not_write(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    run(pytester, "base.json")
    (pytester.path / "notes.md").write_text("my notes\n")
    result = compare(pytester, "base.json", "base.json", "--markdown", "notes.md")
    assert result.returncode == 2
    assert result.stderr == (
        "error: notes.md holds something other than a comparison; give a path of its own\n"
    )
    assert (pytester.path / "notes.md").read_text() == "my notes\n"


def test_the_html_draws_a_regressed_trials_head_value_as_the_text_gives_it(
    pytester: pytest.Pytester,
) -> None:
    # Run against a baseline, the degraded trial failed: it is judged, and
    # drawn, on what it returned.
    pytester.makepyfile(test_sweep=SWEEP)
    run(pytester, "base.json", "--hparams-save-baseline=baseline.json")
    run(pytester, "head.json", "--hparams-baseline=baseline.json", BONUS="-0.05")
    result = compare(pytester, "base.json", "head.json", "--html", "compare.html")
    assert result.returncode == 1, result.stderr
    page = (pytester.path / "compare.html").read_text()
    (head,) = re.findall(r'"name":\s*"head",\s*"x":\s*\[([^\]]*)\]', page)
    assert [float(x) for x in head.split(",")] == pytest.approx([0.11, 0.32, 0.64])
    assert page.count("1 regressed beyond tolerance") == 1
