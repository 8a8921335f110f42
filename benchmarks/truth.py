"""Makes benchmarks/truth.json: each combination's true quality on each stage of
benchmarks/stages.py, for benchmarks/pruning.py's selection regret.

    python benchmarks/truth.py            # writes truth.json (about 10 minutes here)
    python benchmarks/truth.py --check 3  # recomputes 3 runs a stage, compares

A combination's true quality after E epochs is its mean validation accuracy
after E epochs over RUNS runs, seeds TRUTH_SEED to TRUTH_SEED + RUNS - 1: each
run its own split, initialisation and shuffles, none shared with the seeds
that select (0 to 19). The file keeps, per combination, the number of
validation digits right summed over the runs after each epoch (exact
integers, so the mean of any budget up to EPOCHS is exact), and each run's
count after the last epoch, which `--check` recomputes. A recomputed run may
differ from the file by up to SLACK digits: the MLP's matrix products go
through the BLAS of the machine, whose kernels round differently on other
CPUs. On the machine that made the file, 16 of 16 recomputed runs matched
exactly. A changed grid, seed or run count is caught by the parameters, a
changed training mostly by the counts.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from stages import STAGES, TRUTH_SEED, VALIDATION

RUNS = 60
EPOCHS = 20
PATH = Path(__file__).with_name("truth.json")
#: Validation digits a recomputed run may differ by (see above).
SLACK = 2


def params() -> dict[str, object]:
    """What the file was made from; `load` refuses a file made otherwise."""
    return {
        "runs": RUNS,
        "epochs": EPOCHS,
        "first_seed": TRUTH_SEED,
        "validation": VALIDATION,
        "grids": {name: stage.grid for name, stage in STAGES.items()},
    }


def correct(stage: str, seed: int, hparams: dict[str, object]) -> list[int]:
    """Validation digits right after each epoch of one run."""
    curve = STAGES[stage].curve(seed, hparams, EPOCHS)
    return [round(accuracy * VALIDATION) for accuracy in curve]


def make() -> dict[str, object]:
    stages = {}
    for name, stage in STAGES.items():
        start = time.perf_counter()
        rows = []
        for hparams in stage.combinations():
            runs = [correct(name, TRUTH_SEED + r, hparams) for r in range(RUNS)]
            rows.append(
                {
                    "hparams": hparams,
                    "correct_sum": [sum(c) for c in zip(*runs, strict=True)],
                    "final_correct": [run[-1] for run in runs],
                }
            )
        stages[name] = rows
        print(f"{name}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return {"params": params(), "stages": stages}


def load() -> dict[str, list[list[float]]]:
    """Per stage, per combination (in `combinations()` order), the true quality
    after each epoch: the mean accuracy over the runs."""
    data = json.loads(PATH.read_text())
    if data["params"] != json.loads(json.dumps(params())):
        raise ValueError(f"{PATH} was made with other parameters: run benchmarks/truth.py")
    return {
        name: [[s / (RUNS * VALIDATION) for s in row["correct_sum"]] for row in rows]
        for name, rows in data["stages"].items()
    }


def check(samples: int) -> list[str]:
    """Recomputes `samples` (combination, run) pairs a stage, drawn at random,
    and returns each mismatch with the file."""
    data = json.loads(PATH.read_text())
    problems = []
    if data["params"] != json.loads(json.dumps(params())):
        problems.append("the file's parameters differ from the script's")
    rng = random.Random()
    for name, rows in data["stages"].items():
        for i, row in enumerate(rows):
            if sum(row["final_correct"]) != row["correct_sum"][-1]:
                problems.append(f"{name} #{i}: the runs' final counts do not sum to the last")
        for _ in range(samples):
            i, r = rng.randrange(len(rows)), rng.randrange(RUNS)
            hparams = STAGES[name].combinations()[i]
            if rows[i]["hparams"] != hparams:
                problems.append(f"{name} #{i}: {rows[i]['hparams']} in the file, {hparams} here")
            got, kept = correct(name, TRUTH_SEED + r, hparams)[-1], rows[i]["final_correct"][r]
            if abs(got - kept) > SLACK:
                problems.append(f"{name} {hparams} run {r}: {got} right here, {kept} in the file")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", type=int, metavar="N", help="recompute N runs a stage")
    args = parser.parse_args()
    if args.check is not None:
        problems = check(args.check)
        print("\n".join(problems) or f"{PATH.name} matches the script ({args.check} runs a stage)")
        sys.exit(1 if problems else 0)
    PATH.write_text(json.dumps(make(), separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
