"""Plugin behaviour through pytester: collection, ids, metrics, the trial
fixture, errors, options and the terminal table."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import GRID, MIXED_OUTCOMES, NON_ASCII, Dashboard, assert_agree

from pytest_hparams import options


def test_one_item_per_combination_with_readable_ids(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_grid=GRID)
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "test_grid.py::test_train[[]num_units:16-learning_rate:0.01-optimizer:adam[]]",
            "test_grid.py::test_train[[]num_units:16-learning_rate:0.01-optimizer:sgd[]]",
            "test_grid.py::test_train[[]num_units:16-learning_rate:0.1-optimizer:adam[]]",
            "*",
            "test_grid.py::test_train[[]num_units:64-learning_rate:0.1-optimizer:sgd[]]",
            "12 tests collected*",
        ]
    )


def test_sweep_runs_every_trial_and_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_grid=GRID)
    pytester.runpytest().assert_outcomes(passed=12)


def test_minus_k_selects_trials_by_name_and_value(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_grid=GRID)
    result = pytester.runpytest("-k", "optimizer:adam and num_units:64")
    result.assert_outcomes(passed=2, deselected=10)


def test_returning_metrics_never_warns_even_with_w_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_grid=GRID)
    result = pytester.runpytest("-W", "error")
    result.assert_outcomes(passed=12)
    result.stdout.no_fnmatch_line("*Return*Warning*")


def test_without_the_plugin_the_decorator_does_not_sweep(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_grid=GRID)
    result = pytester.runpytest("-p", "no:hparams", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["test_grid.py::test_train", "1 test collected*"])
    result = pytester.runpytest("-p", "no:hparams", "--hparams-logdir=logs")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_under_no_hparams_each_sweep_fails_with_one_line_naming_the_cause(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_grid=GRID,
        test_other="""
        from pytest_hparams import hparam_random

        class TestModel:
            @hparam_random(3, lr=[0.1, 0.2])
            def test_random(self, lr):
                return {"score": lr}

        def test_plain():
            pass
        """,
    )
    # A process of its own: in this one the suite's run has the plugin on.
    result = pytester.runpytest_subprocess("-p", "no:hparams", "-p", "no:randomly")
    result.assert_outcomes(failed=2, passed=1)
    disabled = "pytest-hparams is disabled (-p no:hparams), so this @{} sweep cannot run; remove*"
    result.stdout.fnmatch_lines([disabled.format("hparam_grid"), disabled.format("hparam_random")])
    result.stdout.no_fnmatch_line("*fixture*not found*")
    result.stdout.no_fnmatch_line("*Unknown pytest.mark*")
    result.stdout.no_fnmatch_line("*Traceback*")


def test_outside_pytest_the_decorators_only_mark(monkeypatch: pytest.MonkeyPatch) -> None:
    import pytest_hparams
    import pytest_hparams.plugin

    monkeypatch.setattr(pytest_hparams.plugin, "active_runs", 0)
    monkeypatch.delenv("PYTEST_VERSION")

    @pytest_hparams.hparam_grid(a=[1, 2])
    def test_x(a: int) -> int:
        return a

    assert test_x(2) == 2
    assert [mark.name for mark in test_x.pytestmark] == ["pytest_hparams_sweep"]  # type: ignore[attr-defined]


def test_composes_with_parametrize_fixtures_marks_and_classes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_mix="""
        import pytest
        from pytest_hparams import hparam_grid

        @pytest.fixture
        def dataset():
            return [1, 2, 3]

        @pytest.mark.parametrize("scale", [1, 10])
        @hparam_grid(units=[16, 32], opt=["adam", "sgd"])
        def test_product(units, opt, scale, dataset):
            return {"score": units * scale * len(dataset)}

        class TestModel:
            @pytest.mark.slow
            @hparam_grid(depth=[1, 2, 3])
            def test_depth(self, depth, dataset):
                return {"score": depth}
        """
    )
    pytester.makeini("[pytest]\nmarkers = slow: slow")
    result = pytester.runpytest("-v", "-m", "slow")
    result.assert_outcomes(passed=3, deselected=8)
    result.stdout.fnmatch_lines(["*TestModel::test_depth[[]depth:1[]] PASSED*"])
    result = pytester.runpytest("-v", "-k", "test_product")
    result.assert_outcomes(passed=8, deselected=3)
    result.stdout.fnmatch_lines(["*test_product[[]units:16-opt:adam-1[]] PASSED*"])


def test_hparams_argument_gets_every_value_as_a_dict(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1, 2], b=["x"])
        def test_dict(hparams, a):
            assert hparams == {"a": a, "b": "x"}
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_a_bare_number_counts_as_the_single_declared_metric(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1, 2], metrics=["accuracy"])
        def test_one(a):
            return a / 10
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*best accuracy=0.2 at [[]a:2[]]"])


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        ('{"accuracy": "high"}', "metric 'accuracy' must be a number (got str 'high')"),
        ('{"accuracy": None}', "metric 'accuracy' must be a number (got NoneType None)"),
        ("[0.5]", "must return a dict of metrics, a number or None (got list)"),
        ("0.5", "returned a bare number (0.5) but declares 2 metrics"),
    ],
)
def test_a_non_numeric_result_fails_that_trial_naming_key_and_type(
    pytester: pytest.Pytester, returned: str, message: str
) -> None:
    pytester.makepyfile(
        f"""
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1], metrics=["accuracy", "loss"])
        def test_bad(a):
            return {returned}
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*test_bad*{message}*"])
    result.stdout.no_fnmatch_line("*Traceback*")


# pytester's in-process run inherits this suite's "error" filter; the user's
# default is what is under test here.
@pytest.mark.filterwarnings("default")
def test_nan_and_inf_are_recorded_and_flagged(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_nan="""
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1, 2, 3])
        def test_nan(a):
            return {"loss": [float("nan"), float("inf"), 0.5][a - 1]}
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=3, warnings=2)
    result.stdout.fnmatch_lines(
        [
            "*/test_nan.py:3: HParamsWarning: test_nan.py::test_nan[[]a:1[]] returned non-finite"
            " loss=nan",
            "*  a loss (min) duration outcome",
            "* 3 * 0.5 * passed",
            "  1 * nan! * passed",
        ]
    )


def test_trial_fixture_gives_hparams_id_seed_and_logdir(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from pytest_hparams import hparam_grid

        @hparam_grid(a=[1, 2])
        def test_trial(a, trial):
            assert trial.hparams == {"a": a}
            assert trial.id.endswith(f"test_trial[a:{a}]")
            assert trial.logdir.is_dir()
            with open("seeds.txt", "a") as f:
                f.write(f"{a} {trial.seed}\\n")
            trial.log(0, accuracy=0.5)  # no logdir: accepted, nothing written
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)
    pytester.runpytest().assert_outcomes(passed=2)
    lines = pytester.path.joinpath("seeds.txt").read_text().splitlines()
    first, second = lines[:2], lines[2:]
    assert len({line.split()[1] for line in first}) == 2
    assert first == second


def test_trial_fixture_outside_a_sweep_is_an_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain(trial): pass")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*only available to tests decorated with @hparam_grid*"])


def test_trial_fixture_in_a_plain_test_beside_a_sweep_is_an_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_grid=GRID, test_plain="def test_plain(trial): pass")
    result = pytester.runpytest()
    result.assert_outcomes(passed=12, errors=1)
    result.stdout.fnmatch_lines(["*only available to tests decorated with @hparam_grid*"])


# Written by a conftest when the run ends: the package's modules it loaded.
LOADED = """
import sys

def pytest_unconfigure(config):
    loaded = sorted(m for m in sys.modules if m.startswith("pytest_hparams"))
    with open("loaded.txt", "w") as f:
        f.write(" ".join(loaded))
"""


@pytest.mark.parametrize(
    ("files", "args", "loads"),
    [
        ({"test_plain": "def test_a(): pass"}, [], False),
        # A sweep in the last file collected: the objects start as it is.
        ({"test_a_plain": "def test_a(): pass", "test_b_grid": GRID}, [], True),
        ({"test_plain": "def test_a(): pass"}, ["--hparams-top=0"], True),
        ({"test_plain": "def test_a(): pass"}, ["-o", "hparams_top=0"], True),
        ({"test_plain": "def test_a(): pass"}, ["-p", "xdist", "-n", "1"], True),
    ],
    ids=["plain", "a-sweep", "an-option", "an-ini-value", "xdist"],
)
def test_a_run_loads_the_package_only_when_it_has_a_sweep_or_an_option(
    pytester: pytest.Pytester, files: dict[str, str], args: list[str], loads: bool
) -> None:
    pytester.makeconftest(LOADED)
    pytester.makepyfile(**files)
    result = pytester.runpytest_subprocess("-p", "no:randomly", *args)
    assert result.ret == 0, result.stdout.str()
    loaded = (pytester.path / "loaded.txt").read_text().split()
    assert ("pytest_hparams.runner" in loaded) is loads, loaded
    assert ("pytest_hparams.reporter" in loaded) is loads, loaded
    if "test_b_grid" in files:  # made late, they told the sweep as from the start
        result.stdout.fnmatch_lines(["12 trials: 12 passed; best accuracy=0.73 at *"])


def test_a_sweeps_ids_are_the_same_whether_the_run_sets_an_option_or_not(
    pytester: pytest.Pytester,
) -> None:
    # A subdirectory's conftest parametrizes too: its place among the hooks
    # orders each trial's parameters, and so its id.
    pytester.makepyfile(test_a_plain="def test_plain(): pass")
    sub = pytester.mkpydir("sub")
    (sub / "conftest.py").write_text(
        "def pytest_generate_tests(metafunc):\n"
        "    if 'device' in metafunc.fixturenames:\n"
        "        metafunc.parametrize('device', ['cpu', 'gpu'])\n"
    )
    (sub / "test_b.py").write_text(
        "from pytest_hparams import hparam_grid\n\n"
        "@hparam_grid(lr=[0.1, 0.2])\ndef test_one(lr, device): return {'acc': lr}\n\n"
        "@hparam_grid(lr=[0.1, 0.2])\ndef test_two(lr, device): return {'acc': lr}\n"
    )
    ids = [
        sorted(pytester.runpytest("--collect-only", "-q", *args).outlines[:9])
        for args in ([], ["--hparams-top=20"])
    ]
    assert ids[0] == ids[1]
    assert "sub/test_b.py::test_one[cpu-lr:0.1]" in ids[0], ids[0]
    assert "sub/test_b.py::test_two[cpu-lr:0.1]" in ids[0], ids[0]


def test_another_plugins_trial_fixture_does_not_replace_the_sweeps(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        otherplug="import pytest\n\n@pytest.fixture\ndef trial():\n    return 'other'\n"
    )
    pytester.makeconftest("pytest_plugins = ['otherplug']")
    pytester.makepyfile(
        test_sweep="from pytest_hparams import hparam_grid\n\n"
        "@hparam_grid(lr=[0.1, 0.2])\n"
        "def test_sweep(lr, trial):\n"
        "    assert trial.hparams == {'lr': lr}\n"
        "    return {'acc': lr}\n"
    )
    pytester.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=2)


def test_a_project_module_named_as_one_the_package_imports_does_not_replace_it(
    pytester: pytest.Pytester,
) -> None:
    # pytest puts the test folder first on sys.path as it collects, where
    # the run's objects are made when no option is set.
    tests = pytester.mkdir("tests")  # not the working directory, which python -m puts first
    (tests / "statistics.py").write_text("def summarize(values):\n    return max(values)\n")
    (tests / "test_sweep.py").write_text(
        "from pytest_hparams import hparam_grid\n\n"
        "@hparam_grid(lr=[0.1, 0.2], metrics=['acc'], repeats=3)\n"
        "def test_sweep(lr, trial):\n"
        "    return {'acc': lr + trial.repeat / 100}\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*6 trials: 6 passed*"])
    result.stdout.no_fnmatch_line("*Error*")


def test_every_ini_value_the_plugin_declares_registers_its_objects(
    pytester: pytest.Pytester,
) -> None:
    help_text = pytester.runpytest("--help").stdout.str()
    declared = set(re.findall(r"^  (hparams_\w+) \(", help_text, re.M))
    assert declared == set(options.INI_NAMES)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "@hparam_grid(lr=[0.01, 0.1])\ndef test_x(units): pass",
            "@hparam_grid declares 'lr' but the function takes no such argument; add it, "
            "or take an `hparams` argument*",
        ),
        (
            "@hparam_grid(lr=[0.01, 0.02, 0.01])\ndef test_x(lr): pass",
            "'lr' lists 0.01 more than once; give each value once",
        ),
        ("@hparam_grid()\ndef test_x(): pass", "@hparam_grid needs at least one hparam*"),
        (
            "@hparam_grid(x=[[1, 2]])\ndef test_x(x): pass",
            "'x' values must be bool, int, float or str (got list [[]1, 2[]])",
        ),
        (
            "@pytest.mark.parametrize('lr', [1, 2])\n@hparam_grid(lr=[0.1])\ndef test_x(lr): pass",
            "'lr' is both swept by @hparam_grid and parametrized by @pytest.mark.parametrize; "
            "keep one",
        ),
        (
            "@hparam_grid(a=[1])\nasync def test_x(a): pass",
            "@hparam_grid needs a plain `def` test, not `async def`; run the coroutine inside it*",
        ),
        (
            "@hparam_grid(a=[1])\n@hparam_grid(b=[2])\ndef test_x(a, b): pass",
            "@hparam_grid, @hparam_random or @hparam_search is applied 2 times; use one*",
        ),
        (
            "from tensorboard.plugins.hparams import summary_v2 as hp\n"
            "@hparam_grid(hp.HParam('lr', hp.RealInterval(0.01, 0.1)))\ndef test_x(lr): pass",
            "'lr' is a RealInterval, which has no grid points; list them, "
            "e.g. @hparam_grid(HP_LR, lr=[[]0.01, 0.1[]])",
        ),
    ],
)
def test_a_misused_decorator_is_a_one_line_collection_error(
    pytester: pytest.Pytester, source: str, message: str
) -> None:
    pytester.makepyfile(test_x="import pytest\nfrom pytest_hparams import hparam_grid\n" + source)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["_* ERROR collecting test_x.py _*", f"In test_x.py::test_x: {message}"]
    )
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*During handling*")


def test_a_logdir_that_is_a_file_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_grid=GRID)
    pytester.path.joinpath("taken").write_text("not a directory")
    result = pytester.runpytest("--hparams-logdir=taken")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --hparams-logdir: */taken is a file, not a directory; *"])
    result = pytester.runpytest("--hparams-logdir=taken/sub")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --hparams-logdir: cannot create */taken/sub *; choose a writable*"]
    )
    assert pytester.path.joinpath("taken").read_text() == "not a directory"


def test_a_bad_top_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--hparams-top", "many")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--hparams-top: expected a whole number >= 0, got 'many'"])


def test_a_run_refused_at_configure_leaves_the_next_run_in_the_process_sweeping(
    pytester: pytest.Pytester,
) -> None:
    # pytester's runs share this process, as an IDE's or a notebook's do.
    pytester.makepyfile(test_grid=GRID)
    logdir_file = pytester.path / "taken"
    logdir_file.write_text("")
    refused = pytester.runpytest("--hparams-logdir=taken")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    pytester.runpytest().assert_outcomes(passed=12)


def test_terminal_table_ranks_trials_and_names_the_logdir(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_grid=GRID)
    result = pytester.runpytest("--hparams-logdir=logs", "--hparams-top", "3")
    result.stdout.fnmatch_lines(
        [
            "=*= hparams: test_grid.py::test_train =*=",
            "  num_units learning_rate optimizer accuracy (max) loss duration outcome",
            "*        64          0.01 adam                0.73 0.27    ?.??s passed",
            "         64           0.1 adam                0.64 0.36    ?.??s passed",
            "         64          0.01 sgd                 0.63 0.37    ?.??s passed",
            "... 9 more not shown (--hparams-top 0 shows all)",
            "12 trials: 12 passed; best accuracy=0.73 at"
            " [[]num_units:64-learning_rate:0.01-optimizer:adam[]]",
            "logdir: logs",
            "view:   tensorboard --logdir logs",
        ]
    )


def test_quiet_shrinks_the_table_to_the_best_trial(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_grid=GRID)
    result = pytester.runpytest("-q")
    result.stdout.fnmatch_lines(
        [
            "=*= hparams =*=",
            "test_grid.py::test_train: 12 trials: 12 passed; best accuracy=0.73 at *",
        ]
    )
    result.stdout.no_fnmatch_line("*duration outcome*")


def test_the_table_can_be_turned_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_grid=GRID)
    result = pytester.runpytest("--hparams-no-table")
    result.assert_outcomes(passed=12)
    result.stdout.no_fnmatch_line("*hparams: *")
    result.stdout.no_fnmatch_line("*trials:*")


def test_failed_and_errored_trials_are_visible_in_the_table(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mixed=MIXED_OUTCOMES)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "* 1 * 1 * passed",
            "  2 * - * failed",
            "  3 * - * error",
            "3 trials: 1 passed, 1 failed, 1 error; best score=1 at [[]a:1[]]",
        ]
    )


def test_ini_options_apply_and_the_command_line_wins(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_grid=GRID)
    pytester.makeini("[pytest]\nhparams_logdir = from_ini\nhparams_top = 2")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["... 10 more not shown*", "logdir: from_ini"])
    assert pytester.path.joinpath("from_ini").is_dir()
    result = pytester.runpytest("--hparams-logdir=from_cli", "--hparams-top", "0")
    result.stdout.fnmatch_lines(["12 trials*", "logdir: from_cli"])
    result.stdout.no_fnmatch_line("*more not shown*")


def test_an_ini_logdir_is_relative_to_the_ini_file_not_the_working_directory(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_grid=GRID)
    pytester.makeini("[pytest]\nhparams_logdir = from_ini\n")
    monkeypatch.chdir(pytester.mkdir("elsewhere"))
    pytester.runpytest(str(pytester.path / "test_grid.py")).assert_outcomes(passed=12)
    assert (pytester.path / "from_ini").is_dir()
    assert not (pytester.path / "elsewhere" / "from_ini").exists()


def test_non_ascii_values_with_parametrize_give_every_trial_its_own_session(
    pytester: pytest.Pytester, dashboard: Callable[[Path], Dashboard]
) -> None:
    pytester.makepyfile(test_x=NON_ASCII)
    said = assert_agree(pytester, dashboard)
    assert len(said) == 8 and set(said.values()) == {"passed"}
    board = dashboard(pytester.path / "logs")
    values = sorted(Dashboard.metrics(g)["acc"] for g in board.groups)
    assert len(set(values)) == 8


def test_a_swept_staticmethod_inherited_by_a_subclass_runs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_s="""
        from pytest_hparams import hparam_grid

        class TestA:
            @staticmethod
            @hparam_grid(b=[1, 2])
            def test_s(b):
                return {"score": b}

        class TestB(TestA):
            pass
        """
    )
    pytester.runpytest().assert_outcomes(passed=4)


@pytest.mark.parametrize(("goal", "best"), [("maximize", "3"), ("minimize", "1")])
def test_a_goal_in_optunas_words_ranks_the_sweep(
    pytester: pytest.Pytester, goal: str, best: str
) -> None:
    pytester.makepyfile(
        f"""
        from pytest_hparams import Metric, hparam_grid

        @hparam_grid(a=[1, 2, 3], metrics=[Metric("score", goal="{goal}")])
        def test_sweep(a):
            return {{"score": a}}
        """
    )
    result = pytester.runpytest("--hparams-json=r.json")
    result.assert_outcomes(passed=3)
    shown = goal[:3]
    result.stdout.fnmatch_lines([f"* a score ({shown})*", f"*best score={best} at [[]a:{best}[]]"])
    report = json.loads((pytester.path / "r.json").read_text())
    assert report["sweeps"][0]["metrics"][0]["goal"] == shown
