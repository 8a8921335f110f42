"""The command-line and ini options: declared here, with the parsers that
check each value as pytest reads it (`settings.py` reads them all)."""

from __future__ import annotations

import argparse
import itertools
import os
import shlex
from typing import Literal

import pytest

from pytest_hparams.metrics import Tolerance, parse_tolerance
from pytest_hparams.pruning import PRUNERS

#: The options that take a path, written `--opt=PATH` only: pytest chooses its
#: rootdir and ini file from the command's paths before any plugin adds its
#: options, so in `--hparams-logdir logs` it would take `logs` for a test path,
#: and whether it exists (a second run, xdist's workers) would move the rootdir.
PATH_OPTIONS = (
    "--hparams-logdir",
    "--hparams-baseline",
    "--hparams-save-baseline",
    "--hparams-json",
    "--hparams-markdown",
    "--hparams-html",
    "--hparams-only-best",
)

#: The key of an xdist worker's `workerinput` that carries the run's scope
#: (`Settings.run`), decided once on the controller.
RUN_INPUT = "hparams_run"
#: The same for when the run began (`Settings.began`).
BEGAN_INPUT = "hparams_began"
#: The same for the controller's --dist: a worker's own reads "no".
DIST_INPUT = "hparams_dist"


#: The ini values the plugin reads: each one's help and pytest's ini type
#: (None: a string); a list type's default is [], a string's "".
INI: dict[str, tuple[str, Literal["string", "paths", "linelist"] | None]] = {
    "hparams_logdir": (
        "Directory (relative to the ini file) or fsspec URL for TensorBoard records",
        "string",
    ),
    "hparams_top": (
        "Rows of each sweep's table; 0 shows all (default: all up to 20, else the best 10)",
        None,
    ),
    "hparams_baseline": ("Baseline file to compare against, relative to the ini file", "paths"),
    "hparams_html": ("HTML report to write, relative to the ini file", "paths"),
    "hparams_tolerance": ("Tolerances, one a line: METRIC:0.02, METRIC:5% or 5%", "linelist"),
    "hparams_repeats": ("Run every combination N times", None),
    "hparams_seed": ("Salt for every trial.seed (default 0)", None),
    "hparams_alpha": ("Significance level of the gate on repeats", None),
    "hparams_gate": ("each (default) or best", None),
    "hparams_pruner": ("Pruner of sweeps that set none", None),
    "hparams_storage": ("Optuna storage URL of the pruners' studies", None),
    "hparams_study": ("Name of the Optuna studies runs share", None),
}
INI_NAMES = tuple(INI)


def asked(config: pytest.Config) -> bool:
    """Whether the run sets any of the plugin's options or ini values: each
    one's default is None, False or empty."""
    given = (
        value is not None and value is not False and value != []
        for dest, value in vars(config.option).items()
        if dest.startswith("hparams_")
    )
    return any(given) or any(config.getini(name) for name in INI_NAMES)


def refuse_two_word_paths(config: pytest.Config) -> None:
    """Refuses a path option written as two words, on the command line or in
    PYTEST_ADDOPTS: one rule, the same on every run and in every process.

    Raises:
      pytest.UsageError: Naming the option and the `--opt=PATH` to write.
    """
    words = [*shlex.split(os.environ.get("PYTEST_ADDOPTS", "")), *config.invocation_params.args]
    for option, value in itertools.pairwise(words):
        if option in PATH_OPTIONS and not value.startswith("-"):
            raise pytest.UsageError(
                f"{option} {value}: write {shlex.quote(f'{option}={value}')}; pytest would take "
                "a path after an option for a test path when it chooses its rootdir and ini file"
            )


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def seed_spec(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def alpha_spec(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a significance level between 0 and 1, like 0.05; got {text!r}"
        )
    return value


def gate_spec(text: str) -> str:
    if text not in GATES:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(GATES)}; got {text!r}")
    return text


GATES = ("each", "best")


def pruner_spec(text: str) -> str:
    if text not in PRUNERS:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(PRUNERS)}; got {text!r}")
    return text


def shard_spec(text: str) -> tuple[int | None, int | None]:
    """`K/N` with 1 <= K <= N; `auto` and `auto/N` leave K (and N) as None,
    for `read` to take from the CI's environment."""
    k, sep, n = text.partition("/")
    if text == "auto":
        return None, None
    try:
        shard = None if k == "auto" else int(k)
        total = int(n) if sep else 0
    except ValueError:
        shard, total = 0, 0
    if not 1 <= (1 if shard is None else shard) <= total:
        raise argparse.ArgumentTypeError(
            f"expected K/N with 1 <= K <= N (like 2/4), auto, or auto/N; got {text!r}"
        )
    return shard, total


def override_spec(text: str) -> tuple[str, tuple[str, ...]]:
    """`NAME=V1,V2` (Hydra's multirun syntax)."""
    name, sep, values = text.partition("=")
    parts = tuple(v.strip() for v in values.split(","))
    if not sep or not name.strip().isidentifier() or not all(parts):
        raise argparse.ArgumentTypeError(
            f"expected NAME=VALUE[,VALUE...], like lr=0.1,0.01; got {text!r}"
        )
    return name.strip(), parts


def tolerance_spec(text: str) -> tuple[str, Tolerance]:
    """`accuracy:0.02`, `loss:5%`, or a bare `5%` for every metric."""
    name, sep, raw = text.rpartition(":")
    if not sep:
        name, raw = "*", text
    elif not name.strip():
        raise argparse.ArgumentTypeError(
            f"{text!r} names no metric before ':'; write METRIC:0.02, METRIC:5% or 5% for all"
        )
    try:
        return name.strip(), parse_tolerance(raw)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{e}; write METRIC:0.02, METRIC:5% or 5%") from None


def addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hparams", "hyperparameter sweeps (pytest-hparams)")
    group.addoption(
        "--hparams-logdir",
        metavar="DIR",
        default=None,
        help="Record every trial in DIR (or an fsspec URL such as s3://bucket/prefix) "
        "for TensorBoard's HParams dashboard. Default: %(default)r",
    )
    group.addoption(
        "--hparams-top",
        metavar="N",
        type=non_negative_int,
        default=None,
        help="Rows of each sweep's table, best first, then every failed or regressed "
        "row; 0 shows all. "
        "Default: every row up to 20 trials, else the best 10",
    )
    group.addoption(
        "--hparams-no-table",
        action="store_true",
        default=False,
        help="Do not print the sweep tables in the terminal summary",
    )
    group.addoption(
        "--hparams-baseline",
        metavar="PATH",
        default=None,
        help="Fail trials whose metrics regressed against this baseline file. Default: %(default)r",
    )
    group.addoption(
        "--hparams-save-baseline",
        metavar="PATH",
        default=None,
        help="Write every trial's metrics to this baseline file, keeping entries that did not run",
    )
    group.addoption(
        "--hparams-tolerance",
        metavar="SPEC",
        type=tolerance_spec,
        action="append",
        default=[],
        help="How far a metric may regress: METRIC:0.02, METRIC:5%%, or 5%% for all (repeatable)",
    )
    group.addoption(
        "--hparams-json",
        metavar="PATH",
        default=None,
        help="Write every trial (hparams, metrics, outcome, baseline verdict) as JSON to PATH",
    )
    group.addoption(
        "--hparams-markdown",
        metavar="PATH",
        default=None,
        help="Write the sweep tables as Markdown to PATH (e.g. $GITHUB_STEP_SUMMARY)",
    )
    group.addoption(
        "--hparams-html",
        metavar="PATH",
        default=None,
        help="Write every sweep's table and plots as one self-contained HTML file to PATH "
        "(needs pytest-hparams[report])",
    )
    group.addoption(
        "--hparams-shard",
        metavar="K/N|auto|auto/N",
        type=shard_spec,
        default=None,
        help="Run the K-th of N shards of every sweep (a CI matrix; other tests run in shard 1); "
        "auto reads K and N from GitLab's, CircleCI's or Buildkite's variables, auto/N reads K "
        "from JOB_COMPLETION_INDEX (0-based) or HPARAMS_SHARD_INDEX (1-based)",
    )
    group.addoption(
        "--hparams-set",
        metavar="NAME=V1,V2",
        type=override_spec,
        action="append",
        default=[],
        help="Replace a swept hparam's values for this run (repeatable), like lr=0.1,0.01",
    )
    group.addoption(
        "--hparams-only-best",
        metavar="PATH",
        default=None,
        help="Run only each sweep's best trial recorded in PATH (a baseline or JSON report)",
    )
    group.addoption(
        "--hparams-resume",
        action="store_true",
        default=False,
        help="Skip trials whose session in the logdir ended with SUCCESS; report their metrics",
    )
    group.addoption(
        "--hparams-repeats",
        metavar="N",
        type=positive_int,
        default=None,
        help="Run every combination of every sweep N times (overrides repeats=). "
        "Default: each sweep's repeats=",
    )
    group.addoption(
        "--hparams-seed",
        metavar="S",
        type=seed_spec,
        default=None,
        help="Salt every trial.seed with S; ids do not change. Default: 0",
    )
    group.addoption(
        "--hparams-alpha",
        metavar="A",
        type=alpha_spec,
        default=None,
        help="Significance level of the baseline gate's test on repeats. Default: 0.05",
    )
    group.addoption(
        "--hparams-gate",
        metavar="each|best",
        type=gate_spec,
        default=None,
        help="Gate every combination on the baseline (each), or only the sweep's best "
        "against the baseline's best (best). Default: 'each'",
    )
    group.addoption(
        "--hparams-pruner",
        metavar="median|halving|hyperband",
        type=pruner_spec,
        default=None,
        help="Prune every sweep that sets no pruner= with this Optuna pruner. Default: none",
    )
    group.addoption(
        "--hparams-no-prune",
        action="store_true",
        default=False,
        help="Run every trial to the end, whatever its sweep's pruner (a final full run)",
    )
    group.addoption(
        "--hparams-prune-baseline",
        action="store_true",
        default=False,
        help="Let the pruner stop trials that have a baseline entry too; by default they "
        "run to the end under --hparams-gate each, so the gate judges every entry",
    )
    group.addoption(
        "--hparams-storage",
        metavar="URL",
        default=None,
        help="Optuna storage URL of the studies of pruned sweeps and searches "
        "(sqlite:///..., postgresql+psycopg2://...). "
        "Default: a journal file in a local logdir, else memory",
    )
    group.addoption(
        "--hparams-study",
        metavar="NAME",
        default=None,
        help="Name the Optuna studies of this run's pruned sweeps and searches, so that "
        "shards and later runs given the same name prune and search against one "
        "another's trials. Default: the CI's run id, else this run alone",
    )
    for name, (help_text, kind) in INI.items():
        default: list[str] | str = [] if kind in ("paths", "linelist") else ""
        parser.addini(name, help_text, type=kind, default=default)
