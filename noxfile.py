"""nox sessions: the suite on the oldest pytest the package declares and on the
newest, the core without any optional extra, the docs and the linters.

    nox -s "tests(pytest='oldest')" no_extras   # what .ci/run adds to its own run
    nox -s docs

`.ci/run` runs the newest suite itself (the README's command, in its venv),
then the oldest and no_extras sessions."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "no_extras", "docs", "lint"]

ROOT = Path(__file__).parent
#: The suite's core, which needs no optional extra: everything else imports one.
CORE = [
    "tests/test_extras.py",
    "tests/test_plugin.py",
    "tests/test_table.py",
    "tests/test_baseline.py",
    "tests/test_events.py",
    "tests/test_logdir.py",
    "tests/test_declaring.py",
    "tests/test_messages.py",
    "tests/test_controller.py",
    "tests/test_layout.py",
    "tests/test_scale.py",
]


def oldest_pytest() -> str:
    """The lowest pytest the package accepts, read from its `pytest>=X.Y`."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    (lowest,) = [
        m[1] for d in project["dependencies"] if (m := re.fullmatch(r"pytest>=([\d.]+)", d))
    ]
    return f"pytest=={lowest}.*"


@nox.session(python="3.11")
@nox.parametrize("pytest", ["oldest", "newest"])
def tests(session: nox.Session, pytest: str) -> None:
    """The whole suite, as the README runs it (`-n auto`)."""
    pin = [oldest_pytest()] if pytest == "oldest" else []
    session.install("-e", ".[test,tensorflow]", *pin)
    session.run("python", "-m", "pytest", "--version")
    session.run("python", "-m", "pytest", "-n", "auto", *session.posargs)


@nox.session(python="3.11")
def no_extras(session: nox.Session) -> None:
    """pytest-hparams with none of its extras: each feature that needs one is a
    one-line error naming it (tests/test_extras.py), and the core works."""
    session.install("-e", ".", "pytest-xdist", "pytest-rerunfailures")
    session.run("python", "-m", "pytest", "-n", "auto", "-p", "no:randomly", *CORE)


@nox.session(python="3.11")
def docs(session: nox.Session) -> None:
    """The docs site, every link and anchor checked."""
    session.install("-e", ".[docs]")
    session.run(
        "mkdocs",
        "build",
        "--strict",
        "--site-dir",
        session.create_tmp() + "/site",
        env={"NO_MKDOCS_2_WARNING": "1"},
    )


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
