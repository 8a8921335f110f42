"""Errors and warnings meant for the person running the sweep."""

from __future__ import annotations

import pytest


class HParamsError(ValueError):
    """A sweep was declared wrongly; the message says what and how to fix it.

    The plugin turns it into a one-line collection error naming the test.
    """


class HParamsWarning(pytest.PytestWarning):
    """Something about a sweep deserves attention but does not fail it."""
