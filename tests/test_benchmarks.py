"""The benchmark scripts run end to end at their smallest size (`--tiny`), so
they cannot rot, and what their figures mean is asserted.

No timing is compared with a goal here: numbers belong in
benchmarks/RESULTS.md. What is asserted is what a figure says it is: a
ratio is its two sides' quotient, a row's verdict is its own figure against
its own target, a pruned sweep runs fewer epochs than the full grid and its
selection regret is read off truth.json, simple regret never rises with more
trials, and the plugin's pruning decisions are Optuna's own.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

import pytest_hparams

BENCHMARKS = Path(__file__).parent.parent / "benchmarks"


def run_script(name: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / name), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def table(output: str) -> list[list[str]]:
    """The Markdown table rows of `output`, cells stripped, the rule left out."""
    rows = [line.strip("|").split(" | ") for line in output.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row] for row in rows]


def number(cell: str, unit: str) -> float:
    """The number a cell gives in `unit` ("0.38 s", "11.3x faster", "+65 ms")."""
    found = re.match(rf"([+-]?\d[\d,]*(?:\.\d+)?) ?{re.escape(unit)}(?![A-Za-z])", cell)
    assert found, f"{cell!r} gives no number in {unit!r}"
    return float(found[1].replace(",", ""))


def quotient_shown(
    shown: float, top: float, bottom: float, digits: int, shown_digits: int = 2
) -> bool:
    """Whether `shown` (rounded to `shown_digits`) is top / bottom, both read
    off cells rounded to `digits` decimals."""
    half, shown_half = 0.5 * 10**-digits, 0.5 * 10**-shown_digits
    low = (top - half) / (bottom + half)
    high = (top + half) / (bottom - half)
    return low - shown_half - 1e-9 <= shown <= high + shown_half + 1e-9


def verdict_agrees(met: str, value: float, ok: bool, boundary: float) -> bool:
    """Whether a row's "met" cell (yes / NO) is its own figure against its target;
    a figure printed at the boundary itself may round either way."""
    if value == boundary:
        return met.startswith(("yes", "NO"))
    return met.startswith("yes" if ok else "NO")


def test_the_benchmark_scripts_rows_are_ratios_of_their_own_sides() -> None:
    rows = table(run_script("bench.py", "--tiny", "--markdown"))
    assert rows[0] == ["measurement", "pytest-hparams", "baseline", "ratio", "target", "met"]
    by_name = {row[0]: row for row in rows[1:]}
    tutorial = "10-trial sweep vs tf.summary + hp.hparams"
    assert list(by_name) == [
        "10-trial no-op sweep, recorded (whole run), 4-hparam grid vs 4 parametrize",
        "10-trial no-op sweep, recorded (whole run), one hparam vs one parametrize",
        tutorial if tutorial in by_name else tutorial + " (whole run)",
        "`--collect-only`, 40 plain tests: plugin on vs `-p no:hparams`",
        "collect a 100-combination grid: time",
        "collect a 100-combination grid: peak memory",
        "10-trial logdir read by TensorBoard's backend",
        "8 CPU-bound trials of ~0.05 s under `-n 2`, recorded",
    ]
    overhead, flat, ran_tutorial, startup, grid_time, grid_memory, scale, xdist = rows[1:]
    for row, goal in ((overhead, 1.25), (flat, 1.25), (grid_time, 1.2), (xdist, None)):
        ours, theirs, ratio = number(row[1], "s"), number(row[2], "s"), number(row[3], "x")
        assert ours > 0 and theirs > 0, row
        assert quotient_shown(ratio, ours, theirs, 2), row
        if goal is not None:
            assert verdict_agrees(row[5], ratio, ratio <= goal, goal), row
    for row in (overhead, flat):
        # The file-system floor only adds time: alone, it is at least 1x.
        alone = re.search(r"alone: (\d+\.\d+)x\)", row[5])
        assert alone and float(alone[1]) >= 1, row
    ours_mib, theirs_mib = number(grid_memory[1], "MiB"), number(grid_memory[2], "MiB")
    assert quotient_shown(number(grid_memory[3], "x"), ours_mib, theirs_mib, 0), grid_memory
    if ran_tutorial[0] != tutorial:
        speedup = number(ran_tutorial[3], "x")
        ours, theirs = number(ran_tutorial[1], "s"), number(ran_tutorial[2], "s")
        assert quotient_shown(speedup, theirs, ours, 2, shown_digits=1), ran_tutorial
        assert verdict_agrees(ran_tutorial[5], speedup, speedup >= 10, 10), ran_tutorial
        assert "both: 10 sessions via TensorBoard's backend" in ran_tutorial[5]
    else:
        assert "skipped: TensorFlow not installed" in ran_tutorial[5]
    diff = number(startup[3], "ms")
    assert abs(diff - (number(startup[1], "ms") - number(startup[2], "ms"))) <= 1, startup
    assert verdict_agrees(startup[5], diff, diff < 30, 30), startup
    assert "heavy modules imported: none" in startup[5]
    assert number(scale[1], "B/trial") > 0
    assert "10 sessions read back" in scale[5]


def test_the_noise_simulation_detects_a_larger_drop_more_often() -> None:
    output = run_script("noise.py", "--tiny")
    rows = table(output)
    assert rows[0][:3] == ["rule", "n", "false alarms (A/A)"]
    assert [row[1] for row in rows[1:]] == ["1", "3", "5", "10"]
    rates = {int(row[1]): [number(cell, "%") for cell in row[2:]] for row in rows[1:]}
    for n, (alarms, *detections) in rates.items():
        assert all(0 <= r <= 100 for r in (alarms, *detections)), n
        # A/A first, then drops of 1, 2 and 3 sigma: never caught less often.
        assert [alarms, *detections] == sorted([alarms, *detections]), n
        assert detections[-1] > alarms, n
    # What docs/benchmarks.md says of the gate: five repeats under Welch's
    # test catch a 2-sigma drop more often than one run at the same alarm rate.
    assert rates[5][2] > rates[1][2]
    assert "40 simulated runs per cell" in output


def test_the_truth_file_matches_the_script_that_makes_it() -> None:
    output = run_script("truth.py", "--check", "2")
    assert "truth.json matches the script (2 runs a stage)" in output


@pytest.mark.parametrize("stage", ["sgd", "mlp"])
def test_pruning_saves_epochs_its_regret_is_read_off_the_truth_and_the_controls_score_worse(
    stage: str, tmp_path: Path
) -> None:
    figures_path = tmp_path / "figures.json"
    args = ["--tiny", "--only", "compute", "--stage", stage, "--markdown"]
    output = run_script("pruning.py", *args, "--json", str(figures_path))
    figures = json.loads(figures_path.read_text())["stages"]
    assert list(figures) == [stage]
    epochs, rows = figures[stage]["epochs"], figures[stage]["rows"]
    # The script stops with an error where the plugin's decisions differ from
    # Optuna's ask-report-tell loop on the same curves; it names the pruners.
    assert figures[stage]["matches_optuna"] == ["halving", "median", "hyperband"]
    assert f"On {stage}, every pruner above stopped the same trials" in output

    # Regret in accuracy points against truth.json at the run's epochs: at
    # least 0, at most the truth's best less its worst.
    stored = json.loads((BENCHMARKS / "truth.json").read_text())
    runs, validation = stored["params"]["runs"], stored["params"]["validation"]
    truth = [c["correct_sum"][epochs - 1] / (runs * validation) for c in stored["stages"][stage]]
    spread = 100 * (max(truth) - min(truth))
    for name, row in rows.items():
        assert all(math.isfinite(r) and 0 <= r <= spread + 1e-9 for r in row["regrets"]), name
        assert row["mean_regret"] == pytest.approx(sum(row["regrets"]) / len(row["regrets"]))
    assert rows["none (full grid)"]["share"] == 1
    for pruner in ("halving", "median", "hyperband"):
        assert 0 < rows[pruner]["share"] < 1, pruner
    halving = rows["halving"]
    wrong = rows["control: halving judging in the wrong direction"]
    assert wrong["mean_regret"] > halving["mean_regret"] + 0.05
    assert wrong["failures"] and not halving["failures"]
    if stage == "sgd":
        # At this size (one seed, 6 epochs) SGD's first-epoch leader ends
        # well behind; on the MLP stage it ties the grid's pick.
        leader = rows["control: one epoch each, then finish the leader"]
        assert leader["mean_regret"] > halving["mean_regret"] + 0.05 and leader["failures"]

    # The Markdown table the log quotes: the same rows, shares and regrets.
    regret_table = table(output)[: len(rows) + 1]
    assert regret_table[0][:3] == [
        "method",
        f"epochs run (share of the grid's {27 * epochs:,})",
        "mean regret",
    ]
    for cells in regret_table[1:]:
        row = rows[cells[0]]
        assert number(cells[1].split("(")[1], "%") == pytest.approx(100 * row["share"], abs=0.05)
        assert float(cells[2]) == pytest.approx(row["mean_regret"], abs=5e-4)


def test_the_pruning_scripts_cost_rows_are_ratios_of_their_own_sides() -> None:
    output = run_script("pruning.py", "--tiny", "--only", "cost", "--markdown")
    rows = table(output)
    assert [row[0] for row in rows] == ["storage (trials)", "journal file (5)", "SQLite (5)"]
    assert rows[0][1] == "plugin, per trial of 1 steps"

    def seconds(cell: str) -> float:
        return number(cell, "ms") / 1e3 if cell.endswith("ms") else number(cell, "us") / 1e6

    for row in rows[1:]:
        # Three pairs: the plugin's cost beside Optuna's own loop, then their
        # ratio. Optuna's whole trial and its ask-and-tell are times taken in
        # its loop, never 0; its step is the difference of two loops, which
        # noise can make 0 or less, and then there is no ratio to show.
        for plugin, optuna, ratio in ((1, 2, 3), (4, 5, 6), (7, 8, 9)):
            top, bottom = seconds(row[plugin]), seconds(row[optuna])
            assert bottom > 0 or optuna == 8, row
            if bottom > 0:
                shown = number(row[ratio], "x")
                assert shown == pytest.approx(top / bottom, rel=0.02, abs=0.01), row
            else:
                assert row[ratio] == "-", row
        assert seconds(row[10]) > 0, row  # GridSampler's trials
        assert seconds(row[11].split(";")[0]) > 0, row  # pytest's whole run, per trial
    sides = re.findall(r"^  (journal|sqlite) 5: (.+): (-?\d+\.\d+)$", output, re.MULTILINE)
    assert len(sides) == 14 and all(float(s) >= 0 for _, _, s in sides), sides


def test_the_search_script_reads_simple_regret_off_each_search(tmp_path: Path) -> None:
    figures_path = tmp_path / "figures.json"
    args = ["--tiny", "--only", "functions", "--markdown", "--json", str(figures_path)]
    output = run_script("search.py", *args)
    figures = json.loads(figures_path.read_text())
    assert sorted(figures) == ["hartmann6", "hpo"]
    parts = output.split(" trials a search:\n")[1:]
    assert len(parts) == 2
    for (function, f), part in zip(figures.items(), parts, strict=True):
        for method in ("random", "tpe"):
            at_27, at_60 = f["median"][method]["27"], f["median"][method]["60"]
            # Simple regret is the best so far less the optimum: never below
            # 0, and more trials never raise it.
            assert 0 <= at_60 <= at_27, (function, method)
        wins = f["tpe_wins"]
        assert wins["27"] in (0, 1) and wins["60"] in (0, 1), function
        # The table shows the figures; its last column, TPE's wins.
        rows = table(part)
        assert [row[0] for row in rows] == ["method", "random", "tpe"], function
        for method, at_27, at_60, won in rows[1:]:
            assert float(at_27) == pytest.approx(f["median"][method]["27"], abs=5e-4)
            assert float(at_60) == pytest.approx(f["median"][method]["60"], abs=5e-4)
            assert won == (f"{wins['27']} / {wins['60']}" if method == "tpe" else "-")
        # The verdict is the figures against the goal it states.
        verdict = re.search(
            r"TPE's median regret <= ([\d.]+) and TPE beats random in >= (\d+) of 1 seeds: "
            r"(met|missed) \(([\d.]+), (\d)\)",
            part,
        )
        assert verdict, part
        most, needed, said, regret, won_60 = verdict.groups()
        assert float(regret) == pytest.approx(f["median"]["tpe"]["60"], abs=5e-4)
        assert int(won_60) == wins["60"]
        met = f["median"]["tpe"]["60"] <= float(most) and wins["60"] >= int(needed)
        assert said == ("met" if met else "missed"), part


def test_the_search_scripts_digits_check_counts_trials_for_each_method() -> None:
    rows = table(run_script("search.py", "--tiny", "--only", "digits", "--markdown"))
    assert [row[0] for row in rows] == ["method", "grid", "random", "tpe"]
    for method, to_within, to_best, gap, _ in rows[1:]:
        reached = [re.fullmatch(r"(> 27|\d+) \(([01])/1 seeds\)", c) for c in (to_within, to_best)]
        assert all(reached), (method, to_within, to_best)
        within, best = (28 if m[1] == "> 27" else int(m[1]) for m in reached)
        # The grid's best, less a digit, is reached no later than the best.
        assert 1 <= within <= best <= 28, method
        assert re.fullmatch(r"[+-]\d+\.\d", gap), (method, gap)
    # The grid reaches its own best, by definition, within its 27 trials.
    assert rows[1][2].endswith("(1/1 seeds)") and rows[1][3] == "+0.0"


def test_the_profile_names_plugin_functions_by_their_source_lines() -> None:
    rows = table(run_script("profile_trials.py", "--tiny"))
    assert rows[0] == ["cumulative", "calls", "function"]
    assert 1 <= len(rows) - 1 <= 10
    package = Path(pytest_hparams.__file__).parent
    cumulative = []
    for ms, calls, function in rows[1:]:
        cumulative.append(number(ms, "ms"))
        assert int(calls.replace(",", "")) >= 1, function
        found = re.fullmatch(r"`([\w/]+\.py):(\d+) (\S+)`", function)
        assert found, function
        path, line, name = found[1], int(found[2]), found[3]
        source = (package / path).read_text().splitlines()
        if name == "<module>":
            assert line == 1, function
        else:
            # cProfile gives a decorated function's first decorator line.
            heading = "\n".join(source[line - 1 : line + 4])
            assert re.search(rf"^\s*(async )?def {re.escape(name)}\b", heading, re.M), function
    assert cumulative == sorted(cumulative, reverse=True)
