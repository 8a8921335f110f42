"""The benchmark scripts run end to end on small sizes, so they cannot rot.

No timing is asserted here: numbers belong in benchmarks/RESULTS.md. What the
pruning and search scripts measure is asserted for its meaning: the
controls' picks score worse than halving's, the plugin's pruning decisions
are Optuna's own, simple regret never rises with more trials.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "bench.py"


def test_the_benchmark_script_measures_every_row_on_tiny_sizes() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--tiny", "--markdown"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| measurement | pytest-hparams | baseline | ratio | target | met |")
    names = [row.split(" | ")[0] for row in rows[1:]]
    assert names == [
        "| 10-trial no-op sweep, recorded (whole run), 4-hparam grid vs 4 parametrize",
        "| 10-trial no-op sweep, recorded (whole run), one hparam vs one parametrize",
        "| 10-trial sweep vs tf.summary + hp.hparams (whole run)"
        if "skipped" not in rows[3]
        else "| 10-trial sweep vs tf.summary + hp.hparams",
        "| `--collect-only`, 40 plain tests: plugin on vs `-p no:hparams`",
        "| collect a 100-combination grid: time",
        "| collect a 100-combination grid: peak memory",
        "| 10-trial logdir read by TensorBoard's backend",
        "| 8 CPU-bound trials of ~0.05 s under `-n 2`, recorded",
    ]
    assert "file-system floor" in rows[1] and "file-system floor" in rows[2]
    assert "heavy modules imported: none" in rows[4]
    assert "10 sessions read back" in rows[7]


def test_the_noise_simulation_prints_its_table() -> None:
    script = SCRIPT.parent / "noise.py"
    result = subprocess.run(
        [sys.executable, str(script), "--runs", "40"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| rule | n | false alarms (A/A) |")
    assert [row.split(" | ")[1] for row in rows[1:]] == ["1", "3", "5", "10"]


def run_script(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, str(SCRIPT.parent / name), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def pruning(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    """The compute part on one seed and a few epochs: its output and figures."""
    figures = tmp_path_factory.mktemp("pruning") / "figures.json"
    result = run_script("pruning.py", "--tiny", "--only", "compute", "--json", str(figures))
    return result.stdout, json.loads(figures.read_text())["stages"]


def test_pruning_is_scored_so_that_both_controls_score_worse_than_halving(
    pruning: tuple[str, dict[str, Any]],
) -> None:
    output, stages = pruning
    for stage in ("sgd", "mlp"):
        rows = stages[stage]["rows"]
        halving = rows["halving"]
        wrong = rows["control: halving judging in the wrong direction"]
        assert wrong["mean_regret"] > halving["mean_regret"] + 0.05, stage
        assert wrong["failures"] and not halving["failures"], stage
        for name, row in rows.items():
            assert 0 <= row["share"] <= 1 and min(row["regrets"]) >= 0, (stage, name)
        assert rows["none (full grid)"]["share"] == 1
    # At this size (one seed, 6 epochs) SGD's first-epoch leader ends well
    # behind; on the MLP stage it ties the grid's pick.
    leader = stages["sgd"]["rows"]["control: one epoch each, then finish the leader"]
    assert leader["mean_regret"] > stages["sgd"]["rows"]["halving"]["mean_regret"] + 0.05
    assert leader["failures"]
    assert "halving" in output


def test_the_plugin_prunes_as_optunas_own_loop_does_on_both_stages(
    pruning: tuple[str, dict[str, Any]],
) -> None:
    # The script stops with an error where the plugin's decisions differ from
    # Optuna's ask-report-tell loop on the same curves; it names the pruners
    # it checked.
    output, stages = pruning
    assert "the same trials at the same epochs as Optuna's own" in output
    for stage in ("sgd", "mlp"):
        assert stages[stage]["matches_optuna"] == ["halving", "median", "hyperband"]


def test_the_truth_file_matches_the_script_that_makes_it() -> None:
    result = run_script("truth.py", "--check", "2")
    assert "truth.json matches the script" in result.stdout


def test_the_pruning_scripts_cost_part_runs_on_tiny_sizes() -> None:
    result = run_script("pruning.py", "--tiny", "--only", "cost", "--markdown")
    rows = [line.split(" | ")[0] for line in result.stdout.splitlines() if line.startswith("| ")]
    assert rows == ["| storage (trials)", "| journal file (5)", "| SQLite (5)"]


@pytest.fixture(scope="module")
def search(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    """Both parts of the search script on one seed: its output and figures."""
    figures = tmp_path_factory.mktemp("search") / "figures.json"
    result = run_script("search.py", "--seeds", "1", "--markdown", "--json", str(figures))
    return result.stdout, json.loads(figures.read_text())


def test_the_search_script_reads_simple_regret_off_each_search(
    search: tuple[str, dict[str, Any]],
) -> None:
    output, figures = search
    assert sorted(figures) == ["hartmann6", "hpo"]
    for function, f in figures.items():
        for method in ("random", "tpe"):
            at_27, at_60 = f["median"][method]["27"], f["median"][method]["60"]
            # Simple regret is the best so far less the optimum: never below
            # 0, and more trials never raise it.
            assert 0 <= at_60 <= at_27, (function, method)
        assert f["tpe_wins"]["60"] in (0, 1)
    assert output.count("Goal at 60 trials") == 2


def test_the_search_scripts_digits_check_counts_trials_for_each_method(
    search: tuple[str, dict[str, Any]],
) -> None:
    output, _ = search
    rows = [line.split(" | ") for line in output.splitlines() if line.startswith("| ")]
    digits = rows[-4:]  # the real-model check's table comes last
    assert [row[0] for row in digits] == ["| method", "| grid", "| random", "| tpe"]
    # The grid reaches its own best, by definition, within its 27 trials.
    assert digits[1][2].endswith("(1/1 seeds)") and digits[1][3] == "+0.0"
