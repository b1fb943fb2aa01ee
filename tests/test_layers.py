"""core reads as layers: each module imports only from its own layer or the ones below, and
no modules import each other in a circle. The layers, lowest first, are the parts of the
architecture the README's layout section describes."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Lowest first. A module may import from its own layer and any layer below it; a module is in
# the layer of the longest name here that it starts with.
LAYERS = (
    ("core.redaction", "core.failures"),  # whose failure it is, and keys kept out of text
    ("core.providers", "core.history.model", "core.history.thread"),  # the data: servers,
    # connections, the profile, chats and messages
    ("core.prompts",),  # saved prompts: their variables, rules, file, the administrator's
    ("core.config",),  # the deployment's settings
    ("core.attachments",),  # files sent with a message: read from an upload, put in a request
    ("core.chat",),  # talking to a server: client, guard, call, stream, blocks, discovery
    ("core.store",),  # where each user's data is kept, behind the stores' contracts
    ("core.prompts.stores",),  # where a user's saved prompts are kept
    ("core.history",),  # a conversation as it happens, the chat list, export and import
    ("core.auth", "core.forms"),  # sign-in; what a settings form saves
    ("core.session",),  # the one module that touches Streamlit
)


def layer_of(module: str) -> int:
    matches = [(len(part), number) for number, parts in enumerate(LAYERS) for part in parts
               if module == part or module.startswith(part + ".")]
    assert matches, f"{module} is in no layer: add it to LAYERS"
    return max(matches)[1]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def core_imports(path: Path) -> set[str]:
    """The core modules a file imports (the modules named, and `from core.x import y` where y
    is itself a module), wherever in the file the import stands."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("core.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("core"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                is_module = (ROOT / Path(*candidate.split("."))).with_suffix(".py").exists() or (
                    ROOT / Path(*candidate.split("."))).is_dir()
                found.add(candidate if is_module else node.module)
    return {name for name in found if name != "core"}


def import_graph() -> dict[str, set[str]]:
    return {module_name(path): core_imports(path) for path in sorted((ROOT / "core").rglob("*.py"))}


def test_no_module_imports_up_a_layer():
    upward = [f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
              for module, targets in import_graph().items() for target in sorted(targets)
              if layer_of(target) > layer_of(module)]
    assert upward == []


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every module that can reach itself through imports, with the path that does."""
    found = []
    for start in graph:
        path, seen = [start], set()
        stack = [(start, iter(sorted(graph.get(start, ()))))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
            elif child == start:
                found.append([*path, start])
                break
            elif child not in seen and child in graph:
                seen.add(child)
                path.append(child)
                stack.append((child, iter(sorted(graph[child]))))
    return found


def test_no_modules_import_each_other_in_a_circle():
    assert circles(import_graph()) == []


def test_the_checks_catch_a_circle_and_an_upward_import():
    """The two checks above can fail: a made-up graph with a circle is found, and a module of
    a lower layer importing a higher one is named."""
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [
        ["a", "b", "c", "a"], ["b", "c", "a", "b"], ["c", "a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []
    assert layer_of("core.providers.kinds") < layer_of("core.store.sqlite")
    assert layer_of("core.history.model") < layer_of("core.chat.call") < layer_of(
        "core.history.conversation")
    assert layer_of("core.session") == len(LAYERS) - 1
