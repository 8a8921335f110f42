"""The example project, run as a user would, read back through TensorBoard."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import EXAMPLE, Dashboard, PrunedExample, run_example


def test_the_scikit_learn_sweep_records_eight_successful_trials(
    tmp_path: Path, dashboard: Callable[[Path], Dashboard]
) -> None:
    result = run_example("test_sklearn_sweep.py", tmp_path)
    assert result.returncode == 0, result.stdout
    assert "8 trials: 8 passed; best accuracy=" in result.stdout
    assert "baseline: 0 regressed, 0 improved, 0 new, 8 ok" in result.stdout
    board = dashboard(tmp_path)
    assert len(board.groups) == 8
    assert {board.status(g) for g in board.groups} == {"STATUS_SUCCESS"}
    assert all(0.8 < board.metrics(g)["accuracy"] <= 1.0 for g in board.groups)


def test_the_keras_sweep_records_the_tutorials_twelve_trials_with_curves(
    keras_example: tuple[subprocess.CompletedProcess[str], Path],
    dashboard: Callable[[Path], Dashboard],
) -> None:
    result, logdir = keras_example
    assert result.returncode == 0, result.stdout
    assert "12 trials: 12 passed; best accuracy=" in result.stdout
    assert "baseline: 0 regressed" in result.stdout
    board = dashboard(logdir)
    assert len(board.groups) == 12
    assert {board.status(g) for g in board.groups} == {"STATUS_SUCCESS"}
    infos = {h.name: h for h in board.experiment.hparam_infos}
    assert infos["num_units"].display_name == "Units"
    assert infos["learning_rate"].HasField("domain_interval")
    assert {m.name.tag for m in board.experiment.metric_infos} >= {"accuracy", "loss"}
    best = max(board.metrics(g)["accuracy"] for g in board.groups)
    assert best > 0.9
    run = next(r for r in board.multiplexer.Runs() if r.endswith("optimizer=adam/train"))
    assert len(board.multiplexer.Tensors(run, "epoch_loss")) == 8
    assert all(
        {m.name.tag for m in g.metric_values} == {"accuracy", "loss", "epoch_accuracy"}
        for g in board.groups
    )


# The pruned sweep's trials as its ids spell them: plain SGD at the two small
# learning rates never gets going, and its median pruner stops it.
SGD_TRIALS = {
    f"optimizer:sgd-learning_rate:{lr}-num_units:{units}"
    for lr in ("0.001", "0.01")
    for units in (16, 32, 64)
}
# A row of its table: the best trial's mark, the three hparams, ... the outcome.
TABLE_ROW = re.compile(r"^[* ] (adam|sgd) +(\S+) +(\d+) .* (passed|pruned at (\d+))")


def test_the_pruned_sweep_stops_sgd_where_tensorboard_ends_its_curves(
    keras_pruned_example: PrunedExample, dashboard: Callable[[Path], Dashboard]
) -> None:
    result, logdir = keras_pruned_example.result, keras_pruned_example.logdir
    assert result.returncode == 0, result.stdout
    assert "test_keras_pruned.py ......pppppp" in result.stdout
    assert re.search(r"^=+ 6 passed, 6 pruned in ", result.stdout, re.M), result.stdout
    # The table: each row's outcome, and the step of each pruned one.
    rows = {
        f"optimizer:{m[1]}-learning_rate:{m[2]}-num_units:{m[3]}": m[5]
        for m in map(TABLE_ROW.match, result.stdout.splitlines())
        if m
    }
    assert len(rows) == 12, result.stdout
    table = {params: int(step) for params, step in rows.items() if step is not None}
    assert table == dict.fromkeys(SGD_TRIALS, 0)
    # The JSON report: the same trials, the same steps.
    (sweep,) = json.loads(keras_pruned_example.report.read_text())["sweeps"]
    trials = {t["params"]: t for t in sweep["trials"]}
    assert {p: t["pruned_at"] for p, t in trials.items() if t["outcome"] == "pruned"} == table
    assert {t["outcome"] for p, t in trials.items() if p not in table} == {"passed"}
    # TensorBoard: a pruned trial's session failed, and its curves stop at the
    # step it was pruned at; the others ran all 10 epochs and succeeded.
    board = dashboard(logdir)
    assert len(board.groups) == 12
    for group in board.groups:
        params = group.name.rpartition("[")[2].removesuffix("]")
        (session,) = group.sessions
        pruned_at = table.get(params)
        last = 9 if pruned_at is None else pruned_at
        assert board.status(group) == ("STATUS_SUCCESS" if pruned_at is None else "STATUS_FAILURE")
        for run, tag in [("validation", "epoch_accuracy"), ("train", "epoch_loss")]:
            # A set: the session's final value of a metric goes in at the last
            # step again, beside Keras' own point there.
            steps = {e.step for e in board.multiplexer.Tensors(f"{session.name}/{run}", tag)}
            assert steps == set(range(last + 1)), (params, run, steps)
        # The validation accuracy it reached, as the table and the report show it.
        shown = {m.name.tag: m.value for m in group.metric_values}
        assert shown["epoch_accuracy"] == pytest.approx(trials[params]["metrics"]["epoch_accuracy"])
        assert ("accuracy" in shown) is (pruned_at is None)  # only a finished trial tests


def test_the_committed_baseline_fails_a_sweep_that_got_worse(tmp_path: Path) -> None:
    committed = json.loads((EXAMPLE / "baseline.json").read_text())
    # Pretend the committed model was 0.05 better than what the code now gives.
    for nodeid, entry in committed["trials"].items():
        if nodeid.startswith("test_sklearn_sweep.py"):
            entry["metrics"]["accuracy"] += 0.05
    better = tmp_path / "better.json"
    better.write_text(json.dumps(committed))
    result = run_example("test_sklearn_sweep.py", tmp_path / "logs", f"--hparams-baseline={better}")
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout
    assert "8 failed" in result.stdout
    assert "accuracy regressed: " in result.stdout
    assert "baseline: 8 regressed, 0 improved, 0 new, 0 ok" in result.stdout


def test_the_seeded_sweep_passes_its_baseline_on_new_seeds(tmp_path: Path) -> None:
    result = run_example("test_seeded_sweep.py", tmp_path, "--hparams-seed", "1")
    assert result.returncode == 0, result.stdout
    assert "4 combinations, 20 trials: 20 passed; best accuracy=" in result.stdout
    assert "baseline: 0 regressed, 0 improved, 0 new, 4 ok" in result.stdout


def test_the_seeded_sweep_fails_a_real_degradation_with_the_test_it_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXAMPLE_SGD_EPOCHS", "3")
    result = run_example("test_seeded_sweep.py", tmp_path)
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout
    assert "hparams baseline gate: FAILED" in result.stdout
    assert "one-sided Welch's t-test p=" in result.stdout
    assert "beyond tolerance 0.01" in result.stdout
