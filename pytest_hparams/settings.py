"""The run's settings: every option read and checked once per process,
into a frozen `Settings` the rest of the plugin reads. Checking an option
reads what it names (the baseline file, an only-best report), and the
logdir is opened here, so that a bad one is refused before any trial runs."""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

import pytest

from pytest_hparams import baseline, storage
from pytest_hparams.ci import run_id, shard_from_env
from pytest_hparams.collect import read_best
from pytest_hparams.errors import BaselineError, LogdirError, SweepError
from pytest_hparams.export import foreign
from pytest_hparams.lazy import REPORT_EXTRA
from pytest_hparams.logdir import CONFIG_FILE
from pytest_hparams.metrics import parse_tolerance
from pytest_hparams.options import (
    BEGAN_INPUT,
    RUN_INPUT,
    alpha_spec,
    gate_spec,
    non_negative_int,
    positive_int,
    pruner_spec,
    refuse_two_word_paths,
    seed_spec,
    tolerance_spec,
)
from pytest_hparams.storage import RemoteStore

if TYPE_CHECKING:
    from pytest_hparams.baseline import Entry
    from pytest_hparams.metrics import Metric, Tolerance


@dataclass(frozen=True)
class Settings:
    """Everything the options say, validated; read once, never changed."""

    store: storage.LocalStore | None = None  # where the logdir's files live
    top: int | None = None  # the table's own default
    show_table: bool = True
    baseline: dict[str, Entry] | None = None
    save_baseline: Path | None = None
    saved: dict[str, Entry] = field(default_factory=dict)  # save_baseline's at the start
    json_path: Path | None = None
    markdown_path: Path | None = None
    html_path: Path | None = None
    shard: tuple[int, int] | None = None  # (K, N), K from 1; `auto` is decided in read()
    resume: bool = False
    overrides: tuple[tuple[str, tuple[str, ...]], ...] = ()
    only_best: Path | None = None
    repeats: int | None = None  # --hparams-repeats: overrides repeats=
    seed: int = 0
    alpha: float = 0.05
    gate: str = "each"
    pruner: str | None = None  # --hparams-pruner: for sweeps that set no pruner=
    no_prune: bool = False
    prune_baseline: bool = False  # trials with a baseline entry may be pruned too
    storage: str | None = None  # an Optuna storage URL
    study: str | None = None  # --hparams-study: the name runs that share studies give
    run: str = ""  # whose trials this run's studies hold: the study's name, a CI run, or its own
    # When the run began, by the controller's clock: older RUNNING trials are stale.
    began: float = 0.0
    # Layers of tolerances, first match wins: the command line, then the ini.
    tolerances: tuple[dict[str, Tolerance], ...] = ()

    def tolerance(self, metric: Metric) -> Tolerance | None:
        """The command line wins over the ini file, which wins over
        Metric(tolerance=); None where none is set (0 applies)."""
        for layer in self.tolerances:
            found = layer.get(metric.name) or layer.get("*")
            if found is not None:
                return found
        if metric.tolerance is not None:
            return parse_tolerance(metric.tolerance)
        return None

    def protects(self, group: str) -> bool:
        """Whether a combination runs unpruned so that the gate judges it: it
        has a baseline entry, every trial is gated, and no option says otherwise."""
        return (
            self.baseline is not None
            and group in self.baseline
            and self.gate == "each"
            and not self.prune_baseline
        )

    def tolerance_names(self) -> list[tuple[str, set[str]]]:
        """The metrics each layer of tolerances names, with the layer's source."""
        sources = ("--hparams-tolerance", "hparams_tolerance (ini)")
        return [
            (source, {n for n in layer if n != "*"})
            for source, layer in zip(sources, self.tolerances, strict=False)
        ]


def read(config: pytest.Config) -> Settings:
    """Reads and checks the options; raises pytest.UsageError with the fix."""
    here = config.invocation_params.dir
    if not hasattr(config, "workerinput"):  # the controller refuses, once
        refuse_two_word_paths(config)
    store = _store(config, here)
    resume = _resume(config, store)
    study = _cli_or_ini_text(config, "study")
    only_best = _only_best(config, here)
    compared, entries = _compared_baseline(config, here)
    save_path, saved = _saved_baseline(config, here)
    reports = _reports(config, here, (compared, save_path, only_best))
    _check_not_holding_tests(config, store)
    return Settings(
        store=store,
        top=_cli_or_ini(config, "top", non_negative_int, None),
        show_table=not config.getoption("hparams_no_table"),
        baseline=entries,
        save_baseline=save_path,
        saved=saved,
        json_path=reports.get("json"),
        markdown_path=reports.get("markdown"),
        html_path=reports.get("html"),
        shard=_shard(config.getoption("hparams_shard")),
        resume=resume,
        # The last for a name wins: the command line's over addopts'.
        overrides=tuple(dict(config.getoption("hparams_set")).items()),
        only_best=only_best,
        repeats=_cli_or_ini(config, "repeats", positive_int, None),
        seed=_cli_or_ini(config, "seed", seed_spec, 0),
        alpha=_cli_or_ini(config, "alpha", alpha_spec, 0.05),
        gate=_cli_or_ini(config, "gate", gate_spec, "each"),
        pruner=_cli_or_ini(config, "pruner", pruner_spec, None),
        no_prune=bool(config.getoption("hparams_no_prune")),
        prune_baseline=bool(config.getoption("hparams_prune_baseline")),
        storage=_storage(config),
        study=study,
        run=_run(config, study),
        began=_began(config),
        tolerances=_tolerances(config),
    )


def _resume(config: pytest.Config, store: storage.LocalStore | None) -> bool:
    """`--hparams-resume`, refused without a logdir to resume from."""
    resume = bool(config.getoption("hparams_resume"))
    if resume and store is None:
        raise pytest.UsageError(
            "--hparams-resume needs the logdir to resume from; add --hparams-logdir=DIR"
        )
    return resume


def _only_best(config: pytest.Config, here: Path) -> Path | None:
    """`--hparams-only-best`: read now, so a malformed file is a usage error
    before anything runs."""
    raw = config.getoption("hparams_only_best")
    if raw is None:
        return None
    _not_blank(raw, "--hparams-only-best", "a baseline or a JSON report")
    path = _path(here, raw, "--hparams-only-best")
    if not path.is_file():
        raise pytest.UsageError(
            f"--hparams-only-best: {path} does not exist; give a baseline "
            "(--hparams-save-baseline) or a JSON report (--hparams-json)"
        )
    try:
        read_best(path, {})
    except SweepError as e:
        raise pytest.UsageError(f"--hparams-only-best: {e}") from None
    return path


def _compared_baseline(
    config: pytest.Config, here: Path
) -> tuple[Path | None, dict[str, Entry] | None]:
    """The baseline a run compares with (`--hparams-baseline`, else the
    ini's), and its entries: None when there is none, or when this run
    saves it for the first time (nothing to compare yet)."""
    given = _compared_path(config, here)
    if given is None:
        return None, None
    compared, source = given
    return compared, None if _saves_first(config, here, compared) else _load(compared, source)


def _compared_path(config: pytest.Config, here: Path) -> tuple[Path, str] | None:
    """The baseline file to compare with and the option that named it."""
    cli = config.getoption("hparams_baseline")
    ini = config.getini("hparams_baseline")
    if len(ini) > 1:
        raise pytest.UsageError(
            f"hparams_baseline (ini) names {len(ini)} files; a run compares with one"
        )
    if cli is not None:
        return _path(here, cli, "--hparams-baseline"), "--hparams-baseline"
    if ini:
        return Path(ini[0]), "hparams_baseline (ini)"
    return None


def _saves_first(config: pytest.Config, here: Path, compared: Path) -> bool:
    """Whether this run writes the baseline it compares with for the first time."""
    save_raw = config.getoption("hparams_save_baseline")
    return (
        save_raw is not None
        and not compared.exists()
        and _path(here, save_raw, "--hparams-save-baseline").resolve() == compared.resolve()
    )


def _saved_baseline(config: pytest.Config, here: Path) -> tuple[Path | None, dict[str, Entry]]:
    """`--hparams-save-baseline` and what it holds: read now, so a file we
    could not merge into is refused before anything runs."""
    save = config.getoption("hparams_save_baseline")
    if save is None:
        return None, {}
    path = _path(here, save, "--hparams-save-baseline")
    check_output(path, "--hparams-save-baseline")
    saved = _load(path, "--hparams-save-baseline", written=True) if path.exists() else {}
    return path, saved


def _reports(config: pytest.Config, here: Path, inputs: tuple[Path | None, ...]) -> dict[str, Path]:
    """The JSON, Markdown and HTML reports' paths, each writable, a report
    of its own kind (or blank), and no other report's or baseline's file."""
    reports: dict[str, Path] = {}
    for option in ("json", "markdown"):
        raw = config.getoption(f"hparams_{option}")
        if raw is not None:
            path = _path(here, raw, f"--hparams-{option}")
            check_output(path, f"--hparams-{option}")
            _refuse_shared(path, f"--hparams-{option}", (*inputs, *reports.values()))
            _check_ours(path, f"--hparams-{option}", option)
            reports[option] = path
    html = _html_path(config, here)
    if html is not None:
        _refuse_shared(html, "--hparams-html", (*inputs, *reports.values()))
        reports["html"] = html
    return reports


def _refuse_shared(path: Path, option: str, others: tuple[Path | None, ...]) -> None:
    if path.resolve() in {p.resolve() for p in others if p}:
        raise pytest.UsageError(
            f"{option}: {path} is also a baseline or another report; give each report its own file"
        )


def _tolerances(config: pytest.Config) -> tuple[dict[str, Tolerance], dict[str, Tolerance]]:
    """The tolerances of the command line, and of the ini's lines."""
    cli = dict(config.getoption("hparams_tolerance"))
    ini: dict[str, Tolerance] = {}
    for line in config.getini("hparams_tolerance"):
        try:
            name, tol = tolerance_spec(line)
        except argparse.ArgumentTypeError as e:
            raise pytest.UsageError(f"hparams_tolerance (ini): {e}") from None
        ini[name] = tol
    return cli, ini


def _html_path(config: pytest.Config, here: Path) -> Path | None:
    """`--hparams-html`, else the ini's `hparams_html`: checked as the other
    reports are, and refused without plotly, which draws it."""
    given = _html_given(config, here)
    if given is None:
        return None
    path, source = given
    check_output(path, source)
    _check_ours(path, source, "html")
    if why := missing_plotly(source):
        raise pytest.UsageError(why)
    return path


def _html_given(config: pytest.Config, here: Path) -> tuple[Path, str] | None:
    """The HTML report's path and the option that gave it; None when none did.

    Raises:
      pytest.UsageError: If the ini names more than one file.
    """
    raw = config.getoption("hparams_html")
    ini = config.getini("hparams_html")
    if raw is None and not ini:
        return None
    if raw is not None:
        return _path(here, raw, "--hparams-html"), "--hparams-html"
    if len(ini) > 1:
        raise pytest.UsageError(f"hparams_html (ini) names {len(ini)} files; give one")
    return Path(ini[0]), "hparams_html (ini)"


def missing_plotly(source: str) -> str:
    """Why `source`, an option that writes the HTML report, cannot: plotly,
    which draws it, is not installed; "" when it is."""
    if importlib.util.find_spec("plotly") is not None:
        return ""
    return (
        f"{source} draws its plots with plotly, which is not installed; "
        f"install it with: {REPORT_EXTRA}"
    )


def _cli_or_ini_text(config: pytest.Config, name: str) -> str | None:
    cli = config.getoption(f"hparams_{name}")
    if cli is not None:
        _not_blank(cli, f"--hparams-{name}", "a name")
        return str(cli)
    return str(config.getini(f"hparams_{name}")).strip() or None


def _run(config: pytest.Config, study: str | None) -> str:
    """Whose trials this run's studies hold, decided once: on an xdist
    worker, the controller's decision, so all of them share one study."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and RUN_INPUT in workerinput:
        return str(workerinput[RUN_INPUT])
    if study:
        return study
    return run_id(os.environ) or f"run {time.strftime('%Y-%m-%dT%H:%M:%S')} {os.urandom(3).hex()}"


def _began(config: pytest.Config) -> float:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and BEGAN_INPUT in workerinput:
        return float(workerinput[BEGAN_INPUT])
    return time.time()


def _not_blank(raw: str, source: str, what: str, without: str = "") -> None:
    if not raw.strip():
        raise pytest.UsageError(
            f"{source} is empty (an unset variable?); give {what}, or leave the option out"
            + without
        )


def _storage(config: pytest.Config) -> str | None:
    cli = config.getoption("hparams_storage")
    if cli is not None:
        _not_blank(cli, "--hparams-storage", "an Optuna storage URL")
        return str(cli)
    return _ini_storage(config)


def _ini_storage(config: pytest.Config) -> str | None:
    """The ini's storage URL; a relative SQLite path is relative to the ini file."""
    url = str(config.getini("hparams_storage")).strip()
    path = url.removeprefix("sqlite:///")
    if url.startswith("sqlite:///") and path and not os.path.isabs(path):
        # Relative to the ini file, as the logdir is: a run from a subfolder
        # must open the same study.
        base = config.inipath.parent if config.inipath is not None else config.rootpath
        url = f"sqlite:///{base / path}"
    return url or None


def _shard(spec: tuple[int | None, int | None] | None) -> tuple[int, int] | None:
    """`K/N` as given; `auto` and `auto/N` read from the environment, here,
    where xdist's workers (which inherit it) decide as the controller does."""
    if spec is None:
        return None
    k, n = spec
    if k is not None and n is not None:
        return k, n
    try:
        return shard_from_env(n, os.environ)
    except ValueError as e:
        given = "auto" if n is None else f"auto/{n}"
        raise pytest.UsageError(f"--hparams-shard {given}: {e}") from None


def _path(here: Path, raw: str, source: str) -> Path:
    """A path option's file, relative to the invocation directory; `~` expands."""
    _not_blank(raw, source, "a file path")
    return Path(here, os.path.expanduser(raw))


def _check_not_holding_tests(config: pytest.Config, store: storage.LocalStore | None) -> None:
    """Refuses a local logdir that holds the tests being run: it is never collected."""
    if store is None or isinstance(store, RemoteStore):
        return
    root = store.root
    for arg in config.args:
        held = _held_tests(config, root, arg)
        if held is not None:
            raise pytest.UsageError(
                f"--hparams-logdir: {root} holds the tests being run ({held}), and a logdir is "
                "never collected; choose a directory of its own, such as logs/"
            )


def _held_tests(config: pytest.Config, root: Path, arg: str) -> str | None:
    """The tests that `arg`, a path the run collects, finds inside the logdir; None for none."""
    # An argument's path, or a path under it (`test_x.py::test_a` reads
    # as a file in a folder named test_x.py): either way inside the logdir.
    target = Path(config.invocation_params.dir, arg).resolve()
    if target == root or root in target.parents:
        return arg
    if target not in root.parents:
        return None
    # An ancestor of the logdir: collected, except for the logdir itself.
    found = _tests_in(root)
    return os.path.relpath(found, config.invocation_params.dir) if found else None


def _tests_in(root: Path) -> Path | None:
    """A Python file under `root`, unless it is a logdir already (a file
    copied there is not the tests). Trials' run directories are named after
    their test files (`test_x.py/`) and are not looked into, so a logdir
    costs a scan of a few folders."""
    if root.joinpath(CONFIG_FILE).exists():
        return None
    for folder, folders, files in os.walk(root):
        for name in files:
            if name.endswith(".py"):
                return Path(folder, name)
        folders[:] = [f for f in folders if not f.endswith(".py")]
    return None


def _load(path: Path, source: str, written: bool = False) -> dict[str, Entry]:
    """A baseline's entries; `written`: the file is one to write, which may
    be blank (`mktemp`'s) and must not be a file of the user's."""
    try:
        return baseline.load(path, blank_ok=written)
    except BaselineError as e:
        if written:
            fix = "give a path of its own"
        elif not path.exists():
            fix = f"write it first with --hparams-save-baseline={path}"
        else:
            fix = f"fix the file, or write a new one with --hparams-save-baseline={path}"
        raise pytest.UsageError(f"{source}: {path} {e}; {fix}") from None


def check_output(path: Path, source: str) -> None:
    """Refuses, before anything runs, a report path that could not be written
    at the end: the sweep's results would be lost with it."""
    _check_file_path(path, source)
    _check_writable(path, source)


def _check_file_path(path: Path, source: str) -> None:
    """Refuses a path that is not, or cannot become, a regular file."""
    if path.is_dir():
        raise pytest.UsageError(f"{source}: {path} is a directory; give a file path")
    if path.exists() and not path.is_file():  # a FIFO: reading it would block
        raise pytest.UsageError(f"{source}: {path} is not a regular file; give a file path")
    # /dev/stdout can lead to the file a shell redirected output to: a report
    # renamed over it would take that file's place, and the output after it.
    if _is_special(path):
        raise pytest.UsageError(
            f"{source}: {path} leads to a process's file descriptor, not a regular file; "
            "give a file path"
        )
    if not path.parent.is_dir():
        raise pytest.UsageError(f"{source}: the directory {path.parent} does not exist; create it")


def _check_writable(path: Path, source: str) -> None:
    # A real write, not os.access: root passes every access check, yet a
    # read-only mount or a full disk still refuses the file.
    try:
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".probe"):
            pass
        if path.exists() and not os.access(path, os.W_OK):
            raise PermissionError(13, "Permission denied", str(path))
    except OSError as e:
        raise pytest.UsageError(
            f"{source}: cannot write {path} ({e.strerror or e}); choose a writable path"
        ) from None


def _is_special(path: Path) -> bool:
    """Whether a path links into /proc (/dev/stdout, /dev/fd/1)."""
    current = os.path.abspath(path)
    for _ in range(40):  # the kernel's own limit on a chain of links
        if not os.path.islink(current):
            return False
        current = os.path.normpath(os.path.join(os.path.dirname(current), os.readlink(current)))
        if current == "/proc" or current.startswith("/proc/"):
            return True
    return False


def _check_ours(path: Path, source: str, kind: str) -> None:
    """Refuses a report path that holds a file the plugin did not write: a
    test file taken for the path (`--hparams-json test_x.py`) is not lost."""
    if why := foreign(path, kind):
        raise pytest.UsageError(
            f"{source}: {path} {why}, which this run would write over; give a path of its own"
        )


def _store(config: pytest.Config, here: Path) -> storage.LocalStore | None:
    cli = config.getoption("hparams_logdir")
    ini = str(config.getini("hparams_logdir")).strip()
    if cli is not None:
        raw, base, source = cli, here, "--hparams-logdir"
    elif ini:
        base = config.inipath.parent if config.inipath is not None else config.rootpath
        raw, source = ini, "hparams_logdir (ini)"
    else:
        return None
    _not_blank(raw, source, "a directory such as logs/", " to record nothing")
    try:
        return storage.open_store(raw, base, project=config.rootpath)
    except LogdirError as e:
        raise pytest.UsageError(f"{source}: {e}") from None


T = TypeVar("T")


def _cli_or_ini(config: pytest.Config, name: str, parse: Callable[[str], T], default: T) -> T:
    """`--hparams-NAME`, else the ini's `hparams_NAME`, else `default`."""
    cli = config.getoption(f"hparams_{name}")
    if cli is not None:
        return cast(T, cli)
    raw = str(config.getini(f"hparams_{name}")).strip()
    if not raw:
        return default
    try:
        return parse(raw)
    except argparse.ArgumentTypeError as e:
        raise pytest.UsageError(f"hparams_{name} (ini): {e}") from None
