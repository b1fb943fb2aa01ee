"""Every package core/ and pages/ import directly is pinned in requirements.txt."""

from __future__ import annotations

import ast
import importlib.metadata
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imported_top_level_modules() -> set[str]:
    names: set[str] = set()
    for path in [ROOT / "streamlit_app.py", *(ROOT / "core").rglob("*.py"), *(ROOT / "pages").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    ours = {path.name for path in ROOT.iterdir() if path.is_dir()}  # core, pages, ...
    return names - set(sys.stdlib_module_names) - ours - {"__future__"}


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def test_every_directly_imported_package_is_pinned_at_the_installed_version():
    distributions = importlib.metadata.packages_distributions()
    pins = _pins()
    modules = _imported_top_level_modules()
    assert {"httpx2", "httpcore2", "openai", "streamlit"} <= modules
    for module in sorted(modules):
        (dist,) = {d.lower().replace("_", "-") for d in distributions[module]}
        assert dist in pins, f"{module} (from {dist}) is imported but not pinned"
        assert pins[dist] == importlib.metadata.version(dist), dist
