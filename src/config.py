"""One typed config tree: frozen dataclasses loaded from YAML, overridden by ``key.sub=value``.

Precedence (later wins): dataclass defaults < ``bases:`` files named by the YAML < the YAML
file itself < the ``--debug-small`` overlay < CLI flags < dotted overrides. Unknown keys and
values of the wrong type are errors that name the key and suggest the closest valid one.
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from src.errors import UserError

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO_ROOT / "configs" / "default.yaml"
DEBUG_OVERLAY = REPO_ROOT / "configs" / "debug_small.yaml"


def opt(default: Any, help: str, choices: Optional[tuple] = None) -> Any:
    """A config field with a default, one line of help and optional allowed values."""
    meta = {"help": help, "choices": choices}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def sub(cls: type) -> Any:
    """A nested config section."""
    return field(default_factory=cls, metadata={"help": cls.__doc__ or "", "choices": None})


@dataclass(frozen=True)
class PathsConfig:
    """Where inputs are read and outputs written (relative paths are relative to the repo root)."""

    data_dir: str = opt("data", "folder the data.*_file paths are relative to")
    model_dir: str = opt("model", "checkpoints go to <model_dir>/<run>/")
    output_dir: str = opt("output", "run folders <output_dir>/<run>/ (submission, metrics, manifest)")
    clean_dir: str = opt("data/clean", "preprocess writes <clean_dir>/<run>/{train,dev,test}.csv")
    augmented_dir: str = opt("data/augmented", "augment and merge write <augmented_dir>/<run>/")


@dataclass(frozen=True)
class HubSource:
    """One Hugging Face dataset read into a split (datasets.load_dataset), after the split's files."""

    path: Optional[str] = opt(None, "hub id (e.g. knkarthick/dialogsum), a dataset folder, or json/csv/parquet "
                                    "with data_files; None: no hub source for this split")
    name: Optional[str] = opt(None, "dataset configuration name")
    split: Optional[str] = opt(None, "split to load; None: train, validation, test for hub.train, hub.dev, hub.test")
    revision: Optional[str] = opt(None, "branch, tag or commit to pin")
    data_files: tuple[str, ...] = opt((), "files for a json/csv/parquet path, relative to paths.data_dir")
    data_dir: Optional[str] = opt(None, "subfolder of the dataset to read")
    fraction: float = opt(1.0, "share of the loaded rows kept, in (0, 1] (the first rows, or a random share with shuffle)")
    shuffle: bool = opt(False, "shuffle by seed before taking the fraction")
    streaming: bool = opt(False, "stream rows instead of downloading the split first; reads only data.max_rows rows")
    cache_dir: Optional[str] = opt(None, "datasets cache folder (None: HF_DATASETS_CACHE or ~/.cache/huggingface)")


@dataclass(frozen=True)
class HubSplits:
    """Hugging Face datasets per split; the token comes from HF_TOKEN, never from the config."""

    train: HubSource = sub(HubSource)
    dev: HubSource = sub(HubSource)
    test: HubSource = sub(HubSource)


@dataclass(frozen=True)
class ColumnMap:
    """Source column names read as fname, dialogue, summary and topic (a source that lacks the
    named column but has the canonical one uses the canonical one)."""

    fname: str = opt("fname", "id column; generated as <split>-<source number>-<row> when the source has none")
    dialogue: str = opt("dialogue", "input text column (e.g. input, document)")
    summary: str = opt("summary", "target text column (e.g. output, summary1); not needed for test")
    topic: str = opt("topic", "optional topic column, kept when present")


@dataclass(frozen=True)
class SplitFractions:
    """Share of each split kept, a seeded random subset in file order; 1.0 keeps all."""

    train: float = opt(1.0, "share of train rows kept, in (0, 1]")
    dev: float = opt(1.0, "share of dev rows kept, in (0, 1]")
    test: float = opt(1.0, "share of test rows kept, in (0, 1] (below 1 the submission is partial)")


@dataclass(frozen=True)
class SplitRows:
    """Row cap per split, a seeded random subset in file order, applied after data.fraction."""

    train: Optional[int] = opt(None, "most train rows kept (None: all)")
    dev: Optional[int] = opt(None, "most dev rows kept (None: all)")
    test: Optional[int] = opt(None, "most test rows kept (None: all; a cap makes the submission partial)")


@dataclass(frozen=True)
class DataConfig:
    """Where each split comes from: files (CSV, JSON, JSONL, Parquet), folders, globs, hub datasets."""

    train_file: tuple[str, ...] = opt(("train.csv",), "training sources: a file, folder (all csv/json/jsonl/"
                                      "parquet files in it) or glob, or a list; relative to paths.data_dir")
    dev_file: tuple[str, ...] = opt(("dev.csv",), "dev sources with summaries (scored by the evaluate stage)")
    test_file: tuple[str, ...] = opt(("test.csv",), "test sources; their predictions become submission.csv")
    train_weights: tuple[float, ...] = opt((), "one factor per training source (data.train_file entries, then "
                                            "hub.train): 0.5 keeps a seeded half, 2 repeats it twice; empty: all 1")
    hub: HubSplits = sub(HubSplits)
    trust_remote_code: bool = opt(False, "let datasets run a hub dataset's loading script (datasets >= 4 ignores it)")
    columns: ColumnMap = sub(ColumnMap)
    fraction: SplitFractions = sub(SplitFractions)
    max_rows: SplitRows = sub(SplitRows)
    min_dialogue_chars: int = opt(0, "training rows with a shorter dialogue are dropped (0: no limit)")
    max_dialogue_chars: int = opt(0, "training rows with a longer dialogue are dropped (0: no limit)")


@dataclass(frozen=True)
class ModelConfig:
    """The model to fine-tune: a hub id or a local folder."""

    name: str = opt("upstage/SOLAR-10.7B-Instruct-v1.0", "hub id, local folder, 'tiny-debug', or 'gemma-3-270m' "
                                                            "(Gemma 3 270M from PyPI, converted once on first use)")
    type: str = opt("causal", "causal (instruction LLM + SFT) or seq2seq (KoBART-style)", ("causal", "seq2seq"))
    revision: Optional[str] = opt(None, "hub revision (branch, tag or commit)")
    trust_remote_code: bool = opt(False, "allow custom model code from the hub")
    torch_dtype: str = opt("auto", "weights dtype when not quantized", ("auto", "bfloat16", "float16", "float32"))
    device: str = opt("auto", "auto (cuda, then mps, then cpu), cuda, mps or cpu", ("auto", "cuda", "mps", "cpu"))
    attn_implementation: Optional[str] = opt(None, "eager, sdpa or flash_attention_2; None lets transformers pick")
    special_tokens: tuple[str, ...] = opt(
        ("#Person1#", "#Person2#", "#Person3#", "#Person4#", "#Person5#", "#Person6#", "#Person7#"),
        "tokens added to a seq2seq tokenizer (speaker tags and masks)",
    )


@dataclass(frozen=True)
class PromptConfig:
    """How a dialogue becomes a prompt; shared by training and inference."""

    system_prompt: str = opt(
        "당신은 한국어 대화를 정확하고 간결하게 요약하는 전문가입니다.", "system message (chat templates)"
    )
    instruction: str = opt("다음 대화를 요약해주세요.", "instruction placed before the dialogue")
    instruction_variants: tuple[str, ...] = opt(
        (
            "다음 대화를 요약해주세요.",
            "아래 대화의 핵심 내용을 정리해주세요.",
            "이 대화를 한두 문장으로 요약하세요.",
            "대화의 주요 내용을 간단히 요약해 주세요.",
            "다음 대화에서 누가 무엇을 했는지 요약해주세요.",
        ),
        "phrasings used by training.instruction_augmentation",
    )
    num_fewshot: int = opt(1, "training examples (dialogue + summary) placed in each prompt")
    few_shot_max_chars: int = opt(1500, "character cap on one few-shot example's dialogue")
    fewshot_selection: str = opt("fixed", "fixed (same shots everywhere), random (seeded per example) or similar "
                                 "(BM25 over Kiwi morphemes of the dialogue)", ("fixed", "random", "similar"))
    max_prompt_tokens: int = opt(1024, "prompt budget; longer prompts drop few-shot examples, then turns")
    max_summary_tokens: int = opt(128, "summary (completion) budget in tokens, EOS included")
    dialogue_trim: str = opt("middle", "which turns go first when a dialogue is too long", ("head", "tail", "middle"))
    use_chat_template: bool = opt(True, "use the tokenizer's chat template when it has one")


@dataclass(frozen=True)
class PreprocessConfig:
    """Normalisation of known noise in the data."""

    denoise: bool = opt(True, "apply the rule table in preprocess.rules_file")
    typo_fix: bool = opt(True, "apply the typo table in preprocess.typo_file")
    rules_file: str = opt("docs/denoise_rules.csv", "denoise rules: pattern, replacement, note")
    typo_file: str = opt("docs/typo_rules.csv", "typo table: wrong, right, note")


@dataclass(frozen=True)
class ApiConfig:
    """An OpenAI-compatible chat API (Upstage, vLLM, Ollama, llama.cpp)."""

    base_url: str = opt("https://api.upstage.ai/v1", "OpenAI-compatible endpoint")
    model: str = opt("solar-pro2", "chat model name on that endpoint")
    api_key_env: str = opt("UPSTAGE_API_KEY", "environment variable (or .env entry) holding the key")
    max_concurrency: int = opt(8, "requests in flight at once")
    timeout: float = opt(60.0, "seconds per request before it counts as failed and is retried")
    max_retries: int = opt(5, "retries on 429, 5xx, timeouts and connection errors")
    rpm: int = opt(0, "requests per minute limit (0: none)")
    tpm: int = opt(0, "tokens per minute limit (0: none)")
    max_cost: float = opt(0.0, "stop sending new requests once the estimated cost reaches this (0: no cap)")
    price_input_per_1m: float = opt(0.15, "price per million input tokens, for the cost ledger")
    price_output_per_1m: float = opt(0.6, "price per million output tokens, for the cost ledger")
    temperature: float = opt(0.7, "sampling temperature for augmentation requests")
    max_tokens: int = opt(1024, "max tokens per response")


@dataclass(frozen=True)
class AugmentationConfig:
    """LLM-API augmentation (paraphrase, synthetic) and speaker swap."""

    backend: str = opt("api", "api (OpenAI-compatible server) or transformers (local model)", ("api", "transformers"))
    num_paraphrase: float = opt(0.0, "paraphrases: a count (>=1) or a fraction of the train set (<1)")
    num_speaker_swap: float = opt(0.0, "speaker-swapped copies: a count or a fraction")
    num_synthetic: float = opt(0.0, "synthetic dialogues from train topics: a count or a fraction")
    api: ApiConfig = sub(ApiConfig)
    local_model: Optional[str] = opt(None, "model for backend=transformers (default: model.name)")
    min_length_ratio: float = opt(0.6, "paraphrase length / original length, lower bound")
    max_length_ratio: float = opt(1.6, "paraphrase length / original length, upper bound")
    min_hangul_ratio: float = opt(0.5, "share of Hangul among letters")
    near_dup_threshold: float = opt(0.8, "n-gram Jaccard at or above which a text is a near-duplicate")


@dataclass(frozen=True)
class MergeConfig:
    """Originals plus accepted augmented rows."""

    max_paraphrase: Optional[int] = opt(None, "cap on paraphrase rows (None: all)")
    max_synthetic: Optional[int] = opt(None, "cap on synthetic rows (None: all)")
    max_swap: Optional[int] = opt(None, "cap on speaker-swap rows (None: all)")
    near_dup_threshold: float = opt(0.9, "n-gram Jaccard for near-duplicate removal")
    shuffle: bool = opt(True, "deterministic shuffle by seed")


@dataclass(frozen=True)
class LoraConfig:
    """LoRA adapter settings."""

    r: int = opt(16, "rank")
    alpha: int = opt(32, "scaling numerator (scale = alpha / r)")
    dropout: float = opt(0.05, "dropout on the LoRA input")
    target_modules: str = opt("all-linear", "'all-linear' or comma-separated module names")
    bias: str = opt("none", "which biases train", ("none", "all", "lora_only"))
    use_dora: bool = opt(False, "weight-decomposed LoRA")
    use_rslora: bool = opt(False, "rank-stabilised scaling alpha / sqrt(r)")
    modules_to_save: tuple[str, ...] = opt((), "modules trained fully and saved with the adapter")


@dataclass(frozen=True)
class TrainingConfig:
    """Fine-tuning (TRL SFTTrainer for causal, Seq2SeqTrainer for seq2seq)."""

    num_train_epochs: float = opt(3.0, "epochs (ignored when max_steps > 0)")
    max_steps: int = opt(-1, "total optimizer steps; -1 uses num_train_epochs")
    learning_rate: float = opt(2e-4, "peak learning rate")
    per_device_train_batch_size: int = opt(4, "batch size per device")
    per_device_eval_batch_size: int = opt(8, "eval batch size per device")
    gradient_accumulation_steps: int = opt(4, "micro-batches per optimizer step")
    warmup_fraction: float = opt(0.03, "share of steps spent warming up (mapped to warmup_steps)")
    lr_scheduler_type: str = opt("cosine", "transformers scheduler name")
    lr_scheduler_kwargs: dict = opt({}, "scheduler arguments, e.g. {min_lr_rate: 0.1} for cosine_with_min_lr")
    weight_decay: float = opt(0.0, "AdamW weight decay")
    max_grad_norm: float = opt(1.0, "gradient clipping")
    optim: str = opt("auto", "transformers optimizer name; auto = paged_adamw_8bit on CUDA, adamw_torch on CPU")
    use_lora: bool = opt(True, "train a LoRA adapter; false = full fine-tuning")
    use_qlora: bool = opt(True, "load the base in 4-bit (bitsandbytes) under the adapter")
    quantization: str = opt("nf4", "4-bit type for QLoRA", ("nf4", "fp4", "int8", "none"))
    bnb_4bit_use_double_quant: bool = opt(True, "quantize the quantization constants too")
    compute_dtype: str = opt("auto", "auto: bf16 where supported, else fp16 on CUDA, fp32 on CPU",
                             ("auto", "bfloat16", "float16", "float32"))
    lora: LoraConfig = sub(LoraConfig)
    gradient_checkpointing: bool = opt(True, "trade compute for activation memory")
    logging_steps: int = opt(10, "log every N steps")
    eval_steps: int = opt(0, "evaluate every N steps; 0 or one that does not divide save_steps: at every checkpoint")
    save_steps: int = opt(200, "checkpoint every N steps")
    save_total_limit: int = opt(3, "keep at most N checkpoints")
    eval_rouge_samples: int = opt(0, "generate N dev summaries at each eval and compute ROUGE (0: off)")
    metric_for_best_model: str = opt("auto", "best checkpoint by: auto (rouge_final when eval_rouge_samples > 0, "
                                     "else eval_loss)", ("auto", "eval_loss", "rouge_final", "rouge1", "rouge2", "rougeL"))
    early_stopping_patience: int = opt(0, "stop after N evals without improvement (0: off)")
    instruction_augmentation: bool = opt(False, "render each example once per prompt.instruction_variants")
    padding_free: bool = opt(True, "causal: a micro-batch is its examples end to end, no padding; position ids "
                                   "restart per example, so none attends to another (false: padded batches)")
    packing: bool = opt(False, "causal: BFD-pack examples into fixed rows as long as the longest example "
                               "(padding-free too); wins over padding_free")
    label_logits_only: bool = opt(True, "causal: compute the output layer only at labelled (summary) positions, "
                                        "not the prompt's; same loss, much less time with a large vocabulary")
    group_by_length: bool = opt(False, "batch examples of similar length (padded batches only)")
    neftune_noise_alpha: Optional[float] = opt(None, "NEFTune embedding noise")
    merge_adapter: bool = opt(False, "also write merged weights to final_merged/")
    report_to: str = opt("none", "none, tensorboard or wandb (offline without WANDB_API_KEY)",
                         ("none", "tensorboard", "wandb"))
    extra: dict = opt({}, "extra arguments forwarded to SFTConfig / Seq2SeqTrainingArguments")


@dataclass(frozen=True)
class InferenceConfig:
    """Batched generation for dev and test."""

    batch_size: int = opt(8, "prompts per generate() call (greedy outputs do not depend on it)")
    max_batch_tokens: int = opt(0, "cap on padded tokens per batch, (longest prompt + max_new_tokens) x rows (0: none)")
    max_new_tokens: int = opt(128, "generation length cap; outputs that reach it are counted in the manifest")
    num_beams: int = opt(1, "beam search width")
    no_repeat_ngram_size: int = opt(0, "forbid repeated n-grams (0: off; speaker tags repeat, so keep it >= 5)")
    length_penalty: float = opt(1.0, "beam length penalty")
    repetition_penalty: float = opt(1.0, "penalty on repeated tokens")
    do_sample: bool = opt(False, "sample instead of greedy/beam")
    temperature: float = opt(1.0, "sampling temperature")
    top_p: float = opt(1.0, "nucleus sampling")
    checkpoint: Optional[str] = opt(None, "model/adapter folder to use; default the run's final_checkpoint")
    backend: str = opt("transformers", "generation backend (vllm: pip install vllm, CUDA only)", ("transformers", "vllm"))
    quantize: str = opt("auto", "base under an adapter: auto (4-bit when trained with QLoRA), 4bit, or none",
                        ("auto", "4bit", "none"))
    merge_lora: bool = opt(True, "fold the adapter into an unquantized base before generating (faster)")
    vllm_gpu_memory_utilization: float = opt(0.9, "share of GPU memory vLLM may take (weights + KV cache)")
    empty_fallback: str = opt("first_turn", "what replaces an empty output", ("first_turn", "placeholder"))
    predict_dev: bool = opt(True, "also predict the dev set (scored by the evaluate stage)")


@dataclass(frozen=True)
class EvaluationConfig:
    """ROUGE as the competition scores it."""

    tokenizer: str = opt("kiwi", "kiwi (morphemes) or whitespace", ("kiwi", "whitespace"))


@dataclass(frozen=True)
class Seq2SeqConfig:
    """Encoder-decoder (model.type=seq2seq) lengths and generation defaults (the KoBART baseline's)."""

    encoder_max_len: int = opt(512, "dialogue tokens fed to the encoder, <s> and </s> included")
    decoder_max_len: int = opt(100, "summary tokens trained, </s> included (longer summaries are cut)")
    generation_max_length: int = opt(100, "generate(max_length); inference.max_new_tokens wins when changed from its default")
    num_beams: int = opt(4, "beam width; inference.num_beams wins when changed from its default")
    no_repeat_ngram_size: int = opt(2, "forbid repeated n-grams (0: off); inference.no_repeat_ngram_size wins when changed")
    early_stopping: bool = opt(True, "beam search stops once num_beams finished candidates exist")


@dataclass(frozen=True)
class Config:
    """The whole pipeline configuration."""

    seed: int = opt(42, "seed for shuffles, sampling and training")
    log_level: str = opt("INFO", "console log level", ("DEBUG", "INFO", "WARNING", "ERROR"))
    paths: PathsConfig = sub(PathsConfig)
    data: DataConfig = sub(DataConfig)
    model: ModelConfig = sub(ModelConfig)
    prompt: PromptConfig = sub(PromptConfig)
    preprocess: PreprocessConfig = sub(PreprocessConfig)
    augmentation: AugmentationConfig = sub(AugmentationConfig)
    merge: MergeConfig = sub(MergeConfig)
    training: TrainingConfig = sub(TrainingConfig)
    inference: InferenceConfig = sub(InferenceConfig)
    evaluation: EvaluationConfig = sub(EvaluationConfig)
    seq2seq: Seq2SeqConfig = sub(Seq2SeqConfig)


# ---------------------------------------------------------------- schema walking


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_section(tp: Any) -> bool:
    return dataclasses.is_dataclass(tp)


def all_keys(cls: type = Config, prefix: str = "") -> dict[str, tuple[Any, dataclasses.Field]]:
    """Every leaf key as 'section.sub.key' -> (type, field)."""
    out: dict[str, tuple[Any, dataclasses.Field]] = {}
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        if _is_section(hints[f.name]):
            out.update(all_keys(hints[f.name], key + "."))
        else:
            out[key] = (hints[f.name], f)
    return out


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    if not close:
        leaf = key.rsplit(".", 1)[-1]
        close = [k for k in valid if k.rsplit(".", 1)[-1] == leaf][:1]
    return f" (did you mean '{close[0]}'?)" if close else ""


# ---------------------------------------------------------------- value coercion

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def coerce(key: str, value: Any, tp: Any) -> Any:
    """Convert a YAML or command-line value to the field's type, or raise ValueError."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null", "~", "")):
            return None
        return coerce(key, value, args[0])
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, (str, int)) and str(value).strip().lower() in _TRUE | _FALSE:
            return str(value).strip().lower() in _TRUE
        raise ValueError("expected true or false")
    if tp is int:
        if isinstance(value, bool):
            raise ValueError("expected an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            return int(float(value)) if _is_integral(value) else int(value)
        raise ValueError("expected an integer")
    if tp is float:
        if isinstance(value, bool):
            raise ValueError("expected a number")
        return float(value)
    if tp is str:
        if isinstance(value, (dict, list)):
            raise ValueError("expected a string")
        return str(value)
    if origin is tuple:
        return _coerce_tuple(key, value, typing.get_args(tp)[0])
    if tp is dict or origin is dict:
        if isinstance(value, str):
            value = yaml.safe_load(value) if value.strip() else {}
        if not isinstance(value, dict):
            raise ValueError("expected a mapping like {a: 1}")
        return dict(value)
    raise ValueError(f"unsupported type {tp}")


def _is_integral(text: str) -> bool:
    try:
        return float(text).is_integer() and any(c in text.lower() for c in "e.")
    except ValueError:
        return False


def _coerce_tuple(key: str, value: Any, item_tp: Any) -> tuple:
    if isinstance(value, str):
        text = value.strip()
        value = yaml.safe_load(text) if text.startswith("[") else [v.strip() for v in text.split(",") if v.strip()]
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)):
        raise ValueError("expected a list")
    return tuple(coerce(key, v, item_tp) for v in value)


# ---------------------------------------------------------------- loading


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and not _is_dict_leaf(key):
            flat.update(_flatten(v, key + "."))
        else:
            flat[key] = v
    return flat


def _is_dict_leaf(key: str) -> bool:
    entry = all_keys().get(key)
    return entry is not None and (entry[0] is dict or typing.get_origin(entry[0]) is dict)


def read_yaml(path: Path, _seen: Optional[set] = None) -> dict[str, Any]:
    """Read a config YAML into flat 'a.b' keys, following its ``bases:`` list first."""
    path = Path(path)
    seen = _seen or set()
    if path.resolve() in seen:
        raise UserError(f"{path}: 'bases' includes itself in a cycle; remove the loop")
    seen.add(path.resolve())
    if not path.is_file():
        raise UserError(f"{path}: config file not found; pass an existing file to --config")
    try:
        tree = yaml.safe_load(path.read_text(encoding="utf-8-sig")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid YAML ({str(exc).splitlines()[0]}); fix the syntax") from None
    if not isinstance(tree, dict):
        raise UserError(f"{path}: the top level must be a mapping of config sections")
    flat: dict[str, Any] = {}
    bases = tree.pop("bases", []) or []
    for base in [bases] if isinstance(bases, str) else bases:
        flat.update(read_yaml(path.parent / base, seen))
    flat.update({k: (v, str(path)) for k, v in _flatten(tree).items()})
    return flat


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Turn ``key.sub=value`` strings into flat entries tagged with their origin."""
    flat: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"override '{item}': expected key.sub=value (e.g. training.learning_rate=2e-4)")
        key, value = item.split("=", 1)
        flat[key.strip()] = (value, "command line")
    return flat


def build_config(flat: dict[str, tuple[Any, str]]) -> Config:
    """Build the typed tree from flat entries; every problem is reported at once."""
    schema = all_keys()
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key, (raw, origin) in flat.items():
        if key not in schema:
            problems.append(f"{origin}: unknown config key '{key}'{_suggest(key, list(schema))}")
            continue
        tp, fld = schema[key]
        try:
            value = coerce(key, raw, tp)
        except (ValueError, TypeError) as exc:
            problems.append(f"{origin}: config key '{key}' = {raw!r}: {exc}")
            continue
        choices = fld.metadata.get("choices")
        if choices and value not in choices:
            problems.append(f"{origin}: config key '{key}' = {value!r}: must be one of {', '.join(map(str, choices))}")
            continue
        values[key] = value
    if problems:
        raise UserError(*problems)
    return _assemble(Config, values)


def _assemble(cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    hints = _hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        if _is_section(hints[f.name]):
            kwargs[f.name] = _assemble(hints[f.name], values, key + ".")
        elif key in values:
            kwargs[f.name] = values[key]
    return cls(**kwargs)


def load_config(path: Optional[Path], overrides: list[str], debug_small: bool = False,
                flag_values: Optional[dict[str, Any]] = None) -> Config:
    """Load defaults < YAML (with bases) < debug overlay < CLI flags < dotted overrides."""
    flat = read_yaml(Path(path) if path else DEFAULT_CONFIG)
    if debug_small:
        flat.update(read_yaml(DEBUG_OVERLAY))
    flat.update({k: (v, "command line") for k, v in (flag_values or {}).items()})
    flat.update(parse_overrides(overrides))
    cfg = build_config(flat)
    check_config(cfg)
    return cfg


def check_config(cfg: Config) -> None:
    """Cross-field checks that the types alone cannot express."""
    problems = []
    t = cfg.training
    if t.use_qlora and not t.use_lora:
        problems.append("config key 'training.use_qlora' is true but 'training.use_lora' is false: "
                        "QLoRA trains a LoRA adapter; set training.use_lora=true or training.use_qlora=false")
    if t.max_steps == 0 or (t.max_steps < 0 and t.num_train_epochs <= 0):
        problems.append("config keys 'training.max_steps'/'training.num_train_epochs': nothing to train; "
                        "set max_steps > 0 or num_train_epochs > 0")
    for key, value in (("training.learning_rate", t.learning_rate), ("inference.batch_size", cfg.inference.batch_size),
                       ("training.per_device_train_batch_size", t.per_device_train_batch_size),
                       ("inference.max_new_tokens", cfg.inference.max_new_tokens),
                       ("prompt.max_prompt_tokens", cfg.prompt.max_prompt_tokens),
                       ("augmentation.api.max_concurrency", cfg.augmentation.api.max_concurrency),
                       ("augmentation.api.timeout", cfg.augmentation.api.timeout)):
        if value <= 0:
            problems.append(f"config key '{key}' = {value}: must be > 0")
    if cfg.prompt.num_fewshot < 0:
        problems.append(f"config key 'prompt.num_fewshot' = {cfg.prompt.num_fewshot}: must be >= 0")
    a = cfg.augmentation
    if (a.backend == "transformers" and cfg.model.type == "seq2seq" and not a.local_model
            and cfg.model.name != "tiny-debug" and (a.num_paraphrase > 0 or a.num_synthetic > 0)):
        problems.append("config key 'augmentation.local_model' is unset but model.type=seq2seq cannot chat: "
                        "name a causal chat model for augmentation.backend=transformers, or use backend=api")
    if problems:
        raise UserError(*problems)


def to_dict(cfg: Any) -> dict[str, Any]:
    """The resolved config as plain YAML-friendly data (tuples become lists)."""
    def plain(v: Any) -> Any:
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v
    return {k: (to_dict(v) if dataclasses.is_dataclass(v) else plain(v))
            for k, v in ((f.name, getattr(cfg, f.name)) for f in dataclasses.fields(cfg))}


def resolve_path(path: str | Path, base: Optional[Path] = None) -> Path:
    """A config path: absolute as given, else relative to ``base`` (default: the repo root)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else (base or REPO_ROOT) / p
