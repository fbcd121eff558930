"""The harness's import layers (docs/architecture.md, "Layers"): no upward import, no cycle between
stage packages. Module-level *and* function-level (lazy) imports count, ``if TYPE_CHECKING:``
imports too; an import through the lazy registries (``"module:Class"`` strings) is not an import.

A module belongs to its stage package (``harness/<stage>/…`` or ``harness/<stage>.py``); the CLI
modules (every ``cli.py``, ``harness/options.py``, ``harness/__main__.py`` and the verb modules
named in ``CLI_MODULES``) form the top layer, which may import anything.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "harness"

# top to bottom; a stage may import its own layer (no cycle between packages) and the layers below
LAYERS: list[set[str]] = [
    {"runners", "status", "count", "engine"},  # orchestration: runs, the status of a run, counting
    {"report", "render", "frameworks"},  # what reads a run / writes native files / drives a framework
    {"config", "device", "paper"},  # the one resolved config and what it is made of
    {"evaluation", "parse", "data"},  # domain records and rules: metrics, logs, datasets
    {"labels", "class_roles"},  # the label set, and what each of its classes counts as
    {"core", "paths", "progress", "registry", "html", "harness"},  # neutral toolbox; `harness` = __init__
]
CLI = "cli"
# verb modules that are click commands first (a group and its options); they sit with the CLI
CLI_MODULES = {"harness.cli", "harness.__main__", "harness.options", "harness.engine.reproduce", "harness.engine.task"}

# Known violations, each owned by an open piece of work: the test fails when one is fixed (remove it
# here) as it does on a new one. (importer stage, imported stage): why.
KNOWN: dict[tuple[str, str], str] = {
    ("render", "frameworks"): "render.dialect / render.verify read Caffe's proto and Darknet's cfg (issue 20)",
    ("data", "render"): "data/audit_report.py draws SSD priors / YOLO stock anchors from render.priors and "
    "render.yolo; that geometry (pure math) belongs below data (render/** is the backends' work, issue 20)",
}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, root: Path) -> list[tuple[str, int]]:
    """Every harness module ``path`` imports, at any depth of its body, with the line."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.append((target, node.lineno))
            # `from harness import paper` imports the module harness.paper
            found += [
                (f"harness.{alias.name}", node.lineno)
                for alias in node.names
                if target == "harness" and ((root / alias.name).is_dir() or (root / f"{alias.name}.py").is_file())
            ]
    return [(t, line) for t, line in found if t == "harness" or t.startswith("harness.")]


def stage_of(module: str) -> str:
    if module in CLI_MODULES or module.rsplit(".", 1)[-1] == "cli":
        return CLI
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "harness"


def layer_of(stage: str, layers: list[set[str]]) -> int:
    if stage == CLI:
        return -1
    for index, members in enumerate(layers):
        if stage in members:
            return index
    raise AssertionError(f"stage {stage!r} is in no layer: add it to LAYERS in tests/test_layers.py")


def check(root: Path, layers: list[set[str]], known: dict) -> list[str]:
    """Problems: upward imports, cycles between stage packages, and known violations that are gone."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(root.rglob("*.py")):
        source = module_name(path, root)
        for target, line in imports_of(path, root):
            if target == "harness" and stage_of(source) != "harness":
                continue  # `import harness` for __version__ / __file__: the package root
            a, b = stage_of(source), stage_of(target)
            if a != b:
                edges[(a, b)].append(f"{path.relative_to(root.parent)}:{line} imports {target}")
    problems = []
    for (a, b), where in sorted(edges.items()):
        if layer_of(b, layers) < layer_of(a, layers) and (a, b) not in known:
            problems.append(f"upward import {a} -> {b}: " + "; ".join(where))
    problems += [f"import cycle between stage packages: {' -> '.join(c)}" for c in _cycles(edges, known)]
    problems += [f"known violation {a} -> {b} is gone: remove it from KNOWN" for (a, b) in known if (a, b) not in edges]
    return problems


def _cycles(edges: dict, known: dict) -> list[list[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        if a != CLI and b != CLI and (a, b) not in known:
            graph[a].add(b)
    cycles, seen = [], set()
    for start in sorted(graph):
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph[node]):
                if nxt == start:
                    key = frozenset(path)
                    if key not in seen:
                        seen.add(key)
                        cycles.append([*path, start])
                elif nxt not in path and nxt > start:
                    stack.append((nxt, [*path, nxt]))
    return cycles


def test_no_upward_import_and_no_cycle() -> None:
    problems = check(ROOT, LAYERS, KNOWN)
    assert not problems, "\n".join(problems)


def test_the_cli_modules_are_the_only_ones_importing_click() -> None:
    offenders = []
    for path in sorted(ROOT.rglob("*.py")):
        name = module_name(path, ROOT)
        if stage_of(name) == CLI:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            if any(n == "click" or n.startswith("click.") for n in names):
                offenders.append(f"{path.relative_to(ROOT.parent)}:{node.lineno}")
    assert sorted(set(offenders)) == sorted(set(offenders) & set(CLICK_TODO)), offenders


# library modules that still import click (issue 20, "library raises, CLI speaks"): shrinks to empty
CLICK_TODO: set[str] = set()


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "harness"
    for name, text in {"__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


TOY_LAYERS = [{"engine"}, {"data"}, {"core", "harness"}]


def test_checker_flags_an_injected_upward_import(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "engine/__init__.py": "from harness.data import read\n",
            "data/__init__.py": "def read():\n    from harness.engine import run  # lazy, still counts\n",
            "core/__init__.py": "",
        },
    )
    problems = check(root, TOY_LAYERS, {})
    assert any(p.startswith("upward import data -> engine") and "data/__init__.py:2" in p for p in problems), problems
    assert any("cycle" in p and "data" in p and "engine" in p for p in problems), problems


def test_checker_flags_an_upward_relative_import_and_passes_a_clean_tree(tmp_path: Path) -> None:
    clean = _tree(tmp_path / "a", {"engine/run.py": "from ..data import x\n", "data/x.py": "import harness.core\n"})
    assert check(clean, TOY_LAYERS, {}) == []
    dirty = _tree(tmp_path / "b", {"core/util.py": "from ..engine import run\n", "engine/run.py": ""})
    assert any("upward import core -> engine" in p for p in check(dirty, TOY_LAYERS, {}))


def test_checker_lets_the_cli_import_anything_and_reports_a_fixed_known_violation(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"cli.py": "import harness.engine\nimport harness.core\n", "engine/__init__.py": ""})
    assert check(root, TOY_LAYERS, {}) == []
    assert check(root, TOY_LAYERS, {("data", "engine"): "was"}) == [
        "known violation data -> engine is gone: remove it from KNOWN"
    ]


@pytest.mark.parametrize("stage", sorted({p.parent.name for p in ROOT.glob("*/__init__.py")}))
def test_every_stage_package_has_a_layer(stage: str) -> None:
    layer_of(stage, LAYERS)
