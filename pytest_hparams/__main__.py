"""`python -m pytest_hparams merge ...`: see pytest_hparams.merge."""

from __future__ import annotations

import sys

from pytest_hparams import merge

USAGE = "usage: python -m pytest_hparams merge REPORT.json [REPORT.json ...] [options]"

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] != "merge":
        print(USAGE, file=sys.stderr)
        sys.exit(2)
    sys.exit(merge.main(sys.argv[2:]))
