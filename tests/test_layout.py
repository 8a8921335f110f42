"""The package's shape: its modules import one another in layers, never in a
cycle, and a trial's identity never depends on how its node id reads."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import needs

PACKAGE = Path(__file__).resolve().parent.parent / "pytest_hparams"
ARCHITECTURE = PACKAGE.parent / "docs" / "architecture.md"


def imports_of(path: Path) -> set[str]:
    """The package's modules a module imports, at run time or for type checking."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "pytest_hparams":
                found.update(f"pytest_hparams.{a.name}" for a in node.names)
            elif node.module.startswith("pytest_hparams."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("pytest_hparams."))
    modules = {f"pytest_hparams.{p.stem}" for p in PACKAGE.glob("*.py")}
    return found & modules


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as the modules along it, or [] when there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str]:
        state[module] = 1
        path.append(module)
        for other in sorted(graph.get(module, ())):
            if state.get(other) == 1:
                return [*path[path.index(other) :], other]
            if other not in state and (cycle := visit(other)):
                return cycle
        path.pop()
        state[module] = 2
        return []

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return []


def test_the_packages_modules_import_one_another_without_a_cycle() -> None:
    graph = {
        f"pytest_hparams.{p.stem}": imports_of(p)
        for p in PACKAGE.glob("*.py")
        if p.stem != "__init__"  # the public API: it imports lazily, and nothing back
    }
    assert find_cycle(graph) == []


def documented_layers() -> list[set[str]]:
    """The architecture page's layers, first to last: the modules each
    numbered item of its "Layers" list names."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text[text.index("\n## Layers\n") :].split("\n## ")[1]
    items = re.findall(r"^\d+\. (.*)$", section, re.M)
    return [set(re.findall(r"`(\w+)`", item)) for item in items]


def upward_imports(layers: list[set[str]]) -> list[str]:
    """Each import of a module from its own layer or a later one."""
    layer_of = {module: n for n, layer in enumerate(layers) for module in layer}
    return [
        f"{module} (layer {layer_of[module] + 1}) imports {other} (layer {layer_of[other] + 1})"
        for module in sorted(layer_of)
        for other in sorted(m.split(".")[1] for m in imports_of(PACKAGE / f"{module}.py"))
        if other in layer_of and layer_of[other] >= layer_of[module]
    ]


def test_the_architecture_pages_layers_are_the_codes() -> None:
    layers = documented_layers()
    listed = [module for layer in layers for module in layer]
    assert sorted(listed) == sorted({p.stem for p in PACKAGE.glob("*.py")} - {"__init__"})
    assert upward_imports(layers) == []


def test_the_layer_check_finds_a_module_listed_too_low() -> None:
    layers = [set(layer) - {"plugin"} for layer in documented_layers()]
    layers[0].add("plugin")
    assert any(line.startswith("plugin (layer 1) imports") for line in upward_imports(layers))


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


def test_the_plugin_imports_what_the_package_imports_from_outside_it() -> None:
    # The package's modules may load during collection, when pytest has put
    # the test folders first on sys.path: a project's own `statistics.py`
    # there must not become the one `gates` imports.
    code = (
        "import sys, pytest, pytest_hparams.plugin\n"
        "before = set(sys.modules)\n"
        "import pytest_hparams.registration\n"
        "print(sorted({m.split('.')[0] for m in set(sys.modules) - before} - {'pytest_hparams'}))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"


def test_no_module_splits_a_node_id() -> None:
    # The parts of a trial's identity travel in its TrialKey (file, function,
    # params, repeat); a node id is only ever compared whole.
    for path in PACKAGE.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        for needle in ('split("::"', 'split("["', 'partition("["', 'rpartition("::"'):
            assert needle not in text, f"{path.name} splits a node id with {needle}"


@needs("scipy", "stats")  # the baseline of repeats is Welch-tested
@pytest.mark.parametrize(
    ("folder", "name"),
    [("weird[dir]", "test_a[1].py"), ("plain", "test_b.py")],
    ids=["brackets", "plain"],
)
def test_a_bracket_in_a_file_or_class_name_breaks_nothing(
    pytester: pytest.Pytester, dashboard: object, folder: str, name: str
) -> None:
    pytester.mkpydir(folder)
    (pytester.path / folder / name).write_text(
        "from pytest_hparams import hparam_grid\n\n"
        "class TestX:\n"
        "    @hparam_grid(a=[1, 2], repeats=2, metrics=['score'])\n"
        "    def test_sweep(self, a, trial):\n"
        "        trial.log(0, score=a)  # a curve: each combination gets a mean run\n"
        "        return {'score': a + trial.repeat / 10}\n"
    )
    first = pytester.runpytest(
        "--hparams-logdir=logs", "--hparams-json=r.json", "--hparams-save-baseline=b.json"
    )
    first.assert_outcomes(passed=4)
    again = pytester.runpytest(
        "--hparams-logdir=logs",
        "--hparams-baseline=b.json",
        "--hparams-resume",
        "-p",
        "no:randomly",
    )
    again.assert_outcomes(skipped=4)
    again.stdout.fnmatch_lines(
        ["*2 combinations, 4 trials: 4 resumed*", "baseline: 0 regressed*2 ok*"]
    )
    board = dashboard(pytester.path / "logs")  # type: ignore[operator]
    assert len(board.groups) == 2
    assert {f"{folder}/{name}::TestX::test_sweep"} == {
        s["test"]
        for s in __import__("json").loads((pytester.path / "r.json").read_text())["sweeps"]
    }
    found = sorted(
        p.relative_to(pytester.path / "logs").as_posix()
        for p in (pytester.path / "logs").glob("*/*/*/*/*")
    )
    runs = [r for r in found if "/mean~" not in r]  # each combination's mean curve beside
    assert len(runs) == 4 and all(r.count("/") == 4 for r in runs)
    assert len(found) == 6
