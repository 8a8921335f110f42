"""How the baseline gate behaves on noise: false alarms and detection.

    python benchmarks/noise.py            # the table in benchmarks/RESULTS.md
    python benchmarks/noise.py --runs 500 # quicker, coarser
    python benchmarks/noise.py --tiny     # 40 runs a cell: the test suite's size

Simulates a metric with normal noise (sigma 1, goal "max"). A baseline of n
repeats is saved; a new run of n repeats is drawn from the same distribution
(A/A: any failure is a false alarm) or from one shifted down by 1, 2 or 3
sigma (a real degradation: a failure is a detection). Each side is judged by
the plugin's own `gates.judge_repeats`, the code the gate runs:

- n >= 2: one-sided Welch's t-test at alpha 0.05, tolerance 0.
- n = 1: today's single-value rule at the tolerance a user needs for a 5%
  false-alarm rate: one-sided, the difference of two draws has sigma sqrt(2),
  so the tolerance is z(0.95) * sqrt(2) = 2.33 sigma.

Every draw is seeded, so a rerun prints the same table.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_hparams.gates import judge_repeats as judge
from pytest_hparams.metrics import Metric, Tolerance
from pytest_hparams.verdicts import Summary

ALPHA = 0.05
SHIFTS = (0.0, 1.0, 2.0, 3.0)


def single_value_tolerance(alpha: float) -> float:
    """The tolerance (in sigmas) at which two single draws differ by more
    than it, in the bad direction, with probability alpha."""
    return statistics.NormalDist().inv_cdf(1 - alpha) * math.sqrt(2)


def failure_rate(n: int, shift: float, runs: int, rng: random.Random) -> float:
    metric = Metric("accuracy", goal="max")
    tolerance = Tolerance(single_value_tolerance(ALPHA) if n == 1 else 0.0)
    failures = 0
    for _ in range(runs):
        base = Summary.of(rng.gauss(0.0, 1.0) for _ in range(n))
        run = Summary.of(rng.gauss(-shift, 1.0) for _ in range(n))
        verdict, _, _ = judge(metric, run, base, tolerance, ALPHA)
        failures += verdict == "regressed"
    return failures / runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4000, help="simulated runs per cell")
    parser.add_argument(
        "--tiny", action="store_true", help="40 runs per cell (the test suite's size)"
    )
    args = parser.parse_args()
    if args.tiny:
        args.runs = 40
    rng = random.Random(20261129)
    header = ["rule", "n", "false alarms (A/A)", "detects -1 sigma", "-2 sigma", "-3 sigma"]
    rows = []
    tol = single_value_tolerance(ALPHA)
    for n in (1, 3, 5, 10):
        rates = [failure_rate(n, shift, args.runs, rng) for shift in SHIFTS]
        rule = (
            f"single value, tolerance {tol:.2f} sigma"
            if n == 1
            else f"Welch's t-test, alpha {ALPHA}, tolerance 0"
        )
        rows.append([rule, str(n), *(f"{r:.1%}" for r in rates)])
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\n{args.runs} simulated runs per cell; seeded, so a rerun prints the same table.")


if __name__ == "__main__":
    main()
