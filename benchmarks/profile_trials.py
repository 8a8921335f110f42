"""Where a recorded no-op trial's time goes: cProfile of row 1's one-hparam
sweep (1,000 trials, `--hparams-logdir` in a temporary directory), top plugin
functions by cumulative time, as a Markdown table.

    python benchmarks/profile_trials.py               # the installed plugin
    python benchmarks/profile_trials.py --source DIR  # the plugin in DIR (a checkout)
    python benchmarks/profile_trials.py --logdir-in /dev/shm  # the logdir in memory
    python benchmarks/profile_trials.py --tiny        # 5 trials: the test suite's size

A VM's disk makes the time of `mkdir` and `open` vary several-fold from one
minute to the next; with the logdir on tmpfs the profile shows Python's work.

cProfile charges every call, so it inflates the plugin's many small functions
about twofold against a run without it; compare profiles with each other, and
wall times with bench.py.
"""

from __future__ import annotations

import argparse
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

SWEEP = textwrap.dedent("""
    from pytest_hparams import hparam_grid

    @hparam_grid(a=list(range({n})), metrics=["m"])
    def test_swept(a):
        return {{'m': 1.0}}
    """)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, help="a checkout whose pytest_hparams to profile")
    parser.add_argument("--trials", type=int, default=1000, help="trials of the sweep")
    parser.add_argument("--top", type=int, default=10, help="plugin functions shown")
    parser.add_argument("--tiny", action="store_true", help="5 trials (the test suite's size)")
    parser.add_argument("--logdir-in", type=Path, help="make the logdir in this directory")
    args = parser.parse_args()
    if args.tiny:
        args.trials = 5
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if args.source is not None:
        env["PYTHONPATH"] = str(args.source.resolve())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "pytest.ini").write_text("[pytest]\n")
        (root / "test_swept.py").write_text(SWEEP.format(n=args.trials))
        out = root / "run.prof"
        command = [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "pytest", "-q"]
        command += ["-p", "no:cacheprovider", "-p", "no:randomly"]
        for _ in range(2):  # the first run writes bytecode caches
            logdir = tempfile.mkdtemp(dir=args.logdir_in or root)
            subprocess.run(
                [*command, f"--hparams-logdir={logdir}"],
                cwd=root,
                env=env,
                stdout=subprocess.DEVNULL,
                check=True,
            )
            shutil.rmtree(logdir)
        stats = pstats.Stats(str(out)).stats  # type: ignore[attr-defined]
    rows = sorted(
        ((cum, calls, key) for key, (_, calls, _, cum, _) in stats.items() if _ours(key[0])),
        reverse=True,
    )
    print("| cumulative | calls | function |")
    print("|---|---|---|")
    for cum, calls, (path, line, name) in rows[: args.top]:
        where = path.split("pytest_hparams/")[-1]
        print(f"| {cum * 1000:.0f} ms | {calls:,} | `{where}:{line} {name}` |")


def _ours(path: str) -> bool:
    return f"pytest_hparams{os.sep}" in path and "benchmarks" not in path


if __name__ == "__main__":
    main()
