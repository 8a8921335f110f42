"""What pytest's choice of rootdir and ini file makes of a path option
written as two words, `--hparams-logdir logs`.

pytest chooses its rootdir and ini file from the command's paths before any
plugin adds its options, so it takes an existing path after such an option
for a test path; the rootdir and the ini file (the settings, the node ids)
can then move. Whether the path exists changes from run to run, and between
the xdist controller and its workers, which start after it made the logdir.
"""

from __future__ import annotations

import itertools
import os
import shlex
from pathlib import Path

import pytest

PATH_OPTIONS = (
    "--hparams-logdir",
    "--hparams-baseline",
    "--hparams-save-baseline",
    "--hparams-json",
    "--hparams-markdown",
    "--hparams-html",
    "--hparams-only-best",
)
# The files pytest's search for its rootdir and ini file stops at.
_SETUP_FILES = (
    "pytest.toml",
    ".pytest.toml",
    "pytest.ini",
    ".pytest.ini",
    "pyproject.toml",
    "tox.ini",
    "setup.cfg",
    "setup.py",
)


def check_path_options(config: pytest.Config) -> None:
    """Refuses a path option written as two words wherever its path could
    move pytest's rootdir or ini file; a path that cannot is left alone.

    pytest's search starts at the folder common to the command's paths and
    walks up to the first folder holding one of its config files (some
    fallbacks follow, setup.py among them). Each path is taken as existing,
    so the answer is the same in every run and process.

    Raises:
      pytest.UsageError: Naming the option and the `--opt=PATH` fix.
    """
    from pytest_hparams.storage import is_url

    here = config.invocation_params.dir
    words = [*shlex.split(os.environ.get("PYTEST_ADDOPTS", "")), *config.invocation_params.args]
    given = [
        (option, raw)
        for option, raw in itertools.pairwise(words)
        if option in PATH_OPTIONS and raw and not raw.startswith("-") and not is_url(raw)
    ]
    inifile = config.getoption("inifilename")
    if not given or (inifile and Path(here, inifile).is_file()):
        return  # with -c FILE, the rootdir is FILE's folder
    tests = []
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        for arg in config.args:
            path = Path(os.path.abspath(Path(here, arg)))
            if not path.exists():  # `dir/test_x.py::test_a` names a file in dir
                path = path.parent
            if arg in words and path.exists():  # not from the ini's addopts
                tests.append(path if path.is_dir() else path.parent)
    folders = []
    for option, raw in given:
        path = Path(os.path.abspath(Path(here, raw)))
        logdir = option == "--hparams-logdir"  # made before xdist's workers start
        folders.append(path if logdir or path.is_dir() else path.parent)
    start = _common(tests) if tests else here  # where the search starts without the paths
    top = _common([start, *folders])  # with them: there, or above it
    ini = config.inipath.parent if config.inipath is not None else None
    same = all(_clean(f, start if _inside(f, start) else top) for f in folders) and (
        top == start
        # Nothing on the way from start up to top: it stops at the same file above.
        or (ini is not None and _clean(start, top) and _inside(top, ini))
        # Nothing from top up: it walks up from each test path instead, as far as start.
        or (
            ini is not None
            and bool(tests)
            and _clean(top, None)
            and _inside(start, ini)
            and all(_clean(t, start) for t in tests)
        )
    )
    if not same:
        option, raw = next(
            (
                g
                for g, f in zip(given, folders, strict=True)
                if not (_inside(f, start) and _clean(f, start))
            ),
            given[0],
        )
        raise pytest.UsageError(
            f"{option} {raw}: pytest takes a path after an option for a test path when it "
            "chooses its rootdir and ini file, so this one can change them; write "
            + shlex.quote(f"{option}={raw}")
        )


def _common(paths: list[Path]) -> Path:
    return Path(os.path.commonpath([str(p) for p in paths]))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _clean(folder: Path, stop: Path | None) -> bool:
    """Whether no folder from `folder` up to `stop` (excluded; None: up to the
    file system's root) holds a file that stops pytest's rootdir search."""
    for path in (folder, *folder.parents):
        if path == stop:
            return True
        if any(path.joinpath(name).is_file() for name in _SETUP_FILES):
            return False
    return True
