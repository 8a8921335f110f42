"""`python -m pytest_hparams merge|compare ...`: see pytest_hparams.merge and
pytest_hparams.compare."""

from __future__ import annotations

import sys

from pytest_hparams import compare, merge

USAGE = """usage: python -m pytest_hparams merge REPORT.json [REPORT.json ...] [options]
       python -m pytest_hparams compare BASE.json HEAD.json [options]"""
COMMANDS = {"merge": merge.main, "compare": compare.main}

if __name__ == "__main__":
    command = COMMANDS.get(sys.argv[1] if len(sys.argv) > 1 else "")
    if command is None:
        print(USAGE, file=sys.stderr)
        sys.exit(2)
    sys.exit(command(sys.argv[2:]))
