"""pytest-html's report gains each sweep's table, and a link to the HTML
report when one is written: registered only where pytest-html is active,
through its own hook."""

from __future__ import annotations

import html
import os
from pathlib import Path

import pytest

from pytest_hparams.reporter import Reporter
from pytest_hparams.table import html_lines


class HtmlSummary:
    """pytest-html's `pytest_html_results_summary`, fed from the reporter.

    pytest-html writes its report in its own `pytest_sessionfinish`, which
    runs last: the reporter's gates have decided by then.
    """

    def __init__(self, reporter: Reporter, report: Path | None) -> None:
        self.reporter = reporter
        self.report = report  # pytest-html's own file, for a relative link

    @pytest.hookimpl
    def pytest_html_results_summary(
        self, prefix: list[str], summary: list[str], postfix: list[str], session: pytest.Session
    ) -> None:
        if not self.reporter.records:
            return
        html = self.reporter.settings.html_path
        if html is not None and self.report is not None:
            link = Path(os.path.relpath(html.resolve(), self.report.resolve().parent)).as_posix()
            postfix.append(
                f'<p>Plots of every sweep: <a href="{_attr(link)}">{_attr(html.name)}</a></p>'
            )
        for model in self.reporter.tables(0):
            postfix.append(f"<h3>hparams: <code>{_attr(model.test)}</code></h3>")
            postfix.extend(html_lines(model))


def _attr(text: str) -> str:
    return html.escape(text, quote=True)
