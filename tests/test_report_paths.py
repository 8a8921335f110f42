"""Where the reports go: a path that cannot be written is refused before
anything runs, a file the plugin did not write is never replaced, and a
report is written whole, or not at all, whatever else fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import GRID, run_merge


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize(
    "option", ["--hparams-save-baseline", "--hparams-json", "--hparams-markdown"]
)
def test_a_report_path_that_cannot_be_written_is_refused_before_anything_runs(
    pytester: pytest.Pytester, option: str
) -> None:
    pytester.makepyfile(test_grid=GRID)
    result = pytester.runpytest(f"{option}=/proc/self/report.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: {option}: cannot write /proc/self/report.json (*); choose a writable path"]
    )
    result.stdout.no_fnmatch_line("*passed*")


def test_a_report_that_fails_at_the_end_does_not_stop_the_others_and_fails_the_run(
    pytester: pytest.Pytester,
) -> None:
    pytester.mkdir("out")
    pytester.makepyfile(
        test_gone="""
        import shutil
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1, 2])
        def test_gone(a):
            shutil.rmtree("out", ignore_errors=True)
            return {"score": a}
        """
    )
    result = pytester.runpytest(
        "--hparams-json=out/r.json",
        "--hparams-markdown=r.md",
        "--hparams-save-baseline=base.json",
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "baseline saved: base.json (2 trials)",
            "markdown summary: r.md",
            "hparams: could not write the json report to out/r.json (FileNotFoundError: *)",
        ]
    )
    assert (pytester.path / "r.md").exists() and (pytester.path / "base.json").exists()


def test_a_nan_regression_still_writes_the_json_report(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        test_n="""
        import os
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1, 2])
        def test_n(a):
            return {"score": float("nan") if os.environ.get("NAN") and a == 2 else 1.0}
        """
    )
    pytester.runpytest("--hparams-save-baseline=b.json").assert_outcomes(passed=2)
    monkeypatch.setenv("NAN", "1")
    result = pytester.runpytest("--hparams-baseline=b.json", "--hparams-json=r.json")
    result.assert_outcomes(passed=1, failed=1)
    data = json.loads((pytester.path / "r.json").read_text())
    (failed,) = [t for t in data["sweeps"][0]["trials"] if t["outcome"] == "failed"]
    assert failed["metrics"] == {"score": "nan"}
    assert failed["baseline"]["metrics"]["score"]["value"] == "nan"


def test_a_run_that_records_no_trial_replaces_an_earlier_report(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_grid=GRID, test_plain="def test_plain():\n    pass\n")
    pytester.runpytest("--hparams-json=r.json").assert_outcomes(passed=13)
    pytester.runpytest("--hparams-json=r.json", "-k", "plain").assert_outcomes(passed=1)
    assert json.loads((pytester.path / "r.json").read_text())["sweeps"] == []


def test_a_report_may_not_overwrite_the_baseline_it_is_compared_with(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_grid=GRID)
    pytester.runpytest("--hparams-save-baseline=b.json").assert_outcomes(passed=12)
    saved = (pytester.path / "b.json").read_text()
    result = pytester.runpytest("--hparams-baseline=b.json", "--hparams-json=b.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --hparams-json: *b.json is also a baseline or another*"])
    assert (pytester.path / "b.json").read_text() == saved


def test_a_report_path_that_holds_a_file_of_the_users_is_refused_and_the_file_kept(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_grid=GRID)
    source = (pytester.path / "test_grid.py").read_text()
    (pytester.path / "notes.md").write_text("# My notes\n")
    # A test file given as the report path (two words are refused before this).
    for option in ("--hparams-json", "--hparams-markdown"):
        result = pytester.runpytest(f"{option}=test_grid.py")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"ERROR: {option}: *test_grid.py holds something other *"])
    # Notes whose first heading reads like a summary's, and a script that
    # begins with more blank lines than the check reads at first.
    kept = {"notes.md": "# My notes\n", "steps.md": "### `install` step\n\nnotes\n"}
    kept["late.py"] = "\n" * 300 + "print('mine')\n"
    for name, text in kept.items():
        (pytester.path / name).write_text(text)
    for option, name in (
        ("--hparams-markdown", "notes.md"),
        ("--hparams-markdown", "steps.md"),
        ("--hparams-markdown", "late.py"),
        ("--hparams-json", "late.py"),
    ):
        result = pytester.runpytest(f"{option}={name}")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert (pytester.path / "test_grid.py").read_text() == source
    for name, text in kept.items():
        assert (pytester.path / name).read_text() == text
    # Its own reports, and blank files, it writes over run after run.
    (pytester.path / "blank.md").write_text("")
    args = ("--hparams-json=r.json", "--hparams-markdown=blank.md")
    pytester.runpytest(*args).assert_outcomes(passed=12)
    pytester.runpytest(*args).assert_outcomes(passed=12)
    assert (pytester.path / "blank.md").read_text().startswith("### `")
    # Nor may a report replace the only-best file it reads.
    result = pytester.runpytest("--hparams-only-best=r.json", "--hparams-markdown=r.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --hparams-markdown: *r.json is also a baseline or *"])


def test_merge_refuses_to_write_over_an_input_or_a_file_of_the_users(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_grid=GRID)
    pytester.runpytest("--hparams-json=r.json").assert_outcomes(passed=12)
    report = (pytester.path / "r.json").read_text()
    for output in ("r.json", "test_grid.py"):
        merged = subprocess.run(
            [sys.executable, "-m", "pytest_hparams", "merge", "r.json", "-o", output],
            cwd=pytester.path,
            capture_output=True,
            text=True,
        )
        assert merged.returncode == 2
        assert merged.stderr.startswith(f"error: {output} ")
    assert (pytester.path / "r.json").read_text() == report
    assert "hparam_grid" in (pytester.path / "test_grid.py").read_text()

    def merge(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "pytest_hparams", "merge", "r.json", *args]
        return subprocess.run(command, cwd=pytester.path, capture_output=True, text=True)

    both = merge("-o", "m.out", "--markdown", "m.out")
    assert both.returncode == 2 and "name one file" in both.stderr
    assert not (pytester.path / "m.out").exists()
    # A blank file is none yet, and a report reformatted (json.tool) is still one.
    (pytester.path / "blank.json").write_text("")
    (pytester.path / "m.json").write_text(json.dumps(json.loads(report), indent=4))
    done = merge("-o", "m.json", "--save-baseline", "blank.json")
    assert done.returncode == 0, done.stderr
    assert json.loads((pytester.path / "blank.json").read_text())["trials"]


def test_merge_refuses_an_output_it_could_not_write_before_it_merges(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_grid=GRID)
    pytester.runpytest("--hparams-json=r.json").assert_outcomes(passed=12)
    (pytester.path / "folder").mkdir()
    os.mkfifo(pytester.path / "fifo")
    for option in ("-o", "--markdown", "--save-baseline"):
        for path, why in (
            ("folder", "is a directory"),
            ("fifo", "is not a regular file"),
            ("missing/out", "the directory * does not exist"),
        ):
            # With another output that could be written: it is not, either.
            other = "--markdown" if option == "-o" else "-o"
            merged = run_merge(pytester, "r.json", option, path, other, "other")
            assert merged.ret == 2
            merged.stderr.fnmatch_lines([f"error: {option}: *{why}*"])
    assert (pytester.path / "fifo").is_fifo() and not (pytester.path / "other").exists()


def test_a_report_path_that_is_a_symlink_is_written_through_and_keeps_its_mode(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_grid=GRID)
    (pytester.path / "artifacts").mkdir()
    target = pytester.path / "artifacts" / "report.json"
    target.write_text("")
    target.chmod(0o444)
    (pytester.path / "report.json").symlink_to("artifacts/report.json")
    pytester.runpytest("--hparams-json=report.json").assert_outcomes(passed=12)
    assert (pytester.path / "report.json").is_symlink()
    assert json.loads(target.read_text())["format"] == "pytest-hparams-report"
    assert target.stat().st_mode & 0o777 == 0o444


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux's /proc")
def test_dev_stdout_as_a_report_path_is_refused(pytester: pytest.Pytester) -> None:
    # Renamed over, the file a shell redirected stdout to would be replaced
    # (and, as root, /dev/stdout itself).
    pytester.makepyfile(test_grid=GRID)
    result = pytester.runpytest("--hparams-json=/dev/stdout")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --hparams-json: /dev/stdout leads to a process's file *"])
    assert Path("/dev/stdout").is_symlink()


def test_a_summary_written_by_a_run_without_sweeps_is_written_over_by_the_next(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    args = ("--hparams-markdown=s.md", "--hparams-html=r.html")
    pytester.runpytest(*args).assert_outcomes(passed=1)
    pytester.runpytest(*args).assert_outcomes(passed=1)
    (pytester.path / "s.md").write_text(
        "Plots of every sweep: [r.html](r.html)\n"
    )  # as 125a1fd wrote
    pytester.runpytest(*args).assert_outcomes(passed=1)
