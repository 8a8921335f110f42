"""Measures what pytest-hparams costs, side by side with what it replaces.

    python benchmarks/bench.py                 # full sizes, prints a table
    python benchmarks/bench.py --markdown      # the table as Markdown (RESULTS.md)
    python benchmarks/bench.py --tiny          # seconds; what the test suite runs

Every measurement runs whole pytest processes (startup is part of the cost),
interleaving the two sides and taking medians, since shared machines are noisy.
Results are ratios of the two sides measured in the same run.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Row:
    name: str
    ours: str
    theirs: str
    ratio: str
    target: str
    met: str

    def cells(self) -> list[str]:
        return [self.name, self.ours, self.theirs, self.ratio, self.target, self.met]


HEADER = ["measurement", "pytest-hparams", "baseline", "ratio", "target", "met"]


def run_measured(args: list[str], cwd: Path) -> tuple[float, int]:
    """Wall seconds and this process's peak RSS (KiB), via os.wait4."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV
    )
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}: {err[-2000:]}")
    return elapsed, usage.ru_maxrss


# Users' Pythons cache bytecode; a machine that sets PYTHONDONTWRITEBYTECODE
# would charge every run for compiling the plugin and pytest from source.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def pytest_cmd(*args: str) -> list[str]:
    # pytest-randomly, where installed, imports numpy in every run and
    # shuffles: neither belongs in what is measured.
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


def medians_of(repeat: int, *sides: Callable[[int], tuple[float, int]]) -> list[tuple[float, int]]:
    """Interleaves the sides `repeat` times after a warm-up run of each
    (bytecode caches, disk caches); returns each side's median seconds and
    median peak RSS."""
    for side in sides:
        side(-1)
    runs: list[list[tuple[float, int]]] = [[] for _ in sides]
    for i in range(repeat):
        for side, results in zip(sides, runs, strict=True):
            results.append(side(i))
    return [
        (statistics.median(t for t, _ in results), int(statistics.median(m for _, m in results)))
        for results in runs
    ]


def medians(
    repeat: int, a: Callable[[int], tuple[float, int]], b: Callable[[int], tuple[float, int]]
) -> tuple[float, float, int, int]:
    """`medians_of` two sides: median seconds of a and b, then their peak RSS."""
    (ta, ma), (tb, mb) = medians_of(repeat, a, b)
    return ta, tb, ma, mb


def grid_sizes(n: int) -> list[int]:
    """Four hparams whose product is n (n a power of ten, or small)."""
    sizes = [1, 1, 1, 1]
    i = 0
    while n > 1:
        factor = 10 if n % 10 == 0 else n
        sizes[i % 4] *= factor
        n //= factor
        i += 1
    return sizes


def swept_module(n: int, body: str = "return {'m': 1.0}") -> str:
    a, b, c, d = grid_sizes(n)
    return textwrap.dedent(f"""
        from pytest_hparams import hparam_grid

        @hparam_grid(a=list(range({a})), b=list(range({b})), c=list(range({c})),
                     d=list(range({d})), metrics=["m"])
        def test_swept(a, b, c, d):
            {body}
        """)


def plain_module(n: int) -> str:
    a, b, c, d = grid_sizes(n)
    return textwrap.dedent(f"""
        import pytest

        @pytest.mark.parametrize("d", list(range({d})))
        @pytest.mark.parametrize("c", list(range({c})))
        @pytest.mark.parametrize("b", list(range({b})))
        @pytest.mark.parametrize("a", list(range({a})))
        def test_plain(a, b, c, d):
            pass
        """)


def project(root: Path, name: str, files: dict[str, str]) -> Path:
    path = root / name
    path.mkdir()
    (path / "pytest.ini").write_text("[pytest]\n")
    for filename, text in files.items():
        (path / filename).write_text(text)
    return path


# --- the five measurements ---------------------------------------------------------


def flat_swept_module(n: int) -> str:
    return textwrap.dedent(f"""
        from pytest_hparams import hparam_grid

        @hparam_grid(a=list(range({n})), metrics=["m"])
        def test_swept(a):
            return {{'m': 1.0}}
        """)


def flat_plain_module(n: int) -> str:
    return textwrap.dedent(f"""
        import pytest

        @pytest.mark.parametrize("a", list(range({n})))
        def test_plain(a):
            pass
        """)


def per_trial_overhead(root: Path, n: int, repeat: int, flat: bool = False) -> Row:
    """A recorded no-op sweep against the same items as plain parametrize.

    The grid form (four hparams against four stacked parametrize decorators)
    has pytest's costlier items; the flat form (one hparam against one
    parametrize) its cheapest, where the plugin's share shows most.
    """
    form = "flat" if flat else "grid"
    swept_text = flat_swept_module(n) if flat else swept_module(n)
    plain_text = flat_plain_module(n) if flat else plain_module(n)
    swept = project(root, f"overhead_swept_{form}", {"test_swept.py": swept_text})
    plain = project(root, f"overhead_plain_{form}", {"test_plain.py": plain_text})
    floors: list[float] = []

    def ours(i: int) -> tuple[float, int]:
        measured = run_measured(
            pytest_cmd(f"--hparams-logdir={root / f'overhead_{form}{i}'}"), swept
        )
        # The disk of a VM is the noisy part: its floor is taken right after
        # each run, in the same directory, and the median of those is shown.
        floors.append(fs_floor(root / f"floor_{form}{i}", n))
        return measured

    sides = [ours, lambda i: run_measured(pytest_cmd(), plain)]
    memory = Path("/dev/shm")
    if memory.is_dir() and os.access(memory, os.W_OK):
        # The same run with its logdir in memory: the plugin's own work alone.
        in_memory = Path(tempfile.mkdtemp(prefix="bench-", dir=memory))
        sides.append(
            lambda i: run_measured(
                pytest_cmd(f"--hparams-logdir={in_memory / f'overhead_{form}{i}'}"), swept
            )
        )
    results = medians_of(repeat, *sides)
    (ours_s, _), (theirs, _) = results[:2]
    floor = statistics.median(floors)
    best = (theirs + n * floor) / theirs
    shape = "one hparam vs one parametrize" if flat else "4-hparam grid vs 4 parametrize"
    # Judged with the logdir in memory: the plugin's own work, which a VM's
    # disk (its mkdir and first-file costs vary several-fold) would swamp.
    # On disk, the ratio is shown beside the file-system floor: that work
    # alone, in series, in the same directory, right after each run.
    if len(results) == 3:
        shutil.rmtree(in_memory, ignore_errors=True)
        judged, where = results[2][0], "logdir on tmpfs"
    else:
        judged, where = ours_s, "logdir on disk (no tmpfs here)"
    ratio = judged / theirs
    note = (
        f"; plugin {(judged - theirs) / n * 1e6:.0f} us/trial in-process ({where}); "
        f"on disk {ours_s / theirs:.2f}x ({ours_s:.2f} s), its file-system floor "
        f"{floor * 1e6:.0f} us/trial in series (alone: {best:.2f}x)"
    )
    return Row(
        f"{n:,}-trial no-op sweep, recorded (whole run), {shape}",
        f"{judged:.2f} s",
        f"{theirs:.2f} s plain parametrize",
        f"{ratio:.2f}x",
        "<= 1.25x (tmpfs)",
        _met(ratio <= 1.25) + note,
    )


def fs_floor(root: Path, n: int) -> float:
    """Seconds per trial of only the unavoidable work of recording one, in the
    same temporary directory: make its run directory, create its event file,
    write a session's worth of bytes (~420) and close it."""
    runs = root / "test_swept.py" / "test_swept"
    runs.mkdir(parents=True)
    data = b"x" * 420
    start = time.perf_counter()
    for i in range(n):
        run = runs / f"a={i}"
        os.mkdir(run)
        with open(run / f"events.out.tfevents.0.host.{i}.pytest-hparams", "wb") as handle:
            handle.write(data)
    return (time.perf_counter() - start) / n


CPU_BOUND = """
{header}
def work(seconds):
    # A fixed amount of pure-Python work, about `seconds` long here.
    total = 0
    for i in range(int(seconds * 14_000_000)):
        total += i % 7
    return total

{decorator}
def test_cpu(a):
    work({seconds})
    {ret}
"""


def under_xdist(root: Path, trials: int, seconds: float, repeat: int) -> Row:
    """A CPU-bound sweep under `-n 2`, with the plugin and a logdir, against
    plain parametrize under `-n 2`: a guard on the plugin's fixed costs."""
    values = list(range(trials))

    def cpu_project(name: str, header: str, decorator: str, ret: str) -> Path:
        text = CPU_BOUND.format(header=header, decorator=decorator, seconds=seconds, ret=ret)
        return project(root, name, {"test_cpu.py": text})

    swept = cpu_project(
        "xdist_swept",
        "from pytest_hparams import hparam_grid",
        f"@hparam_grid(a={values})",
        "return {'m': float(a)}",
    )
    plain = cpu_project(
        "xdist_plain", "import pytest", f"@pytest.mark.parametrize('a', {values})", "pass"
    )
    ours, theirs, _, _ = medians(
        repeat,
        lambda i: run_measured(
            pytest_cmd("-n", "2", f"--hparams-logdir={root / f'xdist{i}'}"), swept
        ),
        lambda i: run_measured(pytest_cmd("-n", "2", "-p", "no:hparams"), plain),
    )
    ratio = ours / theirs
    return Row(
        f"{trials} CPU-bound trials of ~{seconds:g} s under `-n 2`, recorded",
        f"{ours:.2f} s",
        f"{theirs:.2f} s plain parametrize `-n 2`",
        f"{ratio:.2f}x",
        "report (a guard)",
        "-",
    )


TUTORIAL = """
import pytest
import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

HP_A = hp.HParam("a", hp.Discrete(list(range({a}))))
HP_B = hp.HParam("b", hp.Discrete(list(range({b}))))
HP_C = hp.HParam("c", hp.Discrete(list(range({c}))))
HP_D = hp.HParam("d", hp.Discrete(list(range({d}))))
LOGDIR = "{logdir}"

with tf.summary.create_file_writer(LOGDIR).as_default():
    hp.hparams_config(hparams=[HP_A, HP_B, HP_C, HP_D], metrics=[hp.Metric("m")])

@pytest.mark.parametrize("d", list(range({d})))
@pytest.mark.parametrize("c", list(range({c})))
@pytest.mark.parametrize("b", list(range({b})))
@pytest.mark.parametrize("a", list(range({a})))
def test_tutorial(a, b, c, d):
    run_dir = f"{{LOGDIR}}/run-{{a}}-{{b}}-{{c}}-{{d}}"
    with tf.summary.create_file_writer(run_dir).as_default():
        hp.hparams({{HP_A: a, HP_B: b, HP_C: c, HP_D: d}})
        tf.summary.scalar("m", 1.0, step=1)
"""


def against_tutorial(root: Path, n: int, repeat: int) -> tuple[Row, int]:
    """Returns the row and the tutorial's bytes per trial."""
    if importlib.util.find_spec("tensorflow") is None:
        return Row(
            f"{n}-trial sweep vs tf.summary + hp.hparams",
            "-",
            "-",
            "-",
            ">= 10x",
            "skipped: TensorFlow not installed",
        ), 0
    a, b, c, d = grid_sizes(n)
    swept = project(root, "tutorial_ours", {"test_swept.py": swept_module(n)})
    tut = root / "tutorial_theirs"
    tut.mkdir()
    (tut / "pytest.ini").write_text("[pytest]\n")

    def theirs(i: int) -> tuple[float, int]:
        logdir = tut / f"logs{i}"
        text = TUTORIAL.format(a=a, b=b, c=c, d=d, logdir=logdir.as_posix())
        (tut / "test_tutorial.py").write_text(text)
        return run_measured(pytest_cmd("-p", "no:hparams"), tut)

    ours, tutorial, _, _ = medians(
        repeat,
        lambda i: run_measured(pytest_cmd(f"--hparams-logdir={root / f'ours{i}'}"), swept),
        theirs,
    )
    for logdir in (root / "ours0", tut / "logs0"):
        sessions = count_sessions(logdir)
        if sessions != n:
            raise AssertionError(
                f"{logdir}: TensorBoard's backend sees {sessions} sessions, not {n}"
            )
    speedup = tutorial / ours
    row = Row(
        f"{n}-trial sweep vs tf.summary + hp.hparams (whole run)",
        f"{ours:.2f} s",
        f"{tutorial:.2f} s tutorial's way",
        f"{speedup:.1f}x faster",
        ">= 10x",
        _met(speedup >= 10) + f"; both: {n} sessions via TensorBoard's backend",
    )
    return row, _bytes(tut / "logs0") // n


def startup(root: Path, repeat: int) -> Row:
    files = {
        f"test_plain_{i}.py": "def test_a():\n    pass\n\ndef test_b():\n    pass\n"
        for i in range(20)
    }
    files["conftest.py"] = textwrap.dedent("""
        import sys

        def pytest_unconfigure():
            heavy = [m for m in ("tensorflow", "tensorboard", "numpy", "google.protobuf")
                     if m in sys.modules]
            with open("imported.txt", "w") as f:
                f.write(",".join(heavy))
        """)
    path = project(root, "startup", files)
    ours, theirs, _, _ = medians(
        repeat,
        lambda i: run_measured(pytest_cmd("--collect-only"), path),
        lambda i: run_measured(pytest_cmd("--collect-only", "-p", "no:hparams"), path),
    )
    run_measured(pytest_cmd("--collect-only"), path)
    heavy = (path / "imported.txt").read_text() or "none"
    diff_ms = (ours - theirs) * 1000
    return Row(
        "`--collect-only`, 40 plain tests: plugin on vs `-p no:hparams`",
        f"{ours * 1000:.0f} ms",
        f"{theirs * 1000:.0f} ms",
        f"{diff_ms:+.0f} ms",
        "< 30 ms",
        _met(diff_ms < 30) + f"; heavy modules imported: {heavy}",
    )


def large_grid(root: Path, n: int, repeat: int) -> list[Row]:
    swept = project(root, "grid_swept", {"test_swept.py": swept_module(n)})
    plain = project(root, "grid_plain", {"test_plain.py": plain_module(n)})
    ours, theirs, mem_ours, mem_theirs = medians(
        repeat,
        lambda i: run_measured(pytest_cmd("--collect-only"), swept),
        lambda i: run_measured(pytest_cmd("--collect-only"), plain),
    )
    t_ratio, m_ratio = ours / theirs, mem_ours / mem_theirs
    return [
        Row(
            f"collect a {n:,}-combination grid: time",
            f"{ours:.2f} s",
            f"{theirs:.2f} s plain parametrize",
            f"{t_ratio:.2f}x",
            "<= 1.2x",
            _met(t_ratio <= 1.2),
        ),
        Row(
            f"collect a {n:,}-combination grid: peak memory",
            f"{mem_ours / 1024:.0f} MiB",
            f"{mem_theirs / 1024:.0f} MiB plain parametrize",
            f"{m_ratio:.2f}x",
            "<= 1.2x",
            _met(m_ratio <= 1.2),
        ),
    ]


def dashboard_scale(root: Path, n: int, tutorial_bytes: int) -> Row:
    swept = project(root, "scale", {"test_swept.py": swept_module(n)})
    logdir = swept / "logs"
    write_time, _ = run_measured(
        pytest_cmd(f"--hparams-logdir={logdir}", "--hparams-no-table"), swept
    )
    start = time.perf_counter()
    sessions = count_sessions(logdir)
    read_time = time.perf_counter() - start
    if sessions != n:
        raise AssertionError(f"TensorBoard's backend sees {sessions} sessions, not {n}")
    ours = _bytes(logdir) // n
    theirs = f"{tutorial_bytes} B/trial tutorial's way" if tutorial_bytes else "-"
    ratio = f"{ours / tutorial_bytes:.2f}x the bytes" if tutorial_bytes else "-"
    return Row(
        f"{n:,}-trial logdir read by TensorBoard's backend",
        f"{ours} B/trial; read in {read_time:.1f} s",
        theirs,
        ratio,
        "report",
        f"written in {write_time:.1f} s (whole run); {sessions:,} sessions read back",
    )


def count_sessions(logdir: Path) -> int:
    """Sessions as TensorBoard's hparams backend lists them (as the dashboard does)."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import api_pb2, backend_context, list_session_groups

    multiplexer = plugin_event_multiplexer.EventMultiplexer(max_reload_threads=4)
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, str(logdir))
    tb = base_plugin.TBContext(logdir=str(logdir), multiplexer=multiplexer, data_provider=provider)
    request = api_pb2.ListSessionGroupsRequest(allowed_statuses=[0, 1, 2, 3], slice_size=1_000_000)
    response = list_session_groups.Handler(
        context.RequestContext(), backend_context.Context(tb), "", request
    ).run()
    return sum(len(g.sessions) for g in response.session_groups)


def _bytes(logdir: Path) -> int:
    return sum(p.stat().st_size for p in logdir.rglob("*") if p.is_file())


def _met(ok: bool) -> str:
    return "yes" if ok else "NO"


def format_text(rows: list[Row]) -> str:
    table = [HEADER, *(r.cells() for r in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADER))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() for row in table
    )


def format_markdown(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="tiny sizes and one run a side, to check the script runs (the test suite's size)",
    )
    parser.add_argument("--repeat", type=int, default=5, help="runs per side (median)")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument(
        "--only",
        choices=["overhead", "startup"],
        help="only the per-trial overhead rows (both forms), or only the startup row",
    )
    args = parser.parse_args()
    repeat = 1 if args.tiny else args.repeat
    sizes = (
        {"trials": 10, "tutorial": 10, "grid": 100, "scale": 10, "cpu_seconds": 0.05}
        if args.tiny
        else {"trials": 1000, "tutorial": 100, "grid": 10_000, "scale": 10_000, "cpu_seconds": 1.4}
    )

    root = Path(tempfile.mkdtemp(prefix="hparams-bench-"))
    # The startup row's difference is a few ms: full sizes take the median of
    # many runs; --tiny one a side, which still runs and reads the row.
    startup_repeat = 1 if args.tiny else max(repeat, 3) * 2
    if args.only == "startup":
        try:
            rows = [startup(root, startup_repeat)]
        finally:
            shutil.rmtree(root, ignore_errors=True)
        print(format_markdown(rows) if args.markdown else format_text(rows))
        return
    if args.only == "overhead":
        try:
            rows = [
                per_trial_overhead(root, sizes["trials"], repeat),
                per_trial_overhead(root, sizes["trials"], repeat, flat=True),
            ]
        finally:
            shutil.rmtree(root, ignore_errors=True)
        print(format_markdown(rows) if args.markdown else format_text(rows))
        return
    try:
        # Peak memory first: Linux carries a process's peak RSS across fork and
        # exec, so children forked after this script loads TensorBoard's
        # backend (to count sessions) would all report its peak.
        grid = large_grid(root, sizes["grid"], repeat)
        rows = [
            per_trial_overhead(root, sizes["trials"], repeat),
            per_trial_overhead(root, sizes["trials"], repeat, flat=True),
        ]
        tutorial_row, tutorial_bytes = against_tutorial(root, sizes["tutorial"], repeat)
        rows.append(tutorial_row)
        rows.append(startup(root, startup_repeat))
        rows += grid
        rows.append(dashboard_scale(root, sizes["scale"], tutorial_bytes))
        rows.append(under_xdist(root, 8, sizes["cpu_seconds"], repeat))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}; medians of {repeat} run(s) per side"
    )
    print(format_markdown(rows) if args.markdown else format_text(rows))


if __name__ == "__main__":
    main()
