"""The HTML report (--hparams-html, merge --html), opened as a reviewer opens
it: from file://, in a real headless Chromium with the network off."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from plotly.offline import get_plotlyjs

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "docs"))
import screenshot

from pytest_hparams.export import HTML_START

# Pruned by the median pruner, repeated over seeds, compared with a baseline:
# every figure the report draws. BONUS shifts the scores (a degraded run).
SWEEPS = """
import os
from pytest_hparams import hparam_grid, Metric

BONUS = float(os.environ.get("BONUS", "0"))

@hparam_grid(lr=[0.8, 0.6, 0.4, 0.2, 0.1, 0.05], opt=["adam", "sgd"], pruner="median",
             metrics=[Metric("acc", tolerance=0.01)])
def test_curves(lr, opt, trial):
    for step in range(5):
        acc = lr * (1 - 0.5 ** (step + 1)) + (0.1 if opt == "adam" else 0.0) + BONUS
        trial.log(step, acc=acc)
    return {"acc": acc}

@hparam_grid(units=[16, 32], repeats=3, metrics=[Metric("score", tolerance=0.01)])
def test_seeds(units, trial):
    return {"score": units / 100 + trial.repeat * 0.01 + BONUS}
"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("needs Debian's chromium (apt-get install chromium; .ci/run installs it)")
    return found


def assert_drawn_offline(report: Path, figures: int) -> screenshot.Page:
    """Opens the report as a reviewer would and checks every figure drew."""
    page = screenshot.open_report(chromium(), report)
    assert page.errors == []
    assert page.requests == []
    assert len(page.plots) == figures
    for plot in page.plots:
        assert plot["plotly"], plot
        assert plot["traces"] > 0 and plot["points"] > 0, plot
        assert plot["marks"] > 0, plot  # drawn, not only held
    return page


def test_the_html_report_draws_every_figure_offline(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweeps=SWEEPS)
    pytester.runpytest_subprocess(
        "-p", "no:randomly", "--hparams-logdir=logs", "--hparams-save-baseline=base.json"
    )
    result = pytester.runpytest_subprocess(
        "-p",
        "no:randomly",
        "--hparams-logdir=logs2",
        "--hparams-baseline=base.json",
        "--hparams-html=report.html",
    )
    result.stdout.fnmatch_lines(["html report: report.html"])
    html = (pytester.path / "report.html").read_text()
    assert html.startswith(HTML_START)
    # plotly.js once, and no script from anywhere else.
    assert html.count(get_plotlyjs()[:300]) == 1
    assert "<script src=" not in html.replace(get_plotlyjs(), "")
    assert "(pruned at 0)" in html or "(pruned at 1)" in html
    # test_curves: curves, parallel, a slice per hparam (2), baseline;
    # test_seeds: parallel, a slice, the repeats, the baseline.
    assert_drawn_offline(pytester.path / "report.html", figures=9)


def test_a_pruned_trial_s_curve_stops_where_it_was_pruned(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweeps=SWEEPS)
    pytester.runpytest_subprocess(
        "-p",
        "no:randomly",
        "-k",
        "curves",
        "--hparams-logdir=logs",
        "--hparams-json=r.json",
        "--hparams-html=r.html",
    )
    report = json.loads((pytester.path / "r.json").read_text())
    trials = report["sweeps"][0]["trials"]
    pruned = [t for t in trials if t["outcome"] == "pruned"]
    assert pruned
    for trial in pruned:
        (points,) = trial["curves"][""].values()
        assert points[-1][0] == trial["pruned_at"]  # logged nothing past its prune
    html = (pytester.path / "r.html").read_text()
    for trial in pruned:
        assert f"{trial['where']} (pruned at {trial['pruned_at']})" in html


def test_the_markdown_summary_links_to_the_html_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweeps=SWEEPS)
    (pytester.path / "out").mkdir()
    pytester.runpytest_subprocess(
        "-k", "seeds", "--hparams-markdown=out/summary.md", "--hparams-html=report.html"
    )
    summary = (pytester.path / "out" / "summary.md").read_text()
    assert summary.startswith("### `test_sweeps.py::test_seeds`")  # a rerun may replace it
    assert summary.rstrip().endswith("Plots of every sweep: [report.html](../report.html)")
    pytester.runpytest_subprocess("-k", "seeds", "--hparams-markdown=out/summary.md")
    assert "Plots" not in (pytester.path / "out" / "summary.md").read_text()


def test_html_without_plotly_is_a_usage_error_naming_the_extra(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "plotly", None)  # find_spec: not installed
    pytester.makepyfile(test_sweeps=SWEEPS)
    result = pytester.runpytest("--hparams-html=report.html")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: --hparams-html draws its plots with plotly, which is not installed; "
            "install it with: pip install 'pytest-hparams[report]'"
        ]
    )
    assert not (pytester.path / "report.html").exists()


def test_html_refuses_a_file_it_did_not_write(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweeps=SWEEPS)
    (pytester.path / "notes.html").write_text("<html>my notes</html>")
    result = pytester.runpytest("--hparams-html=notes.html")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: --hparams-html: *notes.html holds something other than a pytest-hparams "
            "HTML report, which this run would write over; give a path of its own"
        ]
    )
    assert (pytester.path / "notes.html").read_text() == "<html>my notes</html>"


def test_the_ini_names_the_html_report_relative_to_itself(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweeps=SWEEPS)
    pytester.makeini("[pytest]\nhparams_html = reports/sweeps.html\n")
    (pytester.path / "reports").mkdir()
    pytester.runpytest_subprocess("-k", "seeds")
    assert (pytester.path / "reports" / "sweeps.html").read_text().startswith(HTML_START)


def test_merge_draws_the_shards_curves_from_their_json_reports(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweeps=SWEEPS)
    for k in (1, 2):
        pytester.runpytest_subprocess(
            "-p",
            "no:randomly",
            "-k",
            "curves",
            f"--hparams-shard={k}/2",
            f"--hparams-logdir=logs{k}",
            f"--hparams-json=shard{k}.json",
        )
    merged = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_hparams",
            "merge",
            "shard1.json",
            "shard2.json",
            "--html",
            "merged.html",
        ],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert merged.returncode == 0, merged.stderr
    html = (pytester.path / "merged.html").read_text()
    assert html.startswith(HTML_START)
    # Every trial's curve, whichever shard ran it: 12 lines in one figure.
    page = assert_drawn_offline(pytester.path / "merged.html", figures=4)
    assert page.plots[0]["traces"] == 12


def test_pytest_html_s_report_gains_the_sweep_tables_and_a_link(pytester: pytest.Pytester) -> None:
    pytest.importorskip("pytest_html")
    pytester.makepyfile(test_sweeps=SWEEPS)
    (pytester.path / "out").mkdir()
    pytester.runpytest_subprocess(
        "-k", "seeds", "--html=out/pytest.html", "--hparams-html=sweeps.html"
    )
    page = (pytester.path / "out" / "pytest.html").read_text()
    assert "hparams: <code>test_sweeps.py::test_seeds</code>" in page
    assert "<td>0.33 ± 0.01 (n=3)</td>" in page or "0.33 ± 0.01 (n=3)</td>" in page
    assert 'Plots of every sweep: <a href="../sweeps.html">sweeps.html</a>' in page
    # Without a run of ours, pytest-html's report is its own.
    pytester.runpytest_subprocess("-k", "nothing", "--html=out/empty.html")
    assert "hparams:" not in (pytester.path / "out" / "empty.html").read_text()


def test_a_curve_ends_with_the_value_logged_not_the_value_returned(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_last="""
        from pytest_hparams import hparam_grid

        @hparam_grid(lr=[0.3], metrics=["acc"])
        def test_last(lr, trial):
            for step in range(5):
                trial.log(step, acc=0.1 * step)
            return {"acc": 0.46}  # a last evaluation, on other data
        """
    )
    pytester.runpytest("--hparams-logdir=logs", "--hparams-json=r.json").assert_outcomes(passed=1)
    (trial,) = json.loads((pytester.path / "r.json").read_text())["sweeps"][0]["trials"]
    assert trial["metrics"] == {"acc": 0.46}
    assert trial["curves"][""]["acc"][-1] == [4, pytest.approx(0.4)]
