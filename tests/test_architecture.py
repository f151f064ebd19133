"""The package's shape, read from the code: no import cycle between tastebud's parts, and the
layer list of docs/architecture.md is the import-linter contract of pyproject.toml.

The graph is built with ``ast`` from every ``import`` in ``tastebud/``, at the top of a
module and inside functions alike: an import inside a function is as much a dependency as
one at the top (it only runs later), so hiding one there must not hide a cycle. Imports
under ``if TYPE_CHECKING:`` are left out: they never run. A part is a subpackage
(``tastebud.ranking``); the top-level modules of the core (settings, schemas, logging)
count as one part, ``core``; any other top-level module is a part of its own.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tastebud"
CORE = {
    "config",
    "schemas",
    "validation",
    "observability",
    "lazy",
    "ranking_config",
    "spark_runtime",
}


def _part(module: str) -> str | None:
    """The part a ``tastebud.x.y`` module belongs to (None outside tastebud)."""
    names = module.split(".")
    if names[0] != "tastebud":
        return None
    if len(names) == 1:
        return "core"  # the package's own __init__ (its version, nothing else)
    name = names[1]
    if (PACKAGE / name).is_dir():
        return name
    if name == "__main__":
        return "cli"  # `python -m tastebud` is the command line
    if not (PACKAGE / f"{name}.py").exists():
        return None  # `from tastebud import x` names a part, resolved via the full name
    return "core" if name in CORE else name


def _module_name(path: Path) -> str:
    names = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(names[:-1] if names[-1] == "__init__" else names)


def _type_checking_only(tree: ast.Module) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    return skipped


def _imported(path: Path, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    module = node.module or ""
    if node.level:
        package = _module_name(path).split(".")
        if path.name != "__init__.py":
            package = package[:-1]
        base = package[: len(package) - node.level + 1]
        module = ".".join([*base, module] if module else base)
    return [module, *(f"{module}.{alias.name}" for alias in node.names)]


def import_graph() -> dict[str, dict[str, list[str]]]:
    """part -> imported part -> the ``file:line`` of each import that makes the edge."""
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _part(_module_name(path))
        assert source is not None
        tree = ast.parse(path.read_text(), str(path))
        skipped = _type_checking_only(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom) or id(node) in skipped:
                continue
            for name in _imported(path, node):
                target = _part(name)
                if target is not None and target != source:
                    where = f"{path.relative_to(ROOT)}:{node.lineno}"
                    if where not in graph[source][target]:
                        graph[source][target].append(where)
    return graph


def cycles(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """The strongly connected components of more than one part (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    nodes = set(graph) | {target for targets in graph.values() for target in targets}
    for node in sorted(nodes):
        if node not in index:
            visit(node)
    return found


def test_the_parts_import_each_other_without_a_cycle() -> None:
    graph = import_graph()
    found = cycles(graph)
    report = []
    for component in found:
        members = set(component)
        for source in component:
            for target, places in sorted(graph[source].items()):
                if target in members:
                    report.append(f"{source} -> {target}: {', '.join(places[:3])}")
    assert not found, "import cycles between parts:\n" + "\n".join(report)


def module_graph(package: str) -> dict[str, dict[str, list[str]]]:
    """module -> imported module -> ``file:line``, for the modules inside ``package``
    (function-level imports included, ``TYPE_CHECKING`` ones left out). An import names the
    module it names: ``from a.b import c`` is an edge to ``a.b.c`` when that is a module,
    else to ``a.b``."""
    folder = ROOT / package.replace(".", "/")
    modules = {_module_name(path): path for path in sorted(folder.rglob("*.py"))}
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for source, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        skipped = _type_checking_only(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom) or id(node) in skipped:
                continue
            module, *members = _imported(path, node)
            targets = [name for name in members if name in modules] or [module]
            for target in targets:
                if target in modules and target != source:
                    graph[source][target].append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return graph


@pytest.mark.parametrize(
    "package", ["tastebud.jobs", "tastebud.cli", "tastebud.training", "tastebud.models"]
)
def test_the_modules_of_a_part_import_each_other_without_a_cycle(package: str) -> None:
    graph = module_graph(package)
    found = cycles(graph)
    report = [
        f"{source} -> {target}: {', '.join(graph[source][target][:3])}"
        for component in found
        for source in component
        for target in component
        if target in graph[source]
    ]
    assert not found, f"import cycles between modules of {package}:\n" + "\n".join(report)


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b": ["x"]}, "b": {"c": ["y"]}, "c": {"a": ["z"]}, "d": {"a": ["w"]}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b": ["x"]}}) == []


def _contract() -> dict:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c for c in config["contracts"] if c["type"] == "layers"]
    return layers


def _contract_layers() -> list[str]:
    return list(_contract()["layers"])


def _documented_layers() -> list[str]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = re.search(r"<!-- layers -->\n```\n(.*?)```", text, re.DOTALL)
    assert block, "docs/architecture.md: no ```layers block after <!-- layers -->"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_the_documented_layers_are_the_contract() -> None:
    assert _documented_layers() == _contract_layers()


@pytest.mark.parametrize("layer", _contract_layers())
def test_every_layer_names_existing_modules(layer: str) -> None:
    (container,) = _contract()["containers"]
    for module in re.split(r"[|:]", layer):
        path = ROOT.joinpath(*container.split("."), *module.strip().split("."))
        assert path.is_dir() or path.with_suffix(".py").exists(), module


@pytest.mark.parametrize(
    "package", sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py")), ids=str
)
def test_every_package_says_what_it_may_import(package: str) -> None:
    doc = ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text())) or ""
    assert "may import" in doc.lower(), f"tastebud/{package}/__init__.py: say what it may import"
