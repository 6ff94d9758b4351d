"""The package's layer order: lower layers never import higher ones (no import cycles).

Read from the source (every ``from ..X import`` of a subpackage's modules, at any depth
of the code, local imports included).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import brainexpr

PACKAGE = Path(brainexpr.__file__).parent

#: subpackage -> subpackages it must never import
FORBIDDEN = {
    "datasets": ("atlas", "models", "evaluation", "workflows", "cli"),
    "models": ("evaluation", "workflows", "cli", "reporting"),
}


def imported_subpackages(path: Path) -> set[str]:
    """First-level subpackages of brainexpr that a module imports (relative or absolute)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level >= 2 and node.module:
                out.add(node.module.split(".")[0])
            elif node.level == 0 and (node.module or "").startswith("brainexpr."):
                out.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[1] for a in node.names if a.name.startswith("brainexpr."))
    return out


@pytest.mark.parametrize("subpackage", sorted(FORBIDDEN))
def test_lower_layers_do_not_import_higher_ones(subpackage):
    for path in sorted((PACKAGE / subpackage).glob("*.py")):
        wrong = imported_subpackages(path) & set(FORBIDDEN[subpackage])
        assert not wrong, f"{subpackage}/{path.name} imports {sorted(wrong)}"


def test_the_import_reader_sees_local_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from ..atlas.tissue import x\n    import brainexpr.cli\n")
    assert imported_subpackages(module) == {"atlas", "cli"}
