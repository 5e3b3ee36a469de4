"""metalcast_agent imports nothing but the standard library and itself."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import metalcast_agent

PACKAGE = Path(metalcast_agent.__file__).parent
#: present in a full stdlib but dropped from the slim ramdisk: never imported at module level
OPTIONAL = {"ssl", "_hashlib", "bz2", "lzma"}


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_every_module_imports_only_the_standard_library() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) > 10
    for module in modules:
        outside = imported(module) - set(sys.stdlib_module_names) - {"metalcast_agent"}
        assert outside == set(), f"{module.name} imports {sorted(outside)}"
        assert not imported(module) & OPTIONAL, f"{module.name} needs an optional module"
