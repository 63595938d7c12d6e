"""The runtime requirements: TRL pinned to the tested range (a private name is imported), rouge only for tests."""
from __future__ import annotations

import ast
import importlib.metadata

from packaging.requirements import Requirement

from tests.conftest import REPO


def requirements(path: str) -> dict[str, Requirement]:
    lines = [line.split("#", 1)[0].strip() for line in (REPO / path).read_text(encoding="utf-8").splitlines()]
    found = [Requirement(line) for line in lines if line and not line.startswith("-")]
    return {r.name.lower(): r for r in found}


def test_trl_is_pinned_to_the_tested_range_and_the_private_name_is_there() -> None:
    trl = requirements("src/requirements.txt")["trl"]
    assert importlib.metadata.version("trl") in trl.specifier, "the installed TRL is outside the pinned range"
    assert not trl.specifier.contains("1.17.0") and not trl.specifier.contains("2.0.0")
    from trl.trainer.utils import FusedCausalLMOutput  # noqa: F401  (src/train/label_logits.py needs it)


def test_rouge_is_a_test_requirement_and_no_runtime_module_imports_it() -> None:
    assert "rouge" not in requirements("src/requirements.txt") and "rouge" in requirements("requirements-test.txt")
    for path in (REPO / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n == "rouge" or n.startswith("rouge.") for n in names), path


def test_the_libraries_the_code_uses_directly_are_required() -> None:
    runtime = requirements("src/requirements.txt")
    assert {"filelock", "psutil", "safetensors", "torch", "trl", "wandb"} <= set(runtime)
