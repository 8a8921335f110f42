"""The benchmark script runs end to end on tiny sizes, so it cannot rot.

No timing is asserted here: numbers belong in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_the_pruning_script_measures_both_parts_on_tiny_sizes() -> None:
    script = SCRIPT.parent / "pruning.py"
    result = subprocess.run(
        [sys.executable, str(script), "--tiny", "--markdown"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line.split(" | ")[0] for line in result.stdout.splitlines() if line.startswith("| ")]
    assert rows == [
        "| pruner",
        "| none (full grid)",
        "| halving",
        "| median",
        "| hyperband",
        "| halving, min_resource=2, reduction_factor=3",
        "| SuccessiveHalvingPruner(...)",
        "| min_resource=1, reduction_factor=2, min_early_stopping_rate=0",
        "| storage (trials)",
        "| journal file (5)",
        "| SQLite (5)",
    ]
    # The plugin's pruning checked against Optuna's own loop (the script
    # stops with an error where they differ).
    assert "stopped the same trials at the same epochs as Optuna's own" in result.stdout
    assert "The grid's best itself: a second full grid" in result.stdout


def test_the_search_script_counts_trials_for_each_method() -> None:
    script = SCRIPT.parent / "search.py"
    result = subprocess.run(
        [sys.executable, str(script), "--seeds", "1", "--markdown"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line.split(" | ") for line in result.stdout.splitlines() if line.startswith("| ")]
    assert [row[0] for row in rows] == ["| method", "| grid", "| random", "| tpe"]
    # The grid reaches its own best, by definition, within its 27 trials.
    assert rows[1][2].endswith("(1/1 seeds)") and rows[1][3] == "+0.0"
