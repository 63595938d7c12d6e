"""A tiny Gemma 3 GGUF file and a fake PyPI model package around it, for the fast conversion tests.

The file has Gemma 3's tensor names, metadata keys and SentencePiece-style vocabulary (specials,
byte fallback, a few pieces), so transformers reads it on the same code path as the real 238 MB
file, in a second instead of minutes.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>"]
PIECES = ["\u2581", "a", "b", "요", "약", "대", "화", "\u2581a", "\u2581요약"]
HIDDEN, LAYERS, FFN, HEADS, HEAD_DIM = 16, 2, 32, 2, 8


def vocabulary() -> tuple[list[str], list[int]]:
    """Tokens and their GGUF token types: control specials, byte-fallback bytes, normal pieces."""
    from gguf import TokenType

    tokens = SPECIALS + [f"<0x{b:02X}>" for b in range(256)] + PIECES
    types = ([TokenType.CONTROL] * len(SPECIALS) + [TokenType.BYTE] * 256 + [TokenType.NORMAL] * len(PIECES))
    types[SPECIALS.index("<unk>")] = TokenType.UNKNOWN
    return tokens, [int(t) for t in types]


def layer_tensors(rng, vocab: int) -> dict[str, "object"]:
    """Random fp32 weights under Gemma 3's GGUF names (numpy shapes are (out, in), as the writer expects)."""
    import numpy as np

    def w(*shape):
        return (rng.standard_normal(shape) * 0.05).astype(np.float32)

    tensors = {"token_embd.weight": w(vocab, HIDDEN), "output_norm.weight": np.ones(HIDDEN, np.float32)}
    q, kv = HEADS * HEAD_DIM, HEAD_DIM
    for i in range(LAYERS):
        b = f"blk.{i}."
        tensors.update({b + "attn_q.weight": w(q, HIDDEN), b + "attn_k.weight": w(kv, HIDDEN),
                        b + "attn_v.weight": w(kv, HIDDEN), b + "attn_output.weight": w(HIDDEN, q),
                        b + "ffn_gate.weight": w(FFN, HIDDEN), b + "ffn_up.weight": w(FFN, HIDDEN),
                        b + "ffn_down.weight": w(HIDDEN, FFN)})
        for norm, size in (("attn_norm", HIDDEN), ("post_attention_norm", HIDDEN), ("ffn_norm", HIDDEN),
                           ("post_ffw_norm", HIDDEN), ("attn_q_norm", HEAD_DIM), ("attn_k_norm", HEAD_DIM)):
            tensors[b + norm + ".weight"] = np.ones(size, np.float32)
    return tensors


def write_tiny_gguf(path: Path, seed: int = 0) -> Path:
    """Write a 2-layer, 16-wide Gemma 3 GGUF (~40 kB) to ``path``."""
    import numpy as np
    from gguf import GGUFWriter

    tokens, types = vocabulary()
    writer = GGUFWriter(str(path), "gemma3")
    writer.add_name("tiny gemma3")
    writer.add_context_length(256)
    writer.add_embedding_length(HIDDEN)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(1)
    writer.add_key_length(HEAD_DIM)
    writer.add_value_length(HEAD_DIM)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_rope_freq_base(10000.0)
    writer.add_sliding_window(8)
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0] * len(tokens))
    writer.add_token_types(types)
    for key, value in (("bos", 2), ("eos", 1), ("unk", 3), ("pad", 0)):
        getattr(writer, f"add_{key}_token_id")(value)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    for name, tensor in layer_tensors(np.random.default_rng(seed), len(tokens)).items():
        writer.add_tensor(name, tensor)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


PACKAGE_INIT = '''
"""A stand-in for the PyPI model package: assemble() copies one file, as the real one joins four parts."""
import shutil
from pathlib import Path

SOURCE = Path({source!r})
CALLS = []


def assemble(output_path=None, overwrite=False):
    CALLS.append(output_path)
    target = Path(output_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SOURCE, target)
    return target
'''


def write_fake_package(root: Path, name: str, gguf: Path) -> Path:
    """A package ``name`` under ``root`` whose assemble() yields ``gguf``, with licence files in data/."""
    pkg = root / name
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(PACKAGE_INIT.format(source=str(gguf))), encoding="utf-8")
    for fname, text in (("GEMMA_TERMS.html", "<html>Gemma Terms of Use</html>"), ("NOTICE.md", "# NOTICE"),
                        ("README.upstream.md", "upstream"), ("SHA256SUMS", "digest  file")):
        (pkg / "data" / fname).write_text(text, encoding="utf-8")
    return pkg
