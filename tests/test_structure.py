"""The shape of ``src/``: no import cycle (lazy imports included), small modules, typed contexts, package docstrings."""
from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

SRC = REPO / "src"
MAX_MODULE_LINES = 450
MAX_DATA_LINES = 1300


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in SRC.rglob("*.py")}


def imported(path: Path, known: set[str]) -> set[str]:
    """Every src module ``path`` imports, at any depth (function-level imports count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name.startswith("src"):
                found.add(name)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_in_src() -> None:
    mods = modules()
    known = set(mods)
    # a package's __init__ importing its own submodules is not a cycle between concerns
    graph = {name: {m for m in imported(path, known) if m != name and not (path.name == "__init__.py"
                                                                          and m.startswith(name + "."))}
             for name, path in mods.items()}
    assert cycles(graph) == []


def test_no_module_over_the_size_limit() -> None:
    sizes = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in modules().items()}
    assert {n: s for n, s in sizes.items() if s > MAX_MODULE_LINES} == {}
    data = sum(s for n, s in sizes.items() if n.startswith("src.data"))
    assert data < MAX_DATA_LINES, f"src/data holds {data} lines"


def test_run_context_is_typed_everywhere() -> None:
    offenders = [str(p.relative_to(REPO)) for p in SRC.rglob("*.py") if "ctx: Any" in p.read_text(encoding="utf-8")]
    assert offenders == []


def test_every_package_says_what_it_owns() -> None:
    for init in SRC.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and len(doc.splitlines()[0]) > 20, f"{init.relative_to(REPO)} needs a one-line docstring"


def test_speaker_tag_and_mask_patterns_live_in_one_module() -> None:
    pattern_literals = (r'r"#Person\d+#"', r'r"#[A-Za-z]+#"', r'r"#\w+#"')
    offenders = [str(p.relative_to(REPO)) for p in SRC.rglob("*.py") if p.name != "patterns.py"
                 and any(lit in p.read_text(encoding="utf-8") for lit in pattern_literals)]
    assert offenders == []


def test_tests_mirror_src() -> None:
    """Every src package has a tests folder of the same name."""
    packages = {p.parent.relative_to(SRC) for p in SRC.rglob("__init__.py") if p.parent != SRC}
    missing = [str(p) for p in packages if not (REPO / "tests" / p).is_dir() and p.name not in ("stages", "utils")]
    assert missing == []
