"""Measures what pruning saves and what it costs.

    python benchmarks/pruning.py                  # both parts, full sizes
    python benchmarks/pruning.py --only compute   # epochs saved and selection regret
    python benchmarks/pruning.py --only cost      # coordination cost per trial and step
    python benchmarks/pruning.py --stage mlp      # one stage of the compute part
    python benchmarks/pruning.py --markdown       # the tables as Markdown (RESULTS.md)
    python benchmarks/pruning.py --tiny           # what the test suite runs

Results and what they mean are in benchmarks/RESULTS.md.

Compute saved, judged by selection regret: two 27-combination sweeps of
benchmarks/stages.py on scikit-learn's bundled digits, SGDClassifier and a
small MLP whose curves cross, trained epoch by epoch with `partial_fit` and
reporting validation accuracy through `trial.log`, run as real pytest
processes of a generated test file, into a fresh logdir (the study is the
logdir's journal), once as the full grid and once per pruner. Each seed is a
sweep function of its own in that file, so each seed is its own Optuna study
(a study is named by the sweep's node id) and starts with no trials. Epochs
are counted by the test itself. Trials run serially in collection order, and
a pruner judges a trial only against those before it.

A method picks the combination with the best final validation accuracy among
the trials it ran to the end. Its selection regret on a seed is the true
quality of the grid's best combination less that of its pick, in accuracy
points, where a combination's true quality is its mean validation accuracy
over 60 runs on other splits and initialisations (benchmarks/truth.json,
made by benchmarks/truth.py). Two controls go through the same scoring to
show that it can fail: halving judging in the wrong direction (a study that
minimizes accuracy, in Optuna's own loop on the full grid's curves), and
"one epoch each, then finish the leader".

Coordination cost: trivial trials each doing k `trial.log` calls through the
plugin's study (journal file, SQLite) against Optuna's own `study.optimize`
doing as many `report` + `should_prune` calls on the same storage kind, and
the same pytest sweep without a pruner as the floor of pytest itself.
"""

from __future__ import annotations

import argparse
import json
import math
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

from stages import STAGES, Stage
from truth import load as load_truth

# Users' Pythons cache bytecode; see bench.py.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


#: The name the plugin's runs give their studies (--hparams-study), so that
#: Optuna's own loop can name its study alike.
STUDY = "bench"


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


# --- compute saved, judged by selection regret -------------------------------------

BENCHMARKS = Path(__file__).resolve().parent

SWEEP_HEADER = """
import json
import os

import optuna
from stages import STAGES

from pytest_hparams import hparam_grid

STAGE = STAGES[{stage!r}]
EPOCHS = {epochs}


def train(seed, trial, **hparams):
    curve = []
    try:
        for epoch, accuracy in enumerate(STAGE.curve(seed, hparams, EPOCHS)):
            curve.append(accuracy)
            trial.log(epoch, accuracy=accuracy)  # may stop the trial here
    finally:
        # Kept by the test itself: the epochs that ran, pruned or not.
        with open(os.environ["PRUNING_BENCH_COUNTS"], "a") as counts:
            counts.write(json.dumps([trial.id, STAGE.index(hparams), curve]) + "\\n")
    return {{"accuracy": curve[-1]}}
"""

SWEEP_SEED = """

@hparam_grid(**STAGE.grid, pruner={pruner}, metrics=["accuracy"])
def test_{method}_seed_{seed:02d}({args}, trial):
    return train({seed}, trial, {kwargs})
"""


@dataclass
class Trials:
    """One method's sweeps of a stage (or Optuna's loop over their curves):
    per seed, each combination's outcome, final accuracy and epochs run."""

    # seed -> combination (its index in Stage.combinations()) -> (outcome, accuracy, epochs)
    seeds: dict[int, dict[int, tuple[str, float, int]]]
    # seed -> combination -> validation accuracy after each epoch that ran,
    # in the order the trials ran
    curves: dict[int, dict[int, list[float]]]


def stage_run(
    root: Path, stage: Stage, methods: dict[str, str], seeds: int, epochs: int
) -> tuple[float, dict[str, Trials]]:
    """Runs the stage's sweeps, one a method (its `pruner=` expression) and
    seed, in one fresh pytest process into a fresh logdir: each sweep's study
    lives in the logdir's journal. Returns the wall seconds and each method's
    trials."""
    path = root / stage.name
    path.mkdir()
    (path / "pytest.ini").write_text("[pytest]\n")
    text = SWEEP_HEADER.format(stage=stage.name, epochs=epochs)
    args = ", ".join(stage.grid)
    kwargs = ", ".join(f"{k}={k}" for k in stage.grid)
    for method, pruner in methods.items():
        for seed in range(seeds):
            text += SWEEP_SEED.format(
                method=method, pruner=pruner, seed=seed, args=args, kwargs=kwargs
            )
    (path / f"test_{stage.name}.py").write_text(text)
    counts = path / "counts.txt"
    seconds, _ = run(
        pytest_cmd(
            "--hparams-logdir=logs",
            "--hparams-json=report.json",
            "--hparams-no-table",
            f"--hparams-study={STUDY}",
        ),
        path,
        {"PRUNING_BENCH_COUNTS": str(counts), "PYTHONPATH": str(BENCHMARKS)},
    )
    ran = {nodeid: (combo, curve) for nodeid, combo, curve in map(json.loads, counts.open())}
    order = {nodeid: i for i, nodeid in enumerate(ran)}
    report = json.loads((path / "report.json").read_text())
    out = {method: Trials({}, {}) for method in methods}
    for sweep in report["sweeps"]:
        method, seed = sweep["test"].split("::test_", 1)[1].split("_seed_")
        trials = out[method]
        for t in sorted(sweep["trials"], key=lambda t: order[t["nodeid"]]):
            # The JSON's account of the epochs (a pruned trial ran steps 0
            # to pruned_at) must agree with the test's own count.
            combo, curve = ran[t["nodeid"]]
            trials.curves.setdefault(int(seed), {})[combo] = curve
            expected = epochs if t["outcome"] == "passed" else t["pruned_at"] + 1
            if t["outcome"] not in ("passed", "pruned") or len(curve) != expected:
                raise AssertionError(f"{t['nodeid']}: {t['outcome']}, {len(curve)} epochs counted")
            outcome = (t["outcome"], t["metrics"]["accuracy"], len(curve))
            trials.seeds.setdefault(int(seed), {})[combo] = outcome
    n = len(stage.combinations())
    for method, trials in out.items():
        if len(trials.seeds) != seeds or any(len(c) != n for c in trials.seeds.values()):
            raise AssertionError(f"{stage.name} {method}: not every trial was reported")
    return seconds, out


#: The pruners compared with the full grid, as `pruner=` expressions.
PRUNERS = {"halving": '"halving"', "median": '"median"', "hyperband": '"hyperband"'}

#: The most of the grid's epochs `pruner="halving"` may run, per stage.
SHARE_GOALS = {"sgd": 0.30, "mlp": 0.40}
#: A seed's regret counts as the grid's when at most this much above it, in
#: accuracy points (a validation digit is 0.22).
TOLERANCE = 0.05
#: The share of seeds that must be within TOLERANCE of the grid's regret.
WITHIN_GOAL = 18 / 20


@dataclass
class Scored:
    """One method on one stage, over every seed: its compute and its picks'
    selection regret, in accuracy points."""

    name: str
    epochs: int  # run, over all seeds
    grid_epochs: int  # the full grid's, over all seeds
    regrets: list[float]  # per seed

    @property
    def share(self) -> float:
        return self.epochs / self.grid_epochs

    @property
    def mean(self) -> float:
        return statistics.fmean(self.regrets)

    def within(self, grid: Scored) -> int:
        """Seeds whose regret is at most the grid's on the same seed, plus TOLERANCE."""
        pairs = zip(self.regrets, grid.regrets, strict=True)
        return sum(r <= g + TOLERANCE + 1e-9 for r, g in pairs)

    def failures(self, grid: Scored) -> list[str]:
        """What keeps this method from picking as well as the grid: none, or
        the regret half of the goal it misses."""
        needed = math.ceil(WITHIN_GOAL * len(self.regrets) - 1e-9)
        out = []
        if self.mean > grid.mean + 1e-9:
            out.append(f"mean regret {self.mean:.2f} > the grid's {grid.mean:.2f}")
        if self.within(grid) < needed:
            out.append(f"within the grid's + {TOLERANCE} in {self.within(grid)} < {needed} seeds")
        return out


def regret(truth: Sequence[float], finals: dict[int, float]) -> float:
    """The true quality of the best combination less that of the pick (the
    best final accuracy among `finals`), in accuracy points. Accuracy moves
    in steps of 1/450, so picks often tie: a tie scores the mean of the tied
    combinations' true quality, what a pick among them at random gives."""
    top = max(finals.values())
    picks = [truth[combo] for combo, accuracy in finals.items() if accuracy == top]
    return 100 * (max(truth) - statistics.fmean(picks))


def score(name: str, trials: Trials, full: Trials, truth: Sequence[float]) -> Scored:
    epochs = grid_epochs = 0
    regrets = []
    for seed, grid in full.seeds.items():
        ran = trials.seeds[seed]
        done = {c: acc for c, (outcome, acc, _) in ran.items() if outcome == "passed"}
        for combo, acc in done.items():
            # Each trial is deterministic given its seed: a completed trial
            # must end where the same combination ended in the full grid.
            if acc != grid[combo][1]:
                raise AssertionError(f"seed {seed} #{combo}: {acc} here, {grid[combo][1]} in full")
        epochs += sum(e for _, _, e in ran.values())
        grid_epochs += sum(e for _, _, e in grid.values())
        regrets.append(regret(truth, done))
    return Scored(name, epochs, grid_epochs, regrets)


def one_epoch_leader(full: Trials, truth: Sequence[float]) -> Scored:
    """The control that trains every combination one epoch and then finishes
    the leader: it picks on the first epoch's accuracy."""
    epochs = grid_epochs = 0
    regrets = []
    for curves in full.curves.values():
        epochs += len(curves) + len(next(iter(curves.values()))) - 1
        grid_epochs += sum(len(curve) for curve in curves.values())
        regrets.append(regret(truth, {combo: curve[0] for combo, curve in curves.items()}))
    return Scored("control: one epoch each, then finish the leader", epochs, grid_epochs, regrets)


def optuna_loop(
    stage: Stage, method: str, full: Trials, expression: str, direction: str = "maximize"
) -> Trials:
    """Optuna's own ask-report-tell loop over the full grid's curves, in the
    order the trials ran, with the pruner `expression` makes: each epoch
    reported and `should_prune` asked, as `trial.log` does, in a study named
    as the plugin names `method`'s. No training, no pytest: what Optuna's
    pruner decides on these curves. `direction` is the study's: "minimize"
    makes the wrong-direction control."""
    import optuna

    from pytest_hparams.pruning import make_pruner

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out: dict[int, dict[int, tuple[str, float, int]]] = {}
    for seed, curves in full.curves.items():
        # The plugin's name for the seed's study (its sweep's node id and
        # the run's study name): HyperbandPruner puts a trial in a bracket
        # by a hash of the name and the trial's number.
        name = f"test_{stage.name}.py::test_{method}_seed_{seed:02d} @ {STUDY}"
        # The same text the generated test file holds.
        pruner = make_pruner(eval(expression, {"optuna": optuna}))
        study = optuna.create_study(direction=direction, pruner=pruner, study_name=name)
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
    return Trials(out, {})


@dataclass
class StageResult:
    stage: Stage
    seeds: int
    epochs: int
    seconds: float  # the stage's one pytest run
    grid: Scored
    pruners: list[Scored]
    controls: list[Scored]
    scan: list[Scored]


def compute_saved(root: Path, stage: Stage, seeds: int, epochs: int) -> StageResult:
    """Runs the stage's full grid and each pruner through pytest, scores each
    by selection regret against truth.json, checks that each pruner stopped
    the same trials at the same epochs as Optuna's own loop does on the full
    grid's curves, and scores the two controls and the halving scan."""
    truth = [curve[epochs - 1] for curve in load_truth()[stage.name]]
    seconds, runs = stage_run(root, stage, {"full": "None", **PRUNERS}, seeds, epochs)
    full = runs["full"]
    grid = score("none (full grid)", full, full, truth)
    rows = []
    for name, expression in PRUNERS.items():
        if optuna_loop(stage, name, full, expression).seeds != runs[name].seeds:
            raise AssertionError(f"{name}: the plugin pruned otherwise than Optuna's own loop")
        rows.append(score(name, runs[name], full, truth))
    wrong = optuna_loop(stage, "halving", full, PRUNERS["halving"], direction="minimize")
    controls = [
        score("control: halving judging in the wrong direction", wrong, full, truth),
        one_epoch_leader(full, truth),
    ]
    scan = halving_scan(stage, full, truth)
    return StageResult(stage, seeds, epochs, seconds, grid, rows, controls, scan)


#: Every SuccessiveHalvingPruner the scan below tries on the full grid's
#: curves: its first rung (min_resource), the share kept at each rung
#: (1 / reduction_factor) and how many rungs no trial is stopped at.
HALVING_SCAN = [
    (f"min_resource={r}, reduction_factor={f}, min_early_stopping_rate={e}", (r, f, e))
    for r in (1, 2, 3, 4, 5)
    for f in (2, 3, 4)
    for e in (0, 1)
]


def halving_scan(stage: Stage, full: Trials, truth: Sequence[float]) -> list[Scored]:
    """Each of HALVING_SCAN through Optuna's own loop, scored as the pruners are."""
    rows = []
    for name, (r, f, e) in HALVING_SCAN:
        expression = (
            "optuna.pruners.SuccessiveHalvingPruner("
            f"min_resource={r}, reduction_factor={f}, min_early_stopping_rate={e})"
        )
        rows.append(score(name, optuna_loop(stage, "halving", full, expression), full, truth))
    return rows


def frontier(rows: list[Scored], grid: Scored) -> list[Scored]:
    """The rows no other beats on share, mean regret and seeds within, fewest
    epochs first."""

    def key(row: Scored) -> tuple[float, float, int]:
        return (row.share, row.mean, -row.within(grid))

    kept: dict[tuple[float, float, int], Scored] = {}
    for row in rows:
        beaten = any(
            all(a <= b + 1e-12 for a, b in zip(key(o), key(row), strict=True))
            and key(o) != key(row)
            for o in rows
        )
        if not beaten:
            kept.setdefault(key(row), row)  # the first of equals
    return sorted(kept.values(), key=key)


def judged(row: Scored, grid: Scored, share_goal: float | None) -> str:
    misses = row.failures(grid)
    if share_goal is not None and row.share > share_goal + 1e-12:
        misses.insert(0, f"{row.share:.1%} of the epochs > {share_goal:.0%}")
    return "fails: " + "; ".join(misses) if misses else "passes"


def regret_table(result: StageResult) -> list[list[str]]:
    grid = result.grid
    header = [
        "method",
        f"epochs run (share of the grid's {grid.grid_epochs:,})",
        "mean regret",
        "median regret",
        "max regret",
        f"seeds within grid + {TOLERANCE} (of {result.seeds})",
        "judged",
    ]
    table = [header]
    goal = SHARE_GOALS[result.stage.name]
    for row in [grid, *result.pruners, *result.controls]:
        table.append(
            [
                row.name,
                f"{row.epochs:,} ({row.share:.1%})",
                f"{row.mean:.3f}",
                f"{statistics.median(row.regrets):.3f}",
                f"{max(row.regrets):.3f}",
                "-" if row is grid else f"{row.within(grid)}",
                "-" if row is grid else judged(row, grid, goal if row.name == "halving" else None),
            ]
        )
    return table


def scan_table(result: StageResult) -> list[list[str]]:
    grid = result.grid
    header = [
        "SuccessiveHalvingPruner(...)",
        "share of the grid's epochs",
        "mean regret",
        f"seeds within grid + {TOLERANCE} (of {result.seeds})",
    ]
    table = [header]
    for r in frontier(result.scan, grid):
        table.append([r.name, f"{r.share:.1%}", f"{r.mean:.3f}", f"{r.within(grid)}"])
    return table


def floors(result: StageResult) -> list[str]:
    """The measured floor of the scan: the fewest epochs of a setting that
    picks as well as the grid, and the best regret within the share goal."""
    grid, goal = result.grid, SHARE_GOALS[result.stage.name]
    picking = [r for r in result.scan if not r.failures(grid)]
    cheap = [r for r in result.scan if r.share <= goal + 1e-12]
    lines = []
    if picking:
        best = min(picking, key=lambda r: (r.share, r.mean))
        lines.append(
            f"fewest epochs of a setting that picks as well as the grid: {best.share:.1%} "
            f"({best.name}; mean regret {best.mean:.3f}, {best.within(grid)} seeds within)"
        )
    else:
        lines.append("no setting picks as well as the grid")
    if cheap:
        best = max(cheap, key=lambda r: (r.within(grid), -r.mean))
        lines.append(
            f"most seeds within among settings at most {goal:.0%} of the epochs: "
            f"{best.within(grid)} ({best.name}; {best.share:.1%}, mean regret {best.mean:.3f})"
        )
    else:
        lines.append(f"no setting runs at most {goal:.0%} of the epochs")
    return lines


def as_json(result: StageResult) -> dict[str, object]:
    grid = result.grid
    return {
        "seeds": result.seeds,
        "epochs": result.epochs,
        "rows": {
            row.name: {
                "share": row.share,
                "mean_regret": row.mean,
                "median_regret": statistics.median(row.regrets),
                "regrets": row.regrets,
                "within": row.within(grid),
                "failures": row.failures(grid),
            }
            for row in [grid, *result.pruners, *result.controls]
        },
        "matches_optuna": [row.name for row in result.pruners],
    }


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
    parser.add_argument("--stage", choices=list(STAGES), action="append", help="default: both")
    parser.add_argument("--seeds", type=int, default=20, help="seeds of the compute part")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of a full trial")
    parser.add_argument("--json", type=Path, help="also write the compute part's figures here")
    parser.add_argument("--journal-trials", type=int, default=500, help="cost part, journal")
    # SQLite costs ten times the journal's a step here: fewer trials keep
    # the run within minutes.
    parser.add_argument("--sqlite-trials", type=int, default=100, help="cost part, SQLite")
    parser.add_argument("--steps", type=int, default=5, help="trial.log steps per trial")
    parser.add_argument("--repeat", type=int, default=3, help="runs per side of the cost part")
    args = parser.parse_args()
    if args.tiny:
        args.seeds, args.epochs, args.steps, args.repeat = 1, 6, 1, 1
        args.journal_trials = args.sqlite_trials = 5
    print(
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}"
    )
    root = Path(tempfile.mkdtemp(prefix="hparams-pruning-"))
    try:
        if args.only in (None, "compute"):
            figures = {}
            for name in args.stage or list(STAGES):
                start = time.perf_counter()
                result = compute_saved(root, STAGES[name], args.seeds, args.epochs)
                figures[name] = as_json(result)
                print_stage(result, time.perf_counter() - start, args.markdown)
            if args.json:
                args.json.write_text(json.dumps({"stages": figures}, indent=1) + "\n")
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


def print_stage(result: StageResult, seconds: float, markdown: bool) -> None:
    stage = result.stage
    print(
        f"\n{stage.title}: {len(stage.combinations())} combinations x {result.epochs} epochs, "
        f"{result.seeds} seed(s), trials in collection order; selection regret in accuracy "
        f"points against truth.json (one pytest run of every sweep: {result.seconds:.0f} s; "
        f"in all {seconds:.0f} s)"
    )
    print(format_table(regret_table(result), markdown))
    print(
        f"\nOn {stage.name}, every pruner above stopped the same trials at the same epochs as "
        "Optuna's own ask-report-tell loop on the full grid's curves."
    )
    print(
        f"\n{len(HALVING_SCAN)} SuccessiveHalvingPruner settings in Optuna's own loop on the "
        "full grid's curves; those no other beats on share, mean regret and seeds within:"
    )
    print(format_table(scan_table(result), markdown))
    for line in floors(result):
        print(f"- {line}")


if __name__ == "__main__":
    main()
