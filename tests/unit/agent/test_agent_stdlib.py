"""metalcast_agent imports nothing but the standard library and itself."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import metalcast_agent

PACKAGE = Path(metalcast_agent.__file__).parent
#: may be missing from a slim Python: never imported when a module is (only inside the
#: function that needs it, so that an agent without TLS runs without ssl)
OPTIONAL = {"ssl", "_hashlib", "bz2", "lzma"}


def _names(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name.split(".")[0] for alias in node.names}
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return {node.module.split(".")[0]}
    return set()


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports anywhere."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names |= _names(node)
    return names


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and ast.unparse(node.test) in (
        "TYPE_CHECKING",
        "typing.TYPE_CHECKING",
    )


def imported_on_import(path: Path) -> set[str]:
    """The modules importing ``path`` imports: not those of function bodies or
    ``if TYPE_CHECKING:`` blocks."""
    names: set[str] = set()
    pending: list[ast.AST] = [ast.parse(path.read_text(), filename=str(path))]
    while pending:
        node = pending.pop()
        names |= _names(node)
        for child in ast.iter_child_nodes(node):
            lazy = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if not lazy and not _type_checking(child):
                pending.append(child)
    return names


def test_every_module_imports_only_the_standard_library() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) > 10
    for module in modules:
        outside = imported(module) - set(sys.stdlib_module_names) - {"metalcast_agent"}
        assert outside == set(), f"{module.name} imports {sorted(outside)}"
        optional = imported_on_import(module) & OPTIONAL
        assert not optional, f"importing {module.name} needs the optional {sorted(optional)}"
