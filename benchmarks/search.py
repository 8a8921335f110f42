"""Measures what `@hparam_search` (TPE) buys over `@hparam_random`, and over
the full grid, in trials.

    python benchmarks/search.py                  # both parts, 20 seeds (about 10 minutes here)
    python benchmarks/search.py --only functions # Hartmann6 and the log-scaled space
    python benchmarks/search.py --only digits    # the real-model check
    python benchmarks/search.py --seeds 1        # a quick look
    python benchmarks/search.py --tiny           # one seed, 3-epoch digits: the test suite's size
    python benchmarks/search.py --markdown       # the tables as Markdown (RESULTS.md)

Functions with a known optimum (benchmarks/objectives.py), where samplers
differ: Hartmann6 (six uniform hparams on [0, 1]) and a five-hparam space
with log-scaled domains shaped like a network's (learning rate, weight decay,
batch size, 1 - momentum, warmup). Each seed is a sweep function of its own
(its own study, in memory), `@hparam_search(60, sampler="tpe", seed=s)`
against `@hparam_random(60, seed=s)`, run serially in one pytest process per
function and method. Simple regret after k trials is the best value of the
first k trials (in the order they ran) less the optimum; it is reported at
27 and at 60 trials, with the seeds where TPE's is lower than random's.

The real-model check (digits): the task is benchmarks/pruning.py's SGD
stage: scikit-learn's SGDClassifier on the bundled digits, `partial_fit`
epoch by epoch, scored on a validation split that each seed draws anew. The
grid is that script's 27 combinations (alpha and eta0 at three values each,
three losses); the searches take the same ranges as log-uniform intervals
and the losses as a choice:

- grid: `@hparam_grid`, the 27 combinations in collection order;
- random: `@hparam_random(27, seed=s)`;
- tpe: `@hparam_search(27, sampler="tpe", seed=s)`.

For each seed the target is the grid's best validation accuracy, less one
validation digit (1/450), and the grid's best itself: "trials needed" is the
number of the first trial, in the order trials ran, that reached it (a seed
that never did counts as more than 27). Each seed is a sweep function of its
own (so each search is its own study, in memory), run serially in one pytest
process per method; the test appends each trial's accuracy to a file as it
ends, which gives the order. This space does not separate the samplers:
every method comes within a validation digit of the grid's best in two or
three trials.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent

ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
EPOCHS = 10
TRIALS = 27
#: One validation digit's worth of accuracy (the split keeps 450 of 1,797).
ONE_DIGIT = 1 / 450

HEADER = """
import json
import os

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from pytest_hparams import LogUniform, hparam_grid, hparam_random, hparam_search

X, Y = load_digits(return_X_y=True)
CLASSES = np.unique(Y)
GRID = dict(alpha=[1e-05, 0.0001, 0.001], eta0=[0.001, 0.01, 0.1],
            loss=["hinge", "log_loss", "modified_huber"])
SPACE = dict(alpha=LogUniform(1e-05, 0.001), eta0=LogUniform(0.001, 0.1),
             loss=["hinge", "log_loss", "modified_huber"])


def train(seed, alpha, eta0, loss, name):
    x_train, x_val, y_train, y_val = train_test_split(
        X, Y, test_size=0.25, stratify=Y, random_state=seed
    )
    scaler = StandardScaler().fit(x_train)
    x_train, x_val = scaler.transform(x_train), scaler.transform(x_val)
    model = SGDClassifier(
        loss=loss, alpha=alpha, learning_rate="constant", eta0=eta0, random_state=seed
    )
    order = np.random.default_rng(seed)
    for _ in range({epochs}):
        shuffled = order.permutation(len(y_train))
        model.partial_fit(x_train[shuffled], y_train[shuffled], classes=CLASSES)
    accuracy = float(model.score(x_val, y_val))
    with open(os.environ["SEARCH_BENCH_LOG"], "a") as log:
        log.write(json.dumps([name, accuracy]) + "\\n")
    return {{"accuracy": accuracy}}
"""

DECORATORS = {
    "grid": '@hparam_grid(**GRID, metrics=["accuracy"])',
    "random": '@hparam_random({trials}, seed={seed}, **SPACE, metrics=["accuracy"])',
    "tpe": '@hparam_search({trials}, sampler="tpe", seed={seed}, **SPACE, metrics=["accuracy"])',
}

SEED = """

{decorator}
def test_seed_{seed:02d}(alpha, eta0, loss):
    return train({seed}, alpha, eta0, loss, "{seed}")
"""


def run_method(
    root: Path, method: str, seeds: int, epochs: int = EPOCHS
) -> tuple[float, dict[int, list[float]]]:
    """One pytest process of every seed's sweep: wall seconds, and each seed's
    accuracies in the order its trials ran."""
    path = root / method
    path.mkdir()
    (path / "pytest.ini").write_text("[pytest]\n")
    text = HEADER.format(epochs=epochs)
    for seed in range(seeds):
        decorator = DECORATORS[method].format(trials=TRIALS, seed=seed)
        text += SEED.format(decorator=decorator, seed=seed)
    (path / "test_sgd.py").write_text(text)
    log = path / "accuracies.jsonl"
    seconds = pytest_run(path, {"SEARCH_BENCH_LOG": str(log)}, method)
    out: dict[int, list[float]] = {}
    for line in log.read_text().splitlines():
        name, accuracy = json.loads(line)
        out.setdefault(int(name), []).append(accuracy)
    if sorted(out) != list(range(seeds)) or any(len(v) != TRIALS for v in out.values()):
        raise AssertionError(f"{method}: not every seed ran {TRIALS} trials")
    return seconds, out


def needed(accuracies: list[float], target: float) -> int | None:
    """The number of the first trial that reached the target, or None."""
    return next((i + 1 for i, a in enumerate(accuracies) if a >= target - 1e-9), None)


# --- functions with a known optimum --------------------------------------------------

#: Per seed, the regrets of a search's trials in the order they ran.
Runs = dict[int, list[float]]

#: The trials of a search, and the earlier count the regret is also read at.
FUNCTION_TRIALS = 60
EARLY = 27

FUNCTIONS_HEADER = """
import json
import os

import optuna
from objectives import HPO_SPACE, hartmann6, hpo

from pytest_hparams import LogUniform, Metric, RealInterval, hparam_random, hparam_search

SPACES = {
    "hartmann6": {f"x{i}": RealInterval(0.0, 1.0) for i in range(1, 7)},
    "hpo": {name: LogUniform(low, high) for name, (low, high) in HPO_SPACE.items()},
}
FUNCTIONS = {"hartmann6": hartmann6, "hpo": hpo}
METRICS = [Metric("regret", goal="min")]


def evaluate(function, method, seed, **hparams):
    regret = FUNCTIONS[function](**hparams)
    with open(os.environ["SEARCH_BENCH_LOG"], "a") as log:
        log.write(json.dumps([function, method, seed, regret]) + "\\n")
    return {"regret": regret}
"""

FUNCTION_DECORATORS = {
    "random": "@hparam_random({trials}, seed={seed}, **SPACES[{function!r}], metrics=METRICS)",
    "tpe": (
        '@hparam_search({trials}, sampler="tpe", seed={seed}, **SPACES[{function!r}], '
        "metrics=METRICS)"
    ),
}

FUNCTION_SEED = """

{decorator}
def test_{function}_{method}_seed_{seed:02d}({args}):
    return evaluate({function!r}, {method!r}, {seed}, {kwargs})
"""

#: Each function's hparams, in the order its Python function takes them.
FUNCTION_ARGS = {
    "hartmann6": [f"x{i}" for i in range(1, 7)],
    "hpo": ["lr", "weight_decay", "batch_size", "one_minus_momentum", "warmup"],
}
#: The goal at 60 trials: TPE's median regret at most this, and TPE below
#: random in at least this many seeds of 20.
FUNCTION_GOALS = {"hartmann6": (0.5, 17), "hpo": (0.06, 18)}
FUNCTION_TITLES = {
    "hartmann6": "Hartmann6 (6 uniform hparams; regret = value + 3.32237)",
    "hpo": "log-scaled space (5 log-uniform hparams; regret = 0.95 - accuracy)",
}


#: TPESampler settings the scan tries on a function that misses its goal,
#: through `@hparam_search(sampler=...)` with an instance: Optuna's defaults
#: are n_startup_trials=10 and multivariate=False.
TPE_SCAN = {
    f"tpe_{i}": (f"n_startup_trials={n}, multivariate={m}", n, m)
    for i, (n, m) in enumerate((n, m) for m in (False, True) for n in (5, 10, 20))
}
TPE_SCAN_DECORATOR = (
    "@hparam_search({trials}, sampler=optuna.samplers.TPESampler(seed={seed}, "
    "n_startup_trials={n}, multivariate={m}), **SPACES[{function!r}], metrics=METRICS)"
)


def tpe_scan(root: Path, seeds: int, function: str) -> list[list[str]]:
    """Each of TPE_SCAN on `function`: its median simple regret at EARLY and
    FUNCTION_TRIALS trials, the measured floor of TPE on it."""
    methods = {
        key: TPE_SCAN_DECORATOR.replace("{n}", str(n)).replace("{m}", str(m))
        for key, (_, n, m) in TPE_SCAN.items()
    }
    _, runs = run_functions(root, seeds, methods, [function])
    rows = [["TPESampler(...)", f"median regret at {EARLY}", f"at {FUNCTION_TRIALS}"]]
    for key, (name, _, _) in TPE_SCAN.items():
        by_seed = runs[function][key]
        at = {
            k: statistics.median(min(by_seed[s][:k]) for s in range(seeds))
            for k in (EARLY, FUNCTION_TRIALS)
        }
        rows.append([name, f"{at[EARLY]:.3f}", f"{at[FUNCTION_TRIALS]:.3f}"])
    return rows


def run_functions(
    root: Path, seeds: int, methods: dict[str, str], functions: list[str]
) -> tuple[float, dict[str, dict[str, Runs]]]:
    """One pytest process of every function's, method's (its decorator) and
    seed's search: wall seconds, and per function and method each seed's
    regrets in the order its trials ran."""
    path = root / f"functions {len(list(root.iterdir()))}"
    path.mkdir()
    (path / "pytest.ini").write_text("[pytest]\n")
    text = FUNCTIONS_HEADER
    for function in functions:
        names = FUNCTION_ARGS[function]
        for method, decorator in methods.items():
            for seed in range(seeds):
                text += FUNCTION_SEED.format(
                    decorator=decorator.format(
                        trials=FUNCTION_TRIALS, seed=seed, function=function
                    ),
                    function=function,
                    method=method,
                    seed=seed,
                    args=", ".join(names),
                    kwargs=", ".join(f"{n}={n}" for n in names),
                )
    (path / "test_functions.py").write_text(text)
    log = path / "regrets.jsonl"
    env = {"SEARCH_BENCH_LOG": str(log), "PYTHONPATH": str(BENCHMARKS)}
    seconds = pytest_run(path, env, "functions")
    out: dict[str, dict[str, Runs]] = {
        function: {method: {} for method in methods} for function in functions
    }
    for line in log.read_text().splitlines():
        function, method, seed, regret = json.loads(line)
        out[function][method].setdefault(seed, []).append(regret)
    for function, methods in out.items():
        for method, by_seed in methods.items():
            counts = [len(by_seed.get(seed, [])) for seed in range(seeds)]
            if counts != [FUNCTION_TRIALS] * seeds:
                raise AssertionError(f"{function} {method}: not every seed ran {FUNCTION_TRIALS}")
    return seconds, out


def function_figures(runs: dict[str, Runs], seeds: int) -> dict[str, Any]:
    """Median simple regret at EARLY and FUNCTION_TRIALS trials per method,
    and the seeds where TPE's is lower than random's."""
    best = {
        method: {k: [min(by_seed[s][:k]) for s in range(seeds)] for k in (EARLY, FUNCTION_TRIALS)}
        for method, by_seed in runs.items()
    }
    wins = {
        k: sum(t < r for t, r in zip(best["tpe"][k], best["random"][k], strict=True))
        for k in (EARLY, FUNCTION_TRIALS)
    }
    return {
        "median": {m: {k: statistics.median(v) for k, v in b.items()} for m, b in best.items()},
        "tpe_wins": wins,
    }


def function_table(figures: dict[str, Any], seeds: int) -> list[list[str]]:
    median, wins = figures["median"], figures["tpe_wins"]
    header = [
        "method",
        f"median simple regret at {EARLY} trials",
        f"at {FUNCTION_TRIALS} trials",
        f"seeds where TPE beats random (of {seeds}), at {EARLY} / {FUNCTION_TRIALS}",
    ]
    rows = [header]
    for method in FUNCTION_DECORATORS:
        rows.append(
            [
                method,
                f"{median[method][EARLY]:.3f}",
                f"{median[method][FUNCTION_TRIALS]:.3f}",
                f"{wins[EARLY]} / {wins[FUNCTION_TRIALS]}" if method == "tpe" else "-",
            ]
        )
    return rows


def met(function: str, figures: dict[str, Any], seeds: int) -> bool:
    most, wins_goal = FUNCTION_GOALS[function]
    needed = math.ceil(wins_goal / 20 * seeds - 1e-9)
    regret = figures["median"]["tpe"][FUNCTION_TRIALS]
    return bool(regret <= most and figures["tpe_wins"][FUNCTION_TRIALS] >= needed)


def function_verdict(function: str, figures: dict[str, Any], seeds: int) -> str:
    most, wins_goal = FUNCTION_GOALS[function]
    needed = math.ceil(wins_goal / 20 * seeds - 1e-9)
    regret = figures["median"]["tpe"][FUNCTION_TRIALS]
    wins = figures["tpe_wins"][FUNCTION_TRIALS]
    verdict = "met" if met(function, figures, seeds) else "missed"
    return (
        f"Goal at {FUNCTION_TRIALS} trials, TPE's median regret <= {most} and TPE beats random "
        f"in >= {needed} of {seeds} seeds: {verdict} ({regret:.3f}, {wins})"
    )


def print_table(rows: list[list[str]], markdown: bool) -> None:
    if markdown:
        print("| " + " | ".join(rows[0]) + " |")
        print("|" + "---|" * len(rows[0]))
        for row in rows[1:]:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def pytest_run(path: Path, env: dict[str, str], what: str) -> float:
    """Runs pytest in `path` to its end: its wall seconds. A non-zero exit is an error."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"]
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=path, env={**ENV, **env}, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{what}: pytest exited {proc.returncode}:\n{proc.stdout[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds of each search")
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="one seed, and 3 epochs in the digits check (the test suite's size)",
    )
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--only", choices=["functions", "digits"], help="only one of the two parts")
    parser.add_argument("--json", type=Path, help="also write the functions' figures here")
    parser.add_argument(
        "--tpe-scan", action="store_true", help="scan TPE's settings where a goal is missed"
    )
    args = parser.parse_args()
    if args.tiny:
        args.seeds = 1
    print(f"{args.seeds} seed(s); Python {platform.python_version()}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "functions"):
            functions = list(FUNCTION_ARGS)
            seconds, runs = run_functions(Path(tmp), args.seeds, FUNCTION_DECORATORS, functions)
            print(f"\nEvery search below in one pytest run: {seconds:.0f} s")
            figures = {}
            for function, by_method in runs.items():
                figures[function] = function_figures(by_method, args.seeds)
                print(f"\n{FUNCTION_TITLES[function]}, {FUNCTION_TRIALS} trials a search:")
                print_table(function_table(figures[function], args.seeds), args.markdown)
                print(function_verdict(function, figures[function], args.seeds))
                if args.tpe_scan and not met(function, figures[function], args.seeds):
                    print(f"\nTPE's settings on {function}, through the same decorator:")
                    print_table(tpe_scan(Path(tmp), args.seeds, function), args.markdown)
            if args.json:
                args.json.write_text(json.dumps(figures, indent=1) + "\n")
        if args.only in (None, "digits"):
            print_digits(Path(tmp), args.seeds, args.markdown, 3 if args.tiny else EPOCHS)


def print_digits(root: Path, seeds: int, markdown: bool, epochs: int = EPOCHS) -> None:
    runs = {m: run_method(root, m, seeds, epochs) for m in DECORATORS}
    grid = runs["grid"][1]
    rows = []
    for method, (seconds, by_seed) in runs.items():
        row = [method]
        for tolerance in (ONE_DIGIT, 0.0):
            counts = [needed(by_seed[s], max(grid[s]) - tolerance) for s in range(seeds)]
            # A seed that never reached the target counts as more than TRIALS.
            median = statistics.median(c if c is not None else TRIALS + 1 for c in counts)
            reached = sum(c is not None for c in counts)
            shown = f"{median:g}" if median <= TRIALS else f"> {TRIALS}"
            row.append(f"{shown} ({reached}/{seeds} seeds)")
        best_gap = statistics.median(max(by_seed[s]) - max(grid[s]) for s in range(seeds))
        row += [f"{best_gap * 450:+.1f}", f"{seconds:.0f} s"]
        rows.append(row)
    header = [
        "method",
        "trials to within 1 digit of the grid's best (median)",
        "trials to the grid's best",
        "own best - grid's best, in digits (median)",
        "wall",
    ]
    print(
        f"\nDigits, the real-model check: SGDClassifier, {TRIALS} trials each, {epochs} epochs "
        "(does not separate the samplers)"
    )
    print_table([header, *rows], markdown)


if __name__ == "__main__":
    main()
