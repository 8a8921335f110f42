"""The plugin's options together: real sweeps over pairs of option values.

The cases are a covering array: every allowed pair of values of two options
meets in at least one case, and every triple of the options that decide where
a regression is judged. Each case runs a tiny sweep in real pytest processes (a
baseline run first where the case has one, then the case's run, then a second
run for `--hparams-resume` or `--lf`; shards are two runs and a `merge`), and
checks that pytest, the table, the JSON report, JUnit, the Markdown summary and
TensorBoard's own backend tell the same story, trial by trial.
"""

from __future__ import annotations

import json
import re
import sys
import xml.etree.ElementTree as ET
import zlib
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from itertools import combinations, product
from pathlib import Path
from typing import Any

import pytest
from conftest import Dashboard
from tensorboard.plugins.hparams import api_pb2

# A 2x2 grid scoring a:1-b:x 0.10, a:1-b:y 0.15, a:2-b:x 0.20, a:2-b:y 0.25,
# each plus noise from the trial's seed (under 0.01), the same on every run,
# which gives repeats the variance the Welch gate needs. A number in drop.txt
# takes that much off the best combination, a:2-b:y (to 0.135, between the
# others): the sweep's new best (a:2-b:x) is worse than the baseline's best,
# so both `--hparams-gate each` and `best` must catch it. A number in
# floor.txt is the score's minimum, which a:1-b:x fails and every other
# trial passes, dropped or not: a trial that fails on every run, the
# baseline's included.
SWEEP = """
from pathlib import Path
from pytest_hparams import Metric, hparam_grid

HERE = Path(__file__).parent
DROP = HERE / "drop.txt"
FLOOR = HERE / "floor.txt"

@hparam_grid(
    a=[1, 2],
    b=["x", "y"],
    metrics=[Metric("score", min=float(FLOOR.read_text()) if FLOOR.exists() else None)],
)
def test_sweep(a, b, trial):
    drop = float(DROP.read_text()) if DROP.exists() and (a, b) == (2, "y") else 0.0
    return {"score": a / 10 + (0.05 if b == "y" else 0.0) + trial.seed % 1000 / 1e5 - drop}
"""
DROP = 0.115
FLOOR = 0.12
REGRESSED = (2, "y")
FAILING = (1, "x")
# Sorted by node id, as shards deal them out round-robin.
COMBOS = [(1, "x"), (1, "y"), (2, "x"), (2, "y")]

# Every option's values, in the order.
PARAMETERS: dict[str, list[Any]] = {
    "gate": ["each", "best"],
    "repeats": [1, 3],
    "baseline": ["absent", "present", "regressed"],
    # A trial that fails in every run: what --lf reruns, resume runs again,
    # and the exit status and `merge` must report.
    "failing": ["none", "one"],
    "output": ["default", "q", "v", "rA"],
    "n": [0, 2],
    "shards": ["none", "merge"],
    "resume": ["no", "yes"],
    "lf": ["no", "yes"],
    # The JSON report is written by every run, as the trial-by-trial record the
    # other outputs are checked against (and shards need it for `merge`); the
    # other two reports are switched on and off.
    "markdown": ["off", "on"],
    "junit": ["off", "on"],
    "randomly": ["off", "on"],
}
OUTPUT_ARGS = {"q": ["-q"], "default": [], "v": ["-v"], "rA": ["-rA"]}


def allowed(values: Mapping[str, Any]) -> bool:
    """Whether (part of) a case makes sense; `values` may name only some options."""
    # In one directory the two shards share one .pytest_cache: a shard's --lf
    # keeps the other shard's failures and then deselects them all (no test
    # runs, exit 5). In CI each shard is a job with a cache of its own, and
    # `merge` reads reports, not a cache: --lf over shards is no real setup.
    return not (values.get("shards") == "merge" and values.get("lf") == "yes")


@dataclass(frozen=True)
class Case:
    gate: str
    repeats: int
    baseline: str
    failing: str
    output: str
    n: int
    shards: str
    resume: str
    lf: str
    markdown: str
    junit: str
    randomly: str

    @property
    def id(self) -> str:
        # name:value, as the plugin's own ids: -k takes no `=` (-k "gate:best").
        return "-".join(f"{f.name}:{getattr(self, f.name)}" for f in fields(self))

    @property
    def second_run(self) -> bool:
        return self.resume == "yes" or self.lf == "yes"

    def item_fails(self, combo: tuple[int, str]) -> bool:
        """Whether a trial's item fails when it runs: below its minimum, or
        regressed where a single trial is judged (`--hparams-gate each` without
        repeats; with them the verdict needs all the repeats)."""
        if self.failing == "one" and combo == FAILING:
            return True
        return (
            self.baseline == "regressed"
            and self.gate == "each"
            and self.repeats == 1
            and combo == REGRESSED
        )

    def gate_fails(self, trials: Mapping[str, str], shard: bool) -> bool:
        """Whether the run-level gate (repeats, or the sweep's best) must fail a
        run holding `trials` (run or resumed: a resumed trial's recorded metrics
        are compared too)."""
        if self.baseline != "regressed":
            return False
        if self.gate == "best":
            # A shard sees some combinations only: the best is merge's to judge.
            return not shard
        return self.repeats > 1 and any(COMBO_OF[t] == REGRESSED for t in trials)


# Where a regression is judged turns on three options at a time: the item
# (`each` without repeats), the end of the session (repeats, or `best`) or
# `merge` alone (`best` under shards). Every triple of their values has a
# case, not only every pair.
TRIPLES = [("gate", "repeats", "baseline"), ("gate", "baseline", "shards")]


# Twelve cases, the fewest there can be: output (4 values) and baseline (3)
# make 12 pairs, and so do gate, repeats and baseline. Of the twelve-case
# arrays, one with few costly cases: a second run over shards, -n 2, a
# baseline run. The coverage test below checks it; an option or value added
# needs rows for the pairs it makes.
ROWS = [
    ("each", 1, "absent", "none", "v", 0, "merge", "yes", "no", "off", "on", "off"),
    ("each", 1, "present", "none", "default", 0, "merge", "no", "no", "on", "on", "off"),
    ("each", 1, "regressed", "none", "q", 2, "merge", "no", "no", "off", "off", "off"),
    ("each", 3, "absent", "one", "rA", 0, "none", "no", "no", "on", "off", "on"),
    ("each", 3, "present", "one", "v", 2, "none", "no", "yes", "off", "on", "off"),
    ("each", 3, "regressed", "none", "rA", 0, "none", "yes", "yes", "off", "off", "off"),
    ("best", 1, "absent", "one", "default", 2, "none", "yes", "yes", "on", "off", "off"),
    ("best", 1, "present", "one", "rA", 2, "merge", "no", "no", "on", "on", "on"),
    ("best", 1, "regressed", "one", "v", 0, "merge", "no", "no", "on", "off", "on"),
    ("best", 3, "absent", "one", "q", 0, "merge", "no", "no", "off", "on", "off"),
    ("best", 3, "present", "none", "q", 0, "none", "yes", "yes", "on", "off", "on"),
    ("best", 3, "regressed", "one", "default", 0, "none", "no", "no", "off", "on", "on"),
]
CASES = [Case(*row) for row in ROWS]


def score(case: Case, combo: tuple[int, str]) -> float:
    """A combination's score without its noise."""
    a, b = combo
    drop = DROP if case.baseline == "regressed" and combo == REGRESSED else 0.0
    return a / 10 + (0.05 if b == "y" else 0.0) - drop


def trial_ids(combo: tuple[int, str], repeats: int) -> list[str]:
    stem = f"test_sweep.py::test_sweep[a:{combo[0]}-b:{combo[1]}"
    if repeats == 1:
        return [stem + "]"]
    return [f"{stem}-repeat:{r}]" for r in range(repeats)]


COMBO_OF = {t: c for c in COMBOS for r in (1, 3) for t in trial_ids(c, r)}


def test_the_cases_cover_every_allowed_pair_and_the_verdicts_triples() -> None:
    names = list(PARAMETERS)
    for first, second in combinations(names, 2):
        for x in PARAMETERS[first]:
            for y in PARAMETERS[second]:
                if allowed({first: x, second: y}):
                    assert any(getattr(c, first) == x and getattr(c, second) == y for c in CASES), (
                        f"{first}={x} and {second}={y} never meet"
                    )
    for names in TRIPLES:
        met = {tuple(getattr(c, name) for name in names) for c in CASES}
        assert met == set(product(*(PARAMETERS[name] for name in names))), names
    assert len({c.id for c in CASES}) == len(CASES)
    assert all(allowed(vars(c)) for c in CASES)


# What the JSON report's outcomes are in pytest's terminal summary.
PYTEST_OUTCOME = {"passed": "passed", "failed": "failed", "resumed": "skipped"}
COUNTS = re.compile(
    r"^(?:test_sweep\.py::test_sweep: )?(?:(\d+) combinations?, )?(\d+) trials?: "
    r"([a-z0-9, ]+)(.*)$",
    re.MULTILINE,
)
BEST = re.compile(r"; best score=[^;]* at \[([^\]]*)\]")


@dataclass
class Counts:
    combinations: int | None
    outcomes: Counter[str]
    best: str | None  # the best trial's params, as the terminal names it


def counts_line(text: str, where: str) -> Counts:
    """The table's (or Markdown summary's) counts line."""
    found = COUNTS.findall(text)
    assert len(found) == 1, f"{where}: expected one counts line, found {found}"
    combos, total, parts, rest = found[0]
    tally: Counter[str] = Counter()
    for part in parts.split(", "):
        number, outcome = part.strip().split(" ", 1)
        tally[outcome] = int(number)
    assert sum(tally.values()) == int(total), f"{where}: {found[0]}"
    best = BEST.match(rest)
    return Counts(int(combos) if combos else None, tally, best[1] if best else None)


def read_report(path: Path) -> dict[str, dict[str, Any]]:
    """The JSON report's trials by node id: outcome and metrics."""
    data = json.loads(path.read_text())
    assert [s["test"] for s in data["sweeps"]] == ["test_sweep.py::test_sweep"], path
    trials = [t for s in data["sweeps"] for t in s["trials"]]
    by_id = {t["nodeid"]: t for t in trials}
    assert len(by_id) == len(trials), f"{path}: a trial listed twice"
    return by_id


@dataclass
class JUnitCase:
    outcome: str
    hparams: dict[str, str]
    metrics: dict[str, float]


def read_junit(path: Path) -> dict[str, JUnitCase]:
    """Each testcase's outcome, `hparam.*` and `metric.*` properties, by node id."""
    out = {}
    for case in ET.parse(path).iter("testcase"):
        nodeid = f"{case.get('classname')}.py::{case.get('name')}"
        outcome = "passed"
        for tag, name in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
            if case.find(tag) is not None:
                outcome = name
        properties = {p.get("name", ""): p.get("value", "") for p in case.iter("property")}
        hparams = {k[len("hparam.") :]: v for k, v in properties.items() if k.startswith("hparam.")}
        metrics = {
            k[len("metric.") :]: float(v) for k, v in properties.items() if k.startswith("metric.")
        }
        assert nodeid not in out, f"{path}: {nodeid} twice"
        out[nodeid] = JUnitCase(outcome, hparams, metrics)
    return out


def read_sessions(board: Dashboard) -> dict[str, tuple[str, dict[str, float]]]:
    """Each session TensorBoard shows, by the trial's node id: status and metrics."""
    assert board.hparam_names == {"a", "b", "pytest.sweep"}, board.hparam_names
    assert board.metric_names == {"score"}, board.metric_names
    out = {}
    for group in board.groups:
        combo_id = group.name.split(" · ", 1)[1]
        hparams = Dashboard.hparams(group)
        assert (hparams["a"], hparams["b"]) == COMBO_OF[combo_id], group.name
        for session in group.sessions:
            repeat = re.search(r"-repeat=(\d+)$", session.name)
            nodeid = combo_id if repeat is None else f"{combo_id[:-1]}-repeat:{repeat[1]}]"
            assert nodeid not in out, f"{nodeid} has two sessions"
            metrics = {m.name.tag: m.value for m in session.metric_values}
            out[nodeid] = (api_pb2.Status.Name(session.status), metrics)
    return out


def same_metrics(got: Mapping[str, float], want: Mapping[str, float]) -> bool:
    # TensorBoard stores float32, and a resumed trial's values come back from it.
    return got.keys() == want.keys() and all(
        got[k] == pytest.approx(want[k], rel=1e-6, abs=1e-9) for k in want
    )


class Sweep:
    """One case's runs in one directory, and what each of them must show."""

    def __init__(
        self, case: Case, pytester: pytest.Pytester, dashboard: Callable[[Path], Dashboard]
    ) -> None:
        self.case = case
        self.pytester = pytester
        self.dashboard = dashboard
        # What the logdir must hold: each trial that ran, its status and metrics.
        self.sessions: dict[str, tuple[str, dict[str, float]]] = {}
        # The last pass's failed items: what --lf reruns.
        self.failed: set[str] = set()

    def trials(self, shard: int | None) -> list[str]:
        combos = COMBOS if shard is None else COMBOS[shard - 1 :: 2]
        return [t for c in combos for t in trial_ids(c, self.case.repeats)]

    def expected(self, second: bool, shard: int | None) -> dict[str, str]:
        """Each trial the run must report, with its outcome in the JSON's words."""
        case = self.case
        trials = self.trials(shard)
        if second and case.lf == "yes":
            # pytest's --lf reruns the last failures, or everything when none failed.
            trials = [t for t in trials if t in self.failed] or trials
        out = {}
        for t in trials:
            recorded = self.sessions.get(t, ("",))[0] == "STATUS_SUCCESS"
            if second and case.resume == "yes" and recorded:
                out[t] = "resumed"
            else:
                out[t] = "failed" if case.item_fails(COMBO_OF[t]) else "passed"
        return out

    def run_pass(self, second: bool) -> None:
        name = "second" if second else "first"
        if self.case.shards == "none":
            expected = self.run_pytest(name, second, None)
        else:
            expected = {}
            reports = []
            for shard in (1, 2):
                expected |= self.run_pytest(f"{name}-shard{shard}", second, shard)
                reports.append(f"{name}-shard{shard}.json")
            self.run_merge(name, reports, expected)
        self.failed = {t for t, outcome in expected.items() if outcome == "failed"}

    def args(self, name: str, second: bool, shard: int | None) -> list[str]:
        case = self.case
        args = [
            "--hparams-logdir=logs",
            f"--hparams-json={name}.json",
            f"--hparams-gate={case.gate}",
            *OUTPUT_ARGS[case.output],
            "-n",
            str(case.n),
        ]
        if case.repeats > 1:
            args.append(f"--hparams-repeats={case.repeats}")
        if case.baseline != "absent":
            args.append("--hparams-baseline=base.json")
        if case.randomly == "on":
            # A seed of the case's own: a failure reproduces with its order.
            seed = zlib.crc32(case.id.encode())
            args += ["-p", "randomly", f"--randomly-seed={seed}"]
        else:
            args += ["-p", "no:randomly"]
        if case.markdown == "on":
            args.append(f"--hparams-markdown={name}.md")
        if case.junit == "on":
            args.append(f"--junitxml={name}.xml")
        if shard is not None:
            args.append(f"--hparams-shard={shard}/2")
        if second and case.resume == "yes":
            args.append("--hparams-resume")
        if second and case.lf == "yes":
            args.append("--lf")
        return args

    def run_pytest(self, name: str, second: bool, shard: int | None) -> dict[str, str]:
        case = self.case
        expected = self.expected(second, shard)
        args = self.args(name, second, shard)
        where = f"{case.id}, {name} run: pytest {' '.join(args)}"
        result = self.pytester.runpytest_subprocess(*args)
        output = result.stdout.str() + result.stderr.str()
        assert "Traceback" not in output, where
        assert "INTERNALERROR" not in output, where

        gate_fails = case.gate_fails(expected, shard is not None)
        failing = gate_fails or "failed" in expected.values()
        want = pytest.ExitCode.TESTS_FAILED if failing else pytest.ExitCode.OK
        assert result.ret == want, where
        assert ("hparams baseline gate: FAILED" in output) == gate_fails, where

        # pytest's own counts.
        outcomes = result.parseoutcomes()
        tally = Counter(PYTEST_OUTCOME[o] for o in expected.values())
        for outcome in ("passed", "failed", "skipped", "errors", "xfailed", "xpassed"):
            assert outcomes.get(outcome, 0) == tally[outcome], f"{where}: {outcomes}"

        self.check_report(f"{name}.json", expected, where)
        self.check_counts(result.stdout.str(), expected, where)
        if case.markdown == "on":
            markdown = (self.pytester.path / f"{name}.md").read_text()
            self.check_counts(markdown, expected, where, terminal=False)
        report = read_report(self.pytester.path / f"{name}.json")
        if case.junit == "on":
            junit = read_junit(self.pytester.path / f"{name}.xml")
            assert {t: c.outcome for t, c in junit.items()} == {
                t: PYTEST_OUTCOME[o] for t, o in expected.items()
            }, where
            for t, testcase in junit.items():
                hparams = {k: str(v) for k, v in report[t]["hparams"].items()}
                assert testcase.hparams == hparams, f"{where}: {t} {testcase}"
                assert same_metrics(testcase.metrics, report[t]["metrics"]), (
                    f"{where}: {t} {testcase}, reported {report[t]['metrics']}"
                )

        # What the logdir now holds: each trial that ran replaced its session;
        # a resumed one kept it, and its reported metrics are the recorded ones.
        for t, outcome in expected.items():
            metrics = report[t]["metrics"]
            if outcome == "resumed":
                status, recorded = self.sessions[t]
                assert status == "STATUS_SUCCESS", where
                assert same_metrics(metrics, recorded), f"{where}: {t} {metrics} {recorded}"
            else:
                status = "STATUS_FAILURE" if outcome == "failed" else "STATUS_SUCCESS"
                self.sessions[t] = (status, metrics)
        shown = read_sessions(self.dashboard(self.pytester.path / "logs"))
        assert shown.keys() == self.sessions.keys(), where
        for t, (status, metrics) in self.sessions.items():
            assert shown[t][0] == status, f"{where}: {t} is {shown[t][0]}, not {status}"
            assert same_metrics(shown[t][1], metrics), f"{where}: {t} {shown[t][1]} {metrics}"
        return expected

    def run_merge(self, name: str, reports: list[str], expected: dict[str, str]) -> None:
        case = self.case
        args = [*reports, f"--output={name}.json", f"--gate={case.gate}"]
        if case.baseline != "absent":
            args.append("--baseline=base.json")
        if case.markdown == "on":
            args.append(f"--markdown={name}.md")
        where = f"{case.id}, {name} merge: python -m pytest_hparams merge {' '.join(args)}"
        result = self.pytester.run(sys.executable, "-m", "pytest_hparams", "merge", *args)
        output = result.stdout.str() + result.stderr.str()
        assert "Traceback" not in output, where
        assert "INTERNALERROR" not in output, where
        gate_fails = case.gate_fails(expected, shard=False)
        failing = gate_fails or "failed" in expected.values()
        assert result.ret == (1 if failing else 0), where
        assert ("hparams baseline gate: FAILED" in output) == gate_fails, where
        self.check_report(f"{name}.json", expected, where)
        merged = read_report(self.pytester.path / f"{name}.json")
        shards = [read_report(self.pytester.path / path) for path in reports]
        for t, trial in merged.items():
            (shard,) = [r[t] for r in shards if t in r]
            assert trial["metrics"] == shard["metrics"], f"{where}: {t}"
        self.check_counts(result.stdout.str(), expected, where)
        if case.markdown == "on":
            markdown = (self.pytester.path / f"{name}.md").read_text()
            self.check_counts(markdown, expected, where, terminal=False)

    def check_report(self, path: str, expected: Mapping[str, str], where: str) -> None:
        """The JSON report: the expected trials and outcomes, each trial's score
        from its own hparams, and each repeated combination's n and mean."""
        data = json.loads((self.pytester.path / path).read_text())
        report = read_report(self.pytester.path / path)
        assert {t: r["outcome"] for t, r in report.items()} == expected, where
        for t, trial in report.items():
            low = score(self.case, COMBO_OF[t])
            value = trial["metrics"]["score"]
            assert low - 1e-6 <= value < low + 0.01, f"{where}: {t} scored {value}"
        if self.case.repeats == 1:
            assert "combinations" not in data["sweeps"][0], where
            return
        combos = {c["combo"]: c for c in data["sweeps"][0]["combinations"]}
        assert combos.keys() == {t.split("-repeat:")[0] + "]" for t in expected}, where
        # Ranked as the table ranks them (score's goal is max), whatever
        # order xdist's workers or the merged shards gave them.
        # ("nan" where no repeat passed: those last.)
        means = {c: e["metrics"]["score"]["mean"] for c, e in combos.items()}
        finite = {c: m for c, m in means.items() if isinstance(m, float)}
        ranked = sorted(finite, key=lambda c: (-finite[c], c))
        assert list(combos) == ranked + sorted(c for c in combos if c not in finite), where
        for combo, entry in combos.items():
            trials = [t for t in expected if t.startswith(combo[:-1] + "-repeat:")]
            assert entry["repeats"] == len(trials), f"{where}: {entry}"
            # The table's mean is over the repeats that passed (or resumed).
            values = [report[t]["metrics"]["score"] for t in trials if expected[t] != "failed"]
            summary = entry["metrics"]["score"]
            assert summary["n"] == len(values), f"{where}: {entry}"
            if values:
                mean = sum(values) / len(values)
                assert summary["mean"] == pytest.approx(mean, rel=1e-9), f"{where}: {entry}"

    def check_counts(
        self, text: str, expected: Mapping[str, str], where: str, terminal: bool = True
    ) -> None:
        """A counts line: the combinations, the outcomes and (in the terminal)
        the best trial, a passed or resumed one with the highest score."""
        counts = counts_line(text, where)
        want_combos = len({COMBO_OF[t] for t in expected}) if self.case.repeats > 1 else None
        assert counts.combinations == want_combos, where
        assert counts.outcomes == Counter(expected.values()), where
        if terminal:
            ok = {COMBO_OF[t] for t, outcome in expected.items() if outcome != "failed"}
            best = max(ok, key=lambda c: score(self.case, c), default=None)
            want_best = None if best is None else f"a:{best[0]}-b:{best[1]}"
            assert counts.best == want_best, f"{where}: best {counts.best}, not {want_best}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_options_together_agree_trial_by_trial(
    case: Case,
    pytester: pytest.Pytester,
    dashboard: Callable[[Path], Dashboard],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each run says -p randomly or -p no:randomly itself.
    monkeypatch.delenv("PYTEST_ADDOPTS")
    pytester.makepyfile(test_sweep=SWEEP)
    if case.failing == "one":
        (pytester.path / "floor.txt").write_text(str(FLOOR))
    if case.baseline != "absent":
        # Saved from the same sweep: the failing trial has no entry, so it is
        # new, never regressed, to every gate.
        args = ["-p", "no:randomly", "--hparams-save-baseline=base.json"]
        if case.repeats > 1:
            args.append(f"--hparams-repeats={case.repeats}")
        result = pytester.runpytest_subprocess(*args)
        where = f"{case.id}, baseline run: pytest {' '.join(args)}"
        output = result.stdout.str() + result.stderr.str()
        assert "Traceback" not in output and "INTERNALERROR" not in output, where
        want = pytest.ExitCode.TESTS_FAILED if case.failing == "one" else pytest.ExitCode.OK
        assert result.ret == want, where
    if case.baseline == "regressed":
        (pytester.path / "drop.txt").write_text(str(DROP))
    sweep = Sweep(case, pytester, dashboard)
    sweep.run_pass(second=False)
    if case.second_run:
        sweep.run_pass(second=True)
