"""Measures how many trials `@hparam_search` needs against random search and
the full grid, on the same space.

    python benchmarks/search.py              # 20 seeds (about 5 minutes here)
    python benchmarks/search.py --seeds 3    # a quick look
    python benchmarks/search.py --markdown   # the table as Markdown (RESULTS.md)

The task is benchmarks/pruning.py's: scikit-learn's SGDClassifier on the
bundled digits, `partial_fit` epoch by epoch, scored on a validation split
that each seed draws anew. The grid is that script's 27 combinations (alpha
and eta0 at three values each, three losses); the searches take the same
ranges as log-uniform intervals and the losses as a choice:

- grid: `@hparam_grid`, the 27 combinations in collection order;
- random: `@hparam_random(27, seed=s)`;
- tpe: `@hparam_search(27, sampler="tpe", seed=s)`.

For each seed the target is the grid's best validation accuracy, less one
validation digit (1/450), and the grid's best itself: "trials needed" is the
number of the first trial, in the order trials ran, that reached it (a seed
that never did counts as more than 27). Each seed is a sweep function of
its own (so each search is its own study, in memory), run serially in one
pytest process per method; the test appends each trial's accuracy to a file
as it ends, which gives the order.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def run_method(root: Path, method: str, seeds: int) -> tuple[float, dict[int, list[float]]]:
    """One pytest process of every seed's sweep: wall seconds, and each seed's
    accuracies in the order its trials ran."""
    path = root / method
    path.mkdir()
    (path / "pytest.ini").write_text("[pytest]\n")
    text = HEADER.format(epochs=EPOCHS)
    for seed in range(seeds):
        decorator = DECORATORS[method].format(trials=TRIALS, seed=seed)
        text += SEED.format(decorator=decorator, seed=seed)
    (path / "test_sgd.py").write_text(text)
    log = path / "accuracies.jsonl"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"]
    start = time.perf_counter()
    proc = subprocess.run(
        command, cwd=path, env={**ENV, "SEARCH_BENCH_LOG": str(log)}, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{method}: pytest exited {proc.returncode}:\n{proc.stdout[-3000:]}")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = {m: run_method(Path(tmp), m, args.seeds) for m in DECORATORS}
    grid = runs["grid"][1]
    rows = []
    for method, (seconds, by_seed) in runs.items():
        row = [method]
        for tolerance in (ONE_DIGIT, 0.0):
            counts = [needed(by_seed[s], max(grid[s]) - tolerance) for s in range(args.seeds)]
            # A seed that never reached the target counts as more than TRIALS.
            median = statistics.median(c if c is not None else TRIALS + 1 for c in counts)
            reached = sum(c is not None for c in counts)
            shown = f"{median:g}" if median <= TRIALS else f"> {TRIALS}"
            row.append(f"{shown} ({reached}/{args.seeds} seeds)")
        best_gap = statistics.median(max(by_seed[s]) - max(grid[s]) for s in range(args.seeds))
        row += [f"{best_gap * 450:+.1f}", f"{seconds:.0f} s"]
        rows.append(tuple(row))
    header = (
        "method",
        "trials to within 1 digit of the grid's best (median)",
        "trials to the grid's best",
        "own best - grid's best, in digits (median)",
        "wall",
    )
    print(
        f"{args.seeds} seeds, {TRIALS} trials each, {EPOCHS} epochs; Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs"
    )
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
