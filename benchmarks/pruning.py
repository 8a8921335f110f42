"""Measures what pruning saves and what it costs.

    python benchmarks/pruning.py                  # both parts, full sizes
    python benchmarks/pruning.py --only compute   # epochs saved over seeds
    python benchmarks/pruning.py --only cost      # coordination cost per trial and step
    python benchmarks/pruning.py --markdown       # the tables as Markdown (RESULTS.md)
    python benchmarks/pruning.py --tiny           # about a minute; what the test suite runs

Each part takes about 10 minutes on a slow 2-CPU VM; results and what they
mean are in benchmarks/RESULTS.md.

Compute saved: a 27-combination SGDClassifier sweep on scikit-learn's bundled
digits, trained epoch by epoch with `partial_fit` and reporting validation
accuracy through `trial.log`, run as real pytest processes of a generated
test file, once as the full grid and once per pruner. Each seed is a sweep
function of its own in that file, so each seed is its own Optuna study (a
study is named by the sweep's node id) and starts with no trials; the
studies live in memory (no logdir). Epochs are counted by the test itself.
Trials run serially in collection order, and a pruner judges a trial only
against those before it: another order gives other numbers.

Coordination cost: trivial trials each doing k `trial.log` calls through the
plugin's study (journal file, SQLite) against Optuna's own `study.optimize`
doing as many `report` + `should_prune` calls on the same storage kind, and
the same pytest sweep without a pruner as the floor of pytest itself.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

# Users' Pythons cache bytecode; see bench.py.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def pytest_cmd(*args: str) -> list[str]:
    # pytest-randomly would shuffle the trials, and a pruner's decisions
    # depend on the order trials run in: collection order, here.
    return [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        *args,
    ]


def run(args: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, str]:
    """Runs a command to its end: its wall seconds and its output. A non-zero
    exit is an error."""
    start = time.perf_counter()
    proc = subprocess.run(
        [*args], cwd=cwd, env={**ENV, **(env or {})}, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr)[-3000:]
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}:\n{output}")
    return elapsed, proc.stdout


# --- compute saved -----------------------------------------------------------------

#: The grid, fixed before any pruner ran on it: three values around
#: scikit-learn's defaults for alpha (1e-4) and eta0 (0.01, at a constant
#: learning rate), and three losses.
GRID = {
    "alpha": [1e-05, 0.0001, 0.001],
    "eta0": [0.001, 0.01, 0.1],
    "loss": ["hinge", "log_loss", "modified_huber"],
}

SWEEP_HEADER = '''
import json
import os

import numpy as np
import optuna
from sklearn.datasets import load_digits
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from pytest_hparams import hparam_grid

EPOCHS = {epochs}
SHUFFLES = {shuffles}  # added to the seed of the model and of the epochs' shuffles
GRID = {grid!r}
X, Y = load_digits(return_X_y=True)
CLASSES = np.unique(Y)
SPLITS = {{}}


def split(seed):
    """The seed's train/validation split, scaled on its training part."""
    if seed not in SPLITS:
        x_train, x_val, y_train, y_val = train_test_split(
            X, Y, test_size=0.25, stratify=Y, random_state=seed
        )
        scaler = StandardScaler().fit(x_train)
        SPLITS[seed] = scaler.transform(x_train), y_train, scaler.transform(x_val), y_val
    return SPLITS[seed]


def train(seed, alpha, eta0, loss, trial):
    x_train, y_train, x_val, y_val = split(seed)
    model = SGDClassifier(
        loss=loss, alpha=alpha, learning_rate="constant", eta0=eta0, random_state=seed + SHUFFLES
    )
    order = np.random.default_rng(seed + SHUFFLES)
    curve = []
    try:
        for epoch in range(EPOCHS):
            shuffled = order.permutation(len(y_train))
            model.partial_fit(x_train[shuffled], y_train[shuffled], classes=CLASSES)
            curve.append(float(model.score(x_val, y_val)))
            trial.log(epoch, accuracy=curve[-1])  # may stop the trial here
    finally:
        # Kept by the test itself: the epochs that ran, pruned or not.
        with open(os.environ["PRUNING_BENCH_COUNTS"], "a") as counts:
            counts.write(json.dumps([trial.id, curve]) + "\\n")
    return {{"accuracy": curve[-1]}}
'''

SWEEP_SEED = """

@hparam_grid(**GRID, pruner={pruner}, metrics=["accuracy"])
def test_seed_{seed:02d}(alpha, eta0, loss, trial):
    return train({seed}, alpha, eta0, loss, trial)
"""


@dataclass
class Trials:
    """One pytest run of the generated sweeps: per seed, each combination's
    outcome, final accuracy and epochs run."""

    seconds: float
    # seed -> combination (its params id) -> (outcome, accuracy, epochs)
    seeds: dict[int, dict[str, tuple[str, float, int]]]
    # seed -> combination -> validation accuracy after each epoch that ran,
    # in the order the trials ran
    curves: dict[int, dict[str, list[float]]]


def sweep_run(
    root: Path, name: str, pruner: str, seeds: int, epochs: int, shuffles: int = 0
) -> Trials:
    """Runs the sweeps with `pruner` (a Python expression) in a fresh pytest
    process; `shuffles` changes every model's and shuffle's seed, not the splits."""
    path = root / name
    path.mkdir()
    (path / "pytest.ini").write_text("[pytest]\n")
    text = SWEEP_HEADER.format(epochs=epochs, grid=GRID, shuffles=shuffles)
    text += "".join(SWEEP_SEED.format(pruner=pruner, seed=seed) for seed in range(seeds))
    (path / "test_sgd.py").write_text(text)
    counts = path / "counts.txt"
    seconds, _ = run(
        pytest_cmd("--hparams-json=report.json", "--hparams-no-table"),
        path,
        {"PRUNING_BENCH_COUNTS": str(counts)},
    )
    ran = dict(json.loads(line) for line in counts.read_text().splitlines())
    order = {nodeid: i for i, nodeid in enumerate(ran)}
    report = json.loads((path / "report.json").read_text())
    out: dict[int, dict[str, tuple[str, float, int]]] = {}
    curves: dict[int, dict[str, list[float]]] = {}
    for sweep in report["sweeps"]:
        seed = int(sweep["test"].rsplit("_", 1)[1])
        for t in sorted(sweep["trials"], key=lambda t: order[t["nodeid"]]):
            # The JSON's account of the epochs (a pruned trial ran steps 0
            # to pruned_at) must agree with the test's own count.
            curves.setdefault(seed, {})[t["params"]] = ran[t["nodeid"]]
            counted = len(ran[t["nodeid"]])
            expected = epochs if t["outcome"] == "passed" else t["pruned_at"] + 1
            if t["outcome"] not in ("passed", "pruned") or counted != expected:
                raise AssertionError(f"{t['nodeid']}: {t['outcome']}, {counted} epochs counted")
            out.setdefault(seed, {})[t["params"]] = (
                t["outcome"],
                t["metrics"]["accuracy"],
                counted,
            )
    if len(out) != seeds or any(len(c) != len(combinations()) for c in out.values()):
        raise AssertionError(f"{name}: not every trial of every seed was reported")
    return Trials(seconds, out, curves)


def combinations() -> list[tuple[object, ...]]:
    return list(itertools.product(*GRID.values()))


#: The pruners compared with the full grid, as `pruner=` expressions. The
#: last is a configured instance beside Optuna's defaults, chosen once by
#: reasoning and not tuned on these results: the default halving judges
#: every trial after 2 epochs (rungs at steps 1, 4 and 16, keeping a
#: quarter at each), when these curves still cross; this one judges after
#: 3, 7 and 19 epochs (steps 2, 6, 18) and keeps a third at each.
PRUNERS = {
    "halving": '"halving"',
    "median": '"median"',
    "hyperband": '"hyperband"',
    "halving, min_resource=2, reduction_factor=3": (
        "optuna.pruners.SuccessiveHalvingPruner(min_resource=2, reduction_factor=3)"
    ),
}


#: One validation digit's worth of accuracy (the split keeps 450 of 1,797),
#: with room for float rounding.
ONE_DIGIT = 1 / 450 + 1e-9


@dataclass
class Saved:
    """What one pruner did over every seed, against the full grid."""

    name: str
    seconds: float
    epochs: int  # run, over all seeds
    grid_epochs: int  # the full grid's, over all seeds
    shares: list[float]  # per seed: epochs run / the grid's
    completed: list[int]  # per seed: trials that ran to the end
    found: int  # seeds whose grid-best accuracy a completed trial reached
    gaps: list[float]  # per seed: grid best - best completed accuracy


def compare(name: str, full: Trials, pruned: Trials) -> Saved:
    shares, completed, gaps = [], [], []
    epochs = grid_epochs = found = 0
    for seed, grid in full.seeds.items():
        ran = pruned.seeds[seed]
        done = {c: acc for c, (outcome, acc, _) in ran.items() if outcome == "passed"}
        for combo, acc in done.items():
            # Each trial is deterministic given its seed: a completed trial
            # must end where the same combination ended in the full grid.
            if acc != grid[combo][1]:
                raise AssertionError(f"seed {seed} {combo}: {acc} here, {grid[combo][1]} in full")
        run_epochs = sum(e for _, _, e in ran.values())
        all_epochs = sum(e for _, _, e in grid.values())
        epochs += run_epochs
        grid_epochs += all_epochs
        shares.append(run_epochs / all_epochs)
        completed.append(len(done))
        best = max(acc for _, acc, _ in grid.values())
        # Ties count as found: accuracy on 450 validation digits moves in
        # steps of 1/450, and two combinations often end on the same value.
        gap = best - max(done.values(), default=0.0)
        found += gap <= 0
        gaps.append(gap)
    return Saved(name, pruned.seconds, epochs, grid_epochs, shares, completed, found, gaps)


def compute_saved(root: Path, seeds: int, epochs: int) -> tuple[list[Saved], Trials, Trials]:
    """Runs the full grid twice (the second with other shuffles) and each
    pruner through pytest; checks that each pruner stopped the same trials
    at the same epochs as Optuna's own loop does on the full grid's curves."""
    full = sweep_run(root, "full", "None", seeds, epochs)
    again = sweep_run(root, "full again", "None", seeds, epochs, shuffles=1000)
    rows = []
    for name, expression in PRUNERS.items():
        pruned = sweep_run(root, name, expression, seeds, epochs)
        looped = optuna_loop(full, expression)
        if looped.seeds != pruned.seeds:
            raise AssertionError(f"{name}: the plugin pruned otherwise than Optuna's own loop")
        rows.append(compare(name, full, pruned))
    return rows, full, again


def reproduced(full: Trials, again: Trials) -> tuple[int, int]:
    """Seeds where a combination the full grid ends best on is best again in
    a second full grid that differs only in the model's and the shuffles'
    seeds, and seeds where it is within one validation digit of the best:
    how much of "the grid's best" the grid itself repeats."""
    same = close = 0
    for seed, grid in full.seeds.items():
        first = {combo: acc for combo, (_, acc, _) in grid.items()}
        second = {combo: acc for combo, (_, acc, _) in again.seeds[seed].items()}
        best = [combo for combo, acc in first.items() if acc == max(first.values())]
        gap = max(second.values()) - max(second[combo] for combo in best)
        same += gap <= 0
        close += gap <= ONE_DIGIT
    return same, close


def optuna_loop(full: Trials, expression: str) -> Trials:
    """Optuna's own ask-report-tell loop over the full grid's curves, in the
    order the trials ran, with the pruner `expression` makes: each epoch
    reported and `should_prune` asked, as `trial.log` does. No training, no
    pytest: what Optuna's pruner decides on these curves."""
    import optuna

    from pytest_hparams.pruning import make_pruner

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = time.perf_counter()
    out: dict[int, dict[str, tuple[str, float, int]]] = {}
    for seed, curves in full.curves.items():
        # The plugin's name for the seed's study (its sweep's node id):
        # HyperbandPruner puts a trial in a bracket by a hash of both.
        name = f"test_sgd.py::test_seed_{seed:02d}"
        # The same text the generated test file holds.
        pruner = make_pruner(eval(expression, {"optuna": optuna}))
        study = optuna.create_study(direction="maximize", pruner=pruner, study_name=name)
        for combo, curve in curves.items():
            trial = study.ask()
            for step, accuracy in enumerate(curve):
                trial.report(accuracy, step)
                if trial.should_prune():
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                    out.setdefault(seed, {})[combo] = ("pruned", accuracy, step + 1)
                    break
            else:
                study.tell(trial, curve[-1])
                out.setdefault(seed, {})[combo] = ("passed", curve[-1], len(curve))
    return Trials(time.perf_counter() - start, out, {})


#: Every SuccessiveHalvingPruner the scan below tries on the full grid's
#: curves: its first rung (min_resource), the share kept at each rung
#: (1 / reduction_factor) and how many rungs no trial is stopped at.
HALVING_SCAN = [
    (f"min_resource={r}, reduction_factor={f}, min_early_stopping_rate={e}", (r, f, e))
    for r in (1, 2, 3, 4, 5)
    for f in (2, 3, 4)
    for e in (0, 1)
]


def halving_scan(full: Trials) -> list[Saved]:
    """Each of HALVING_SCAN through Optuna's own loop; the ones no other
    beats on both epochs and finds, fewest epochs first."""
    rows = []
    for name, (r, f, e) in HALVING_SCAN:
        expression = (
            "optuna.pruners.SuccessiveHalvingPruner("
            f"min_resource={r}, reduction_factor={f}, min_early_stopping_rate={e})"
        )
        rows.append(compare(name, full, optuna_loop(full, expression)))
    frontier: dict[tuple[int, int], Saved] = {}
    for row in rows:
        beaten = any(
            o.epochs <= row.epochs
            and o.found >= row.found
            and (o.epochs, o.found) != (row.epochs, row.found)
            for o in rows
        )
        if not beaten:
            frontier.setdefault((row.epochs, row.found), row)  # the first of equals
    return sorted(frontier.values(), key=lambda row: row.epochs)


def saved_table(rows: list[Saved], full: Trials, seeds: int) -> list[list[str]]:
    n = len(combinations())
    header = [
        "pruner",
        f"epochs run (full grid: {full_epochs(full):,})",
        "share",
        "share per seed (min-median-max)",
        "trials completed per seed (median)",
        f"grid's best found (of {seeds} seeds)",
        "within 1 validation digit",
        "accuracy lost where missed (max)",
        "wall (one pytest run)",
    ]
    table = [header]
    table.append(
        [
            "none (full grid)",
            f"{full_epochs(full):,}",
            "100%",
            "-",
            f"{n}",
            "-",
            "-",
            "-",
            f"{full.seconds:.0f} s",
        ]
    )
    for r in rows:
        lost = max(r.gaps)
        table.append(
            [
                r.name,
                f"{r.epochs:,}",
                f"{r.epochs / r.grid_epochs:.1%}",
                "-".join(
                    f"{s:.0%}" for s in (min(r.shares), statistics.median(r.shares), max(r.shares))
                ),
                f"{statistics.median(r.completed):g} of {n}",
                f"{r.found}",
                # One digit more or less of the 450: the noise of a final epoch.
                f"{sum(g <= ONE_DIGIT for g in r.gaps)}",
                f"{lost:.4f}" if lost > 0 else "-",
                f"{r.seconds:.0f} s",
            ]
        )
    return table


def scan_table(rows: list[Saved], seeds: int) -> list[list[str]]:
    header = [
        "SuccessiveHalvingPruner(...)",
        "share of the grid's epochs",
        f"grid's best found (of {seeds} seeds)",
        "within 1 validation digit",
    ]
    table = [header]
    for r in rows:
        found = f"{sum(g <= ONE_DIGIT for g in r.gaps)}"
        table.append([r.name, f"{r.epochs / r.grid_epochs:.1%}", f"{r.found}", found])
    return table


def full_epochs(full: Trials) -> int:
    return sum(e for combos in full.seeds.values() for _, _, e in combos.values())


def format_table(table: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in table[1:]])
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table
    )


# --- coordination cost -------------------------------------------------------------

#: Trivial trials: every step reports the same value, so the median pruner
#: never stops one (a value equal to the median is not behind it) and every
#: side makes exactly trials x steps report + should_prune calls.
COST_SWEEP = """
from pytest_hparams import hparam_grid


@hparam_grid(i=list(range({trials})), pruner={pruner}, metrics=["m"])
def test_cost(i, trial):
    for step in range({steps}):
        trial.log(step, m=1.0)
    return {{"m": 1.0}}
"""

#: Imported by every pytest side alike, before any trial: importing Optuna
#: and SQLAlchemy is a fixed cost, not coordination (the loop below times
#: from after the same imports).
COST_CONFTEST = """
import alembic
import optuna
import sqlalchemy
"""

#: Optuna's own loop on the same storage kind, pruner and calls; prints the
#: seconds from making the storage to the end of `optimize`.
OPTUNA_LOOP = """
import sys
import time

import alembic
import optuna
import sqlalchemy
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

kind, path, grid = sys.argv[1], sys.argv[4], sys.argv[5] == "grid"
trials, steps = int(sys.argv[2]), int(sys.argv[3])
optuna.logging.set_verbosity(optuna.logging.WARNING)
start = time.perf_counter()
storage = JournalStorage(JournalFileBackend(path)) if kind == "journal" else f"sqlite:///{path}"
sampler = optuna.samplers.GridSampler({"i": list(range(trials))}) if grid else None
study = optuna.create_study(
    storage=storage, study_name="bench", direction="maximize", sampler=sampler,
    pruner=optuna.pruners.MedianPruner(),
)


def objective(trial):
    if grid:
        trial.suggest_categorical("i", list(range(trials)))
    for step in range(steps):
        trial.report(1.0, step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return 1.0


study.optimize(objective, n_trials=trials)
print(time.perf_counter() - start)
"""


@dataclass
class Cost:
    """One storage kind's coordination cost, in seconds: the plugin's (its
    pytest run less the same run without a pruner) beside Optuna's loop."""

    storage: str
    trials: int
    plugin_trial: float  # per trial, asked and told, with no steps
    plugin_step: float  # per trial.log step beyond that
    optuna_trial: float
    optuna_step: float
    plugin_total: float  # per trial of `steps` steps, all of it
    optuna_total: float
    grid_trial: float  # study.optimize with GridSampler, no steps
    floor_trial: float  # the pytest run without a pruner, whole, per trial
    floor_step: float  # its trial.log step (the scalars written)


#: The storage kinds, by how `--hparams-storage` and the loop name them.
STORAGES = {"journal": "journal file", "sqlite": "SQLite"}


def coordination_cost(
    root: Path, trials: dict[str, int], steps: int, repeat: int, warm_up: bool = True
) -> tuple[list[Cost], dict[str, float]]:
    """Interleaves every side `repeat` times, after a warm-up run of pytest's
    floor; returns each storage kind's costs (with `trials[kind]` trials)
    and the median seconds of every side."""
    loop = root / "optuna_loop.py"
    loop.write_text(OPTUNA_LOOP)
    runs = iter(range(1_000_000))  # a fresh logdir, journal and database for every run

    def project(n: int, pruner: str, k: int) -> Path:
        path = root / f"cost_{n}_{'floor' if pruner == 'None' else 'median'}_{k}"
        if not path.exists():
            path.mkdir()
            (path / "pytest.ini").write_text("[pytest]\n")
            (path / "conftest.py").write_text(COST_CONFTEST)
            (path / "test_cost.py").write_text(COST_SWEEP.format(trials=n, pruner=pruner, steps=k))
        return path

    def sweep(n: int, pruner: str, k: int, kind: str) -> float:
        i = next(runs)
        args = [f"--hparams-logdir={root / f'logs{i}'}", "--hparams-no-table"]
        if kind == "sqlite":
            args.append(f"--hparams-storage=sqlite:///{root / f'sweep{i}.db'}")
        seconds, out = run(pytest_cmd(*args), project(n, pruner, k))
        if f"{n} passed" not in out or "pruned" in out:
            raise AssertionError(f"every trial should pass unpruned:\n{out[-500:]}")
        return seconds

    def optimize(n: int, k: int, kind: str, grid: bool = False) -> float:
        i = next(runs)
        path = root / (f"loop{i}.journal" if kind == "journal" else f"loop{i}.db")
        args = [str(n), str(k), str(path), "grid" if grid else "plain"]
        _, out = run([sys.executable, str(loop), kind, *args], root)
        return float(out.split()[-1])

    sides: dict[str, Callable[[], float]] = {}
    for kind, n in trials.items():
        for k in (0, steps):
            # The floor: the same sweep without a pruner, on the same logdir.
            sides[f"{kind} {n}: pytest, no pruner, {k} steps"] = partial(sweep, n, "None", k, kind)
            sides[f"{kind} {n}: pytest, median, {k} steps"] = partial(sweep, n, '"median"', k, kind)
            sides[f"{kind} {n}: optimize, median, {k} steps"] = partial(optimize, n, k, kind)
        sides[f"{kind} {n}: optimize, GridSampler, 0 steps"] = partial(optimize, n, 0, kind, True)
    for name, side in sides.items():
        if warm_up and "no pruner" in name:  # bytecode, disk caches; all import the same
            side()
    seconds: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(repeat):
        for name, side in sides.items():
            seconds[name].append(side())
    m = {name: statistics.median(values) for name, values in seconds.items()}
    costs = []
    for kind, n in trials.items():

        def side(what: str, k: int, kind: str = kind, n: int = n) -> float:
            return m[f"{kind} {n}: {what}, {k} steps"]

        floor0, floor_k = side("pytest, no pruner", 0), side("pytest, no pruner", steps)
        p0, pk = side("pytest, median", 0), side("pytest, median", steps)
        o0, ok = side("optimize, median", 0), side("optimize, median", steps)
        costs.append(
            Cost(
                STORAGES[kind],
                n,
                plugin_trial=(p0 - floor0) / n,
                plugin_step=((pk - p0) - (floor_k - floor0)) / (n * steps),
                optuna_trial=o0 / n,
                optuna_step=(ok - o0) / (n * steps),
                plugin_total=(pk - floor_k) / n,
                optuna_total=ok / n,
                grid_trial=side("optimize, GridSampler", 0) / n,
                floor_trial=floor_k / n,
                floor_step=(floor_k - floor0) / (n * steps),
            )
        )
    return costs, m


def cost_table(costs: list[Cost], steps: int) -> list[list[str]]:
    header = [
        "storage (trials)",
        f"plugin, per trial of {steps} steps",
        "study.optimize, same",
        "ratio",
        "plugin, per trial (ask, tell)",
        "study.optimize, same",
        "ratio",
        "plugin, per `trial.log` step",
        "study.optimize, per report + should_prune",
        "ratio",
        "study.optimize, GridSampler, per trial",
        "pytest's floor (no pruner): per trial, whole run; per step",
    ]
    table = [header]
    for c in costs:
        table.append(
            [
                f"{c.storage} ({c.trials})",
                _ms(c.plugin_total),
                _ms(c.optuna_total),
                _ratio(c.plugin_total, c.optuna_total),
                _ms(c.plugin_trial),
                _ms(c.optuna_trial),
                _ratio(c.plugin_trial, c.optuna_trial),
                _ms(c.plugin_step),
                _ms(c.optuna_step),
                _ratio(c.plugin_step, c.optuna_step),
                _ms(c.grid_trial),
                f"{_ms(c.floor_trial)}; {_ms(c.floor_step)}",
            ]
        )
    return table


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "-"


def _ms(seconds: float) -> str:
    if abs(seconds) < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    return f"{seconds * 1e3:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny sizes, to check the script runs")
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    parser.add_argument("--only", choices=["compute", "cost"], help="only one of the two parts")
    parser.add_argument("--seeds", type=int, default=20, help="seeds of the compute part")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of a full trial")
    parser.add_argument("--journal-trials", type=int, default=500, help="cost part, journal")
    # SQLite costs ten times the journal's a step here: fewer trials keep
    # the run within minutes.
    parser.add_argument("--sqlite-trials", type=int, default=100, help="cost part, SQLite")
    parser.add_argument("--steps", type=int, default=5, help="trial.log steps per trial")
    parser.add_argument("--repeat", type=int, default=3, help="runs per side of the cost part")
    args = parser.parse_args()
    if args.tiny:
        args.seeds, args.epochs, args.steps, args.repeat = 1, 2, 1, 1
        args.journal_trials = args.sqlite_trials = 5
    print(
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}"
    )
    root = Path(tempfile.mkdtemp(prefix="hparams-pruning-"))
    try:
        if args.only in (None, "compute"):
            start = time.perf_counter()
            rows, full, again = compute_saved(root, args.seeds, args.epochs)
            print(
                f"\nCompute saved: {len(combinations())} combinations x {args.epochs} epochs, "
                f"{args.seeds} seed(s), trials in collection order "
                f"({time.perf_counter() - start:.0f} s)"
            )
            print(format_table(saved_table(rows, full, args.seeds), args.markdown))
            print(
                "\nEvery pruner above stopped the same trials at the same epochs as "
                "Optuna's own ask-report-tell loop on the full grid's curves."
            )
            same, close = reproduced(full, again)
            print(
                "The grid's best itself: a second full grid, other shuffles and model seeds "
                f"(same splits), ends best on a combination the first ended best on in {same} "
                f"of {args.seeds} seeds, within one validation digit of its best in {close}."
            )
            start = time.perf_counter()
            scan = halving_scan(full)
            print(
                f"\n{len(HALVING_SCAN)} SuccessiveHalvingPruner settings in Optuna's own loop "
                "on the full grid's curves; those no other beats on both epochs and finds "
                f"({time.perf_counter() - start:.0f} s):"
            )
            print(format_table(scan_table(scan, args.seeds), args.markdown))
        if args.only in (None, "cost"):
            start = time.perf_counter()
            trials = {"journal": args.journal_trials, "sqlite": args.sqlite_trials}
            costs, m = coordination_cost(root, trials, args.steps, args.repeat, not args.tiny)
            print(
                f"\nCoordination cost: trivial trials, a median pruner that never prunes, "
                f"medians of {args.repeat} run(s) per side ({time.perf_counter() - start:.0f} s)"
            )
            print(format_table(cost_table(costs, args.steps), args.markdown))
            print("\nSides, median seconds (pytest: whole run; optimize: storage made to end):")
            for name, seconds in m.items():
                print(f"  {name}: {seconds:.2f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
