"""`hmo` is what every stage imports: it must not import a stage back, or the layers knot."""
from __future__ import annotations

import ast
from pathlib import Path

import hmo

STAGE_PACKAGES = {"ingest", "expectations", "harmonise", "flows", "report", "bench"}


def test_hmo_imports_no_stage_package() -> None:
    package = Path(hmo.__file__).parent
    imported: set[tuple[str, str]] = set()
    for module in package.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            imported.update((module.name, name.split(".")[0]) for name in names)
    assert {name for _, name in imported} & STAGE_PACKAGES == set(), sorted(imported)
    assert ("warehouse.py", "hmo") in imported  # the walk sees imports at all
