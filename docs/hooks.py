"""mkdocs hooks: the options reference is generated at build time, from
`options.py` and from the commands' own `--help`, so the page cannot drift
from what pytest and `python -m pytest_hparams` accept."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

from pytest_hparams import options

MARKER = "<!-- options table -->"
#: `<!-- help: merge -->` becomes `python -m pytest_hparams merge --help`.
HELP = re.compile(r"<!-- help: (\w+) -->")


class _Recorder:
    """Stands in for pytest's parser and its option group, keeping what
    `options.addoption` declares (it calls nothing else on them)."""

    def __init__(self) -> None:
        self.options: list[tuple[list[str], dict[str, Any]]] = []
        self.ini: dict[str, tuple[str, dict[str, Any]]] = {}

    def getgroup(self, *args: Any, **kwargs: Any) -> _Recorder:
        return self

    def addoption(self, *names: str, **kwargs: Any) -> None:
        self.options.append((list(names), kwargs))

    def addini(self, name: str, help: str, **kwargs: Any) -> None:
        self.ini[name] = (help, kwargs)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("%%", "%")


def options_table() -> str:
    recorder = _Recorder()
    options.addoption(recorder)  # type: ignore[arg-type]
    rows = ["| option | ini | what it does |", "| --- | --- | --- |"]
    for names, kwargs in recorder.options:
        flag = names[0]
        metavar = kwargs.get("metavar")
        shown = f"`{flag}={metavar}`" if metavar else f"`{flag}`"
        ini = flag.removeprefix("--").replace("-", "_")
        ini_cell = f"`{ini}`" if ini in recorder.ini else ""
        help_text = kwargs.get("help", "").replace("%(default)r", repr(kwargs.get("default")))
        rows.append(f"| {_cell(shown)} | {ini_cell} | {_cell(help_text)} |")
    unpaired = sorted(set(recorder.ini) - {n[0][2:].replace("-", "_") for n, _ in recorder.options})
    if unpaired:
        raise ValueError(f"ini options without a command-line option: {unpaired}")
    return "\n".join(rows)


def command_help(match: re.Match[str]) -> str:
    command = [sys.executable, "-m", "pytest_hparams", match[1], "--help"]
    env = {**os.environ, "COLUMNS": "88"}
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout
    return f"```text\n$ python -m pytest_hparams {match[1]} --help\n{out.rstrip()}\n```"


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    return HELP.sub(command_help, markdown.replace(MARKER, options_table()))
