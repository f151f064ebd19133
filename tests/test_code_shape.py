"""The code's shape, read with ``ast`` from every module of ``tastebud/`` (issue 17).

Three rules (docs/architecture.md, "Code shape"):

- An import inside a function loads something lazily on purpose (a heavy optional library,
  or a light start-up), and says why in a ``# lazy: <reason>`` comment on its line, or on
  the line above it (one comment may head a run of consecutive imports). An import that
  only dodges a cycle is not lazy: the cycle is untied by moving the shared piece down.
- A file over 400 lines says why in its module docstring, with the words
  "Over 400 lines because ...", or is split along a real seam.
- No function (or method) is over 60 lines, counted from ``def`` to its last line.

Every module of ``tastebud/`` is held to them: a new violation anywhere fails this test.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tastebud"

MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60
LAZY = "# lazy:"
LONG_FILE_REASON = re.compile(r"Over 400 lines because \S")


def _files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _function_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that sits inside a function, at any depth."""
    found: list[ast.Import | ast.ImportFrom] = []

    def walk(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if in_function and isinstance(child, ast.Import | ast.ImportFrom):
                found.append(child)
            is_function = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            walk(child, in_function or is_function)

    walk(tree, False)
    return found


def unexplained_imports(source: str) -> list[int]:
    """Line numbers of function-level imports with no ``# lazy:`` reason: on their own
    lines, or heading the run of imports they belong to (on the run's first line, or on the
    line above it; blank lines between imports do not end a run)."""
    lines = source.splitlines()
    imports = _function_imports(ast.parse(source))
    import_lines = {n for node in imports for n in range(node.lineno, node.end_lineno + 1)}
    missing = []
    for node in imports:
        number = node.end_lineno  # 1-based; walk up through the run
        explained = False
        while number >= 1 and (number in import_lines or not lines[number - 1].strip()):
            if LAZY in lines[number - 1]:
                explained = True
                break
            number -= 1
        if not explained and not (number >= 1 and lines[number - 1].strip().startswith(LAZY)):
            missing.append(node.lineno)
    return missing


def long_functions(source: str) -> list[tuple[str, int, int]]:
    """(name, first line, length) of every function over the limit."""
    return [
        (node.name, node.lineno, node.end_lineno - node.lineno + 1)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]


def long_without_reason(source: str) -> bool:
    """A file over the limit whose docstring does not say why it is."""
    if len(source.splitlines()) <= MAX_FILE_LINES:
        return False
    docstring = " ".join((ast.get_docstring(ast.parse(source)) or "").split())
    return not LONG_FILE_REASON.search(docstring)


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_function_level_imports_say_why_they_are_lazy() -> None:
    found = [
        f"{_name(path)}:{line}"
        for path in _files()
        for line in unexplained_imports(path.read_text(encoding="utf-8"))
    ]
    assert not found, f"imports inside functions without a '{LAZY} <reason>' comment: {found}"


def test_long_files_say_why() -> None:
    found = [_name(p) for p in _files() if long_without_reason(p.read_text(encoding="utf-8"))]
    assert not found, f"files over {MAX_FILE_LINES} lines without 'Over 400 lines because': {found}"


def test_no_long_functions() -> None:
    found = [
        f"{_name(path)}:{line} {name} ({length} lines)"
        for path in _files()
        for name, line, length in long_functions(path.read_text(encoding="utf-8"))
    ]
    assert not found, f"functions over {MAX_FUNCTION_LINES} lines: {found}"


# The rules themselves, on small sources: each finds what it should and nothing else.


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import os\n\ndef f():\n    import json\n", [4]),
        ("def f():\n    import json  # lazy: start-up\n", []),
        ("def f():\n    # lazy: start-up\n    import json\n    import csv\n", []),
        ("def f():\n    # a comment, but not a reason\n    import json\n", [3]),
        ("def f():\n    # lazy: start-up\n    x = 1\n    import json\n", [4]),
        ("class A:\n    def f(self):\n        if True:\n            import json\n", [4]),
        ("def f():\n    from json import (  # lazy: start-up\n        dumps,\n    )\n", []),
        ("import json\n", []),
        ("def f():\n    import a  # lazy: heavy\n    import b\n\n    from c import d\n", []),
        ("def f():\n    import a  # lazy: heavy\n    x = 1\n    import b\n", [4]),
        ("def f():\n    import a\n    import b  # lazy: heavy\n", [2]),
    ],
)
def test_unexplained_imports_rule(source: str, expected: list[int]) -> None:
    assert unexplained_imports(source) == expected


def test_long_function_rule() -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES - 1))
    assert long_functions(f"def ok():\n{body}") == []
    assert long_functions(f"def long():\n{body}    return 0\n") == [
        ("long", 1, MAX_FUNCTION_LINES + 1)
    ]


def test_long_file_rule() -> None:
    body = "x = 1\n" * MAX_FILE_LINES
    assert not long_without_reason(body)
    assert long_without_reason('"""A module."""\n' + body)
    reason = '"""A module.\n\nOver 400 lines\nbecause its rules belong together.\n"""\n'
    assert not long_without_reason(reason + body)
