"""benchmarks.llamacpp_cpu: the JSON figures of one precision (the decoding itself needs llama-cpp-python: skipped
without it)."""
from __future__ import annotations

import pytest

from benchmarks.llamacpp_cpu import figures, generate


def test_figures_per_precision_against_our_default_engine():
    outputs = [([1, 2, 3], True), ([4, 5], False)]  # 4 + 2 tokens (a stop token counts, as for our engines)
    got = figures("q8_0", outputs, 2.0, ["a", "b"], ["a", "c"], 1.5, 41.27, 30.04)
    assert got == {"llamacpp_q8_0_tokens_per_s": 3.0, "llamacpp_q8_0_speedup": 2.0,
                   "llamacpp_q8_0_identical_share": 0.5, "llamacpp_q8_0_final": 41.27,
                   "llamacpp_q8_0_seconds": 2.0, "llamacpp_q8_0_convert_seconds": 30.0}


def test_generate_needs_llama_cpp(tmp_path):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (make setup-llamacpp builds it)")
    with pytest.raises(RuntimeError, match="could not load"):
        (tmp_path / "bad.gguf").write_bytes(b"not a gguf")
        generate(tmp_path / "bad.gguf", [[1, 2]], 4, [0], [], 1, 1)
