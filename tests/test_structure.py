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


# config/utils < evaluation/data < models/prompting/augment < inference < train < stages and the run (every top-level
# module); a package's modules may import each other
LAYERS = {"config": 0, "utils": 0, "evaluation": 1, "data": 1, "models": 2, "prompting": 2, "augment": 2,
          "inference": 3, "train": 4, "stages": 5}
MAX_FUNCTION_IMPORTS = 60


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.get(parts[1], 5) if len(parts) > 1 else 5


def package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "the run"


def test_imports_point_down_the_layers() -> None:
    mods = modules()
    known = set(mods)
    upward = sorted(f"{name} -> {target}" for name, path in mods.items() for target in imported(path, known)
                    if layer(target) > layer(name) and package(target) != package(name))
    assert upward == []


def function_imports() -> list[str]:
    """``from src...`` imports inside functions, as ``module:line``."""
    found = []
    for name, path in modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found += [f"{name}:{node.lineno}" for node in ast.walk(fn) if isinstance(node, ast.ImportFrom)
                          and node.level == 0 and (node.module or "").startswith("src")]
    return sorted(set(found))


def test_imports_inside_functions_only_where_a_heavy_library_stays_lazy() -> None:
    found = function_imports()
    assert len(found) <= MAX_FUNCTION_IMPORTS, found


def test_help_imports_no_stage_and_no_heavy_library() -> None:
    import subprocess
    import sys

    code = ("import sys, runpy; sys.argv = ['src.main', '--help']\n"
            "try:\n    runpy.run_module('src.main', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'transformers', 'pandas', 'numpy', 'trl', 'peft') if m in sys.modules]\n"
            "stages = sorted(m for m in sys.modules if m.startswith('src.stages.'))\n"
            "sys.stderr.write(repr((heavy, stages)))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.stderr.strip().splitlines()[-1] == "([], [])"
