"""Errors and warnings meant for the person running the sweep.

Every error the plugin raises on purpose is an `HParamsError`, so a caller
(or a test) can catch the family; the plugin turns each kind into what pytest
shows for that kind of mistake: a collection error, a usage error, a failed
trial or a warning.
"""

from __future__ import annotations

import warnings

import pytest


class HParamsError(Exception):
    """Something about a sweep or its files is wrong; the message says what
    and how to fix it."""


class SweepError(HParamsError, ValueError):
    """A sweep was declared wrongly: a one-line collection error of its test."""


class OverrideError(SweepError):
    """An `--hparams-set` value does not fit its hparam: a usage error."""


class MetricsError(HParamsError):
    """A swept test returned something that is not a dict of numbers: the trial fails."""


class BaselineError(HParamsError):
    """A baseline file cannot be used; the message says why."""


class LogdirError(HParamsError):
    """The logdir, or one trial's files in it, cannot be written; the message
    says why and what to do."""


class HParamsWarning(pytest.PytestWarning):
    """Something about a sweep deserves attention but does not fail it."""


def warn_at(item: pytest.Item, message: str, reporting: bool = False) -> None:
    """Warns with an HParamsWarning placed at the test's own line.

    Args:
      reporting: Set when called from a report hook: there a warning that
        `-W error` turned into an exception would be an INTERNALERROR, so it
        is only shown (in pytest's warnings summary), never raised.
    """
    code = getattr(getattr(item, "function", None), "__code__", None)
    with warnings.catch_warnings():
        if reporting:
            warnings.simplefilter("always", HParamsWarning)
        if code is None:
            warnings.warn(HParamsWarning(message), stacklevel=2)
            return
        # Point at the test, not at this plugin, in the warnings summary.
        warnings.warn_explicit(
            HParamsWarning(message), HParamsWarning, code.co_filename, code.co_firstlineno
        )
