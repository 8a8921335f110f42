"""The sweep table as a pure function of trial records: one model, rendered
as text and as Markdown."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from conftest import NON_ASCII

from pytest_hparams import table
from pytest_hparams.metrics import Metric
from pytest_hparams.records import HParamInfo, Outcome, SweepDefinition, TrialKey, TrialRecord
from pytest_hparams.table import rank


def record(units: int, outcome: str = "passed", case: str = "", **metrics: float) -> TrialRecord:
    params = f"units:{units}" + (f"-{case}" if case else "")
    key = TrialKey(
        f"t.py::test_train[{params}]",
        "t.py::test_train",
        params,
        {"units": units},
        case,
        where=f"[{params}]",
    )
    return TrialRecord(key, Outcome(outcome), metrics, 1.5)


def definition(names: Sequence[str], metrics: Sequence[Metric]) -> SweepDefinition:
    hparams = tuple(HParamInfo(n, None) for n in names)
    return SweepDefinition("t.py::test_train", "", "t.py", ("test_train",), hparams, tuple(metrics))


def format_table(
    records: list[TrialRecord],
    names: Sequence[str],
    metrics: Sequence[Metric],
    top: int | None = None,
) -> list[str]:
    built = table.build(definition(names, metrics), records, top)
    return [text for text, _ in table.text_lines(built)]


def format_best_line(test: str, records: list[TrialRecord], metrics: Sequence[Metric]) -> str:
    return f"{test}: {table.build(definition([], metrics), records).summary}"


def test_rows_are_sorted_by_the_primary_metric_and_the_best_is_marked() -> None:
    records = [record(16, accuracy=0.8), record(32, accuracy=0.95), record(64, accuracy=0.9)]
    lines = format_table(records, ["units"], [Metric("accuracy")])
    assert lines[0].split() == ["units", "accuracy", "(max)", "duration", "outcome"]
    assert [line.split()[:3] for line in lines[1:4]] == [
        ["*", "32", "0.95"],
        ["64", "0.9", "1.50s"],
        ["16", "0.8", "1.50s"],
    ]
    assert lines[-1] == "3 trials: 3 passed; best accuracy=0.95 at [units:32]"


def test_a_min_goal_ranks_the_smallest_first() -> None:
    records = [record(16, loss=0.3), record(32, loss=0.1)]
    ranked = rank(records, Metric("loss"))
    assert [r.key.hparams["units"] for r in ranked] == [32, 16]


def test_failed_trials_are_listed_after_passed_ones_and_never_best() -> None:
    records = [record(16, "failed"), record(32, accuracy=0.5), record(64, "error")]
    lines = format_table(records, ["units"], [Metric("accuracy")])
    assert [line.split()[-1] for line in lines[1:4]] == ["passed", "failed", "error"]
    assert lines[1].startswith("*")
    assert lines[-1].startswith("3 trials: 1 passed, 1 failed, 1 error")


def test_non_finite_metrics_are_flagged_and_not_ranked_best() -> None:
    records = [record(16, accuracy=float("nan")), record(32, accuracy=0.2)]
    lines = format_table(records, ["units"], [Metric("accuracy")])
    assert "nan!" in lines[2]
    assert lines[1].startswith("*") and " 32 " in lines[1]


def test_a_long_sweep_shows_the_best_rows_and_counts_the_rest_but_keeps_failures() -> None:
    records = [record(u, accuracy=u / 100) for u in range(30)] + [record(99, "failed")]
    lines = format_table(records, ["units"], [Metric("accuracy")], top=3)
    body = lines[1:-2]
    assert [line.split()[-1] for line in body] == ["passed"] * 3 + ["failed"]
    assert lines[-2] == "... 27 more not shown (--hparams-top 0 shows all)"


def test_a_sweep_of_up_to_twenty_trials_shows_every_row() -> None:
    records = [record(u, accuracy=u / 100) for u in range(20)]
    lines = format_table(records, ["units"], [Metric("accuracy")])
    assert len(lines) == 1 + 20 + 1
    assert not any("more not shown" in line for line in lines)


def test_ties_are_ranked_by_node_id_not_by_the_order_trials_ran() -> None:
    records = [record(u, accuracy=0.5) for u in (3, 1, 2)]
    ranked = rank(records, Metric("accuracy"))
    assert [r.key.hparams["units"] for r in ranked] == [1, 2, 3]
    assert rank(list(reversed(records)), Metric("accuracy")) == ranked


def test_the_best_line_names_the_parametrize_case_too() -> None:
    records = [record(1, case="mnist", acc=0.9), record(1, case="cifar", acc=0.5)]
    assert format_best_line("t.py::test_train", records, [Metric("acc")]).endswith(
        "best acc=0.9 at [units:1-mnist]"
    )


def test_control_characters_in_values_print_as_escapes() -> None:
    key = TrialKey("t[x]", "t", "x", {"name": "a\x1b[31mred\nb"})
    lines = format_table([TrialRecord(key, Outcome.PASSED, {"acc": 1.0})], ["name"], [])
    assert "\x1b" not in "".join(lines) and "\n" not in "".join(lines)
    assert "a\\x1b[31mred\\nb" in lines[1]


def test_bidirectional_controls_in_values_print_as_escapes() -> None:
    key = TrialKey("t[x]", "t", "x", {"name": "abc\u202edef\u2066"})
    lines = format_table([TrialRecord(key, Outcome.PASSED, {"acc": 1.0})], ["name"], [])
    assert "\u202e" not in "".join(lines) and "\u2066" not in "".join(lines)
    assert "abc\\u202edef\\u2066" in lines[1]


def test_the_markdown_table_has_the_text_tables_rows_and_columns() -> None:
    records = [record(16, accuracy=0.8), record(32, "failed"), record(64, accuracy=0.9)]
    built = table.build(definition(["units"], [Metric("accuracy")]), records)
    text = [line for line, _ in table.text_lines(built)]
    markdown = table.markdown_lines(built)
    rows = [line for line in markdown if line.startswith("| ") and "---" not in line]
    assert [r.split("|")[2].strip() for r in rows] == ["units", "64", "16", "32"]
    assert [line.split()[-1] for line in text[1:4]] == ["passed", "passed", "failed"]
    assert rows[1].startswith("| 🏆 | 64 | 0.9 |") and built.summary in markdown


def test_undeclared_metrics_get_columns_after_declared_ones() -> None:
    records = [record(16, accuracy=0.5, extra=2.0)]
    header = format_table(records, ["units"], [Metric("accuracy")])[0]
    assert header.index("accuracy") < header.index("extra")


def test_without_declared_metrics_the_first_returned_key_ranks() -> None:
    records = [record(16, score=1.0), record(32, score=3.0)]
    assert format_best_line("t.py::test_train", records, []) == (
        "t.py::test_train: 2 trials: 2 passed; best score=3 at [units:32]"
    )


def test_other_parametrize_values_get_a_case_column() -> None:
    records = [record(16, case="mnist", accuracy=0.5)]
    lines = format_table(records, ["units"], [Metric("accuracy")])
    assert lines[0].split()[1] == "case"
    assert "mnist" in lines[1]


def test_html_and_pipes_in_values_stay_data_in_the_markdown_summary(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_h="""
        from pytest_hparams import hparam_grid

        @hparam_grid(name=["<b>x</b>|y", "a\\nb"])
        def test_h(name):
            return {"score": len(name)}
        """
    )
    pytester.runpytest("--hparams-markdown=r.md").assert_outcomes(passed=2)
    text = (pytester.path / "r.md").read_text()
    assert "&lt;b&gt;x&lt;/b&gt;\\|y" in text and "<b>" not in text
    assert "a\\nb" in text
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(rows) == 3 and all(row.count(" | ") == rows[0].count(" | ") for row in rows)


def test_the_markdown_summary_has_the_case_column_the_table_has(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_x=NON_ASCII)
    pytester.runpytest("--hparams-markdown=r.md").assert_outcomes(passed=8)
    text = (pytester.path / "r.md").read_text()
    assert "| case |" in text and "| data=a |" in text and "| data=b |" in text
