"""Mutation scores per module, read from mutmut's results in mutants/ (run from the repo root).

Killed counts the mutants a test failed on, timed out on (the mutant made the code hang) or
that crashed the test process; every other mutant (survived, no test reaches it) is a
survivor and is listed by id (`.venv/bin/mutmut show <id>` prints its diff).

core/chat/netguard.py is scored on its address rules only: the functions above its
transport section (the judging of addresses and hosts, the policy, vet, check_base_url).
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

MODULES = (
    "core/providers/urls.py",
    "core/chat/errors.py",
    "core/chat/blocks.py",
    "core/chat/netguard.py",
    "core/history/transfer.py",
    "core/chat/budget.py",
    "core/attachments/wire.py",
    "core/chat/figures.py",
    "core/history/titles.py",
    "core/store/pace.py",
)
RULES_END = "# --- the transport"  # netguard: the rules are the functions above this line
KILLED = {1, 3, 36, 37, 24, -24, 152, 255, -9, -11}  # mutmut's exit codes for a caught mutant
STATUS = {0: "survived", 33: "no tests", 5: "no tests", None: "not checked", 34: "skipped"}


def _mangled(node: ast.AST, owner: str | None) -> str:
    return f"xǁ{owner}ǁ{node.name}" if owner else f"x_{node.name}"


def rules_functions(path: Path) -> set[str]:
    """mutmut's names of the functions and methods of `path` above RULES_END."""
    text = path.read_text()
    end = next(n for n, line in enumerate(text.splitlines(), 1) if line.startswith(RULES_END))
    names = set()
    for node in ast.parse(text).body:
        if node.lineno > end:
            continue
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(_mangled(node, None))
        elif isinstance(node, ast.ClassDef):
            names |= {_mangled(item, node.name) for item in node.body
                      if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))}
    return names


def function_of(mutant: str) -> str:
    return mutant.rsplit("__mutmut_", 1)[0].rsplit(".", 1)[1]


def run_patterns() -> list[str]:
    """The mutant-name patterns to run: every module whole, netguard's rules only."""
    patterns = []
    for module in MODULES:
        dotted = module[:-3].replace("/", ".")
        if module == "core/chat/netguard.py":
            patterns += [f"{dotted}.{name}__mutmut_*" for name in sorted(rules_functions(Path(module)))]
        else:
            patterns.append(f"{dotted}.*")
    return patterns


def main() -> int:
    if sys.argv[1:] == ["patterns"]:
        print("\n".join(run_patterns()))
        return 0
    below = []
    for module in MODULES:
        meta = Path("mutants") / f"{module}.meta"
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if module == "core/chat/netguard.py":
            rules = rules_functions(Path(module))
            codes = {k: v for k, v in codes.items() if function_of(k) in rules}
        killed = sum(code in KILLED for code in codes.values())
        total = len(codes)
        score = 100.0 * killed / total if total else 100.0
        label = f"{module} (address rules)" if module.endswith("netguard.py") else module
        print(f"{label}: killed {killed} of {total} ({score:.1f}%)")
        survivors = sorted(k for k, v in codes.items() if v not in KILLED)
        for name in survivors:
            print(f"    {STATUS.get(codes[name], f'exit {codes[name]}')}: {name}")
        if score < 90:
            below.append(module)
    if below:
        print("below 90%: " + ", ".join(below))
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())
