"""The config schema: one frozen dataclass per section, every key with a default, one line of help,
its allowed choices and its numeric bounds (checked by ``src.config.checks`` before anything runs).
The generation sections (inference, rl, tune, evaluation) live in ``src.config.generation``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

from src.config.fields import opt, sub
from src.config.generation import (BLOCKABLE_SCRIPTS, TUNE_SPACE, EvaluationConfig, InferenceConfig, MbrConfig,
                                   RlConfig, TuneConfig)
from src.config.resources import SHIPPED

REPO_ROOT = SHIPPED  # the source checkout, or an installed copy's shipped files (src.config.resources)
DEFAULT_CONFIG = REPO_ROOT / "configs" / "default.yaml"
DEBUG_OVERLAY = REPO_ROOT / "configs" / "debug_small.yaml"
AUTO = "auto"  # a value some keys take instead of a number: derive it from the data
SPLITS = ("train", "dev", "test")  # the data splits, each with data.<split>_file and data.hub.<split>


@dataclass(frozen=True)
class PathsConfig:
    """Where inputs are read and outputs written (relative to the working directory; a missing input folder such
    as data/debug is taken from the shipped files, src.config.resources)."""

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
    fraction: float = opt(1.0, "share of the loaded rows kept, in (0, 1] (the first rows, or a random share with shuffle)", gt=0, le=1)
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
    named column but has the canonical one uses the canonical one), or a conversational or
    prompt/completion source (src/data/formats.py)."""

    fname: str = opt("fname", "id column (a source without it is an error unless data.generate_ids is true)")
    dialogue: str = opt("dialogue", "input text column (e.g. input, document)")
    summary: str = opt("summary", "target text column (e.g. output, summary1); not needed for test")
    topic: str = opt("topic", "optional topic column, kept when present")
    messages: str = opt("messages", "conversational column (a list of {role, content} turns, TRL/LLaMA-Factory style): "
                                    "the last user turn is the dialogue, the assistant turn after it the summary; "
                                    "read when the source has no dialogue column")
    prompt: str = opt("prompt", "prompt column of a prompt/completion source (text, or turns: the last user turn) "
                                "read as the dialogue when the source has no dialogue or messages column")
    completion: str = opt("completion", "completion column of a prompt/completion source (text, or turns: the "
                                        "assistant text) read as the summary")


@dataclass(frozen=True)
class SplitFractions:
    """Share of each split kept, a seeded random subset in file order; 1.0 keeps all."""

    train: float = opt(1.0, "share of train rows kept, in (0, 1]", gt=0, le=1)
    dev: float = opt(1.0, "share of dev rows kept, in (0, 1]", gt=0, le=1)
    test: float = opt(1.0, "share of test rows kept, in (0, 1] (below 1 the submission is partial)", gt=0, le=1)


@dataclass(frozen=True)
class SplitRows:
    """Row cap per split, a seeded random subset in file order, applied after data.fraction."""

    train: Optional[int] = opt(None, "most train rows kept (None: all)", ge=1)
    dev: Optional[int] = opt(None, "most dev rows kept (None: all)", ge=1)
    test: Optional[int] = opt(None, "most test rows kept (None: all; a cap makes the submission partial)", ge=1)


@dataclass(frozen=True)
class DataConfig:
    """Where each split comes from: files (CSV, JSON, JSONL, Parquet), folders, globs, hub datasets."""

    train_file: tuple[str, ...] = opt(("train.csv",), "training sources: a file, folder (all csv/json/jsonl/"
                                      "parquet files in it) or glob, or a list; relative to paths.data_dir")
    dev_file: tuple[str, ...] = opt(("dev.csv",), "dev sources with summaries (scored by the evaluate stage)")
    test_file: tuple[str, ...] = opt(("test.csv",), "test sources; their predictions become submission.csv")
    train_weights: tuple[float, ...] = opt((), "one factor per training source (data.train_file entries, then "
                                            "hub.train): 0.5 keeps a seeded half, 2 repeats it twice; empty: all 1",
                                           ge=0)
    hub: HubSplits = sub(HubSplits)
    trust_remote_code: bool = opt(False, "let datasets run a hub dataset's loading script (datasets >= 4 ignores it)")
    columns: ColumnMap = sub(ColumnMap)
    generate_ids: bool = opt(False, "give rows of a source without an id column the ids <split>-<source>-<row> "
                                    "(false: such a source is an error naming data.columns.fname, since a "
                                    "submission needs the real ids)")
    fraction: SplitFractions = sub(SplitFractions)
    max_rows: SplitRows = sub(SplitRows)
    min_dialogue_chars: int = opt(0, "training rows with a shorter dialogue are dropped (0: no limit)", ge=0)
    max_dialogue_chars: int = opt(20000, "training rows with a longer dialogue are dropped; dev and test rows longer "
                                         "than it (and than 20,000) are refused as a broken file (the longest real "
                                         "dialogue has ~2,300 characters; 0: no limit)", ge=0)


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
    cpu_threads: Union[int, str] = opt("auto", "torch and Kiwi threads: auto (the cores this process may use minus "
                                               "the cores other processes keep busy, sampled at start; at least 1) or a number", ge=1)
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
    num_fewshot: int = opt(1, "training examples (dialogue + summary) placed in each prompt", ge=0)
    few_shot_max_chars: int = opt(1500, "character cap on one few-shot example's dialogue", ge=1)
    fewshot_selection: str = opt("fixed", "fixed (same shots everywhere), random (seeded per example) or similar "
                                 "(BM25 over Kiwi morphemes of the dialogue)", ("fixed", "random", "similar"))
    max_prompt_tokens: int = opt(1024, "prompt budget; longer prompts drop few-shot examples, then turns", ge=1)
    max_summary_tokens: int = opt(128, "summary (completion) budget in tokens, EOS included", ge=1)
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
    max_concurrency: int = opt(8, "requests in flight at once", ge=1)
    timeout: float = opt(60.0, "seconds per request before it counts as failed and is retried", gt=0)
    max_retries: int = opt(5, "retries on 429, 5xx, timeouts and connection errors", ge=0)
    rpm: int = opt(0, "requests per minute limit (0: none)", ge=0)
    tpm: int = opt(0, "tokens per minute limit (0: none)", ge=0)
    max_cost: float = opt(5.0, "stop sending new requests once the estimated cost (price_*_per_1m, e.g. USD) reaches "
                                "this (0: no cap; the run says the cap before its first stage)", ge=0)
    price_input_per_1m: float = opt(0.15, "price per million input tokens, for the cost ledger", ge=0)
    price_output_per_1m: float = opt(0.6, "price per million output tokens, for the cost ledger", ge=0)
    temperature: float = opt(0.7, "sampling temperature for augmentation requests", ge=0, le=2)
    max_tokens: int = opt(1024, "max tokens per response", ge=1)
    deadline_s: float = opt(7200.0, "seconds the whole batch of requests may take; after it no new request is sent "
                                    "and waiting ones fail as 'deadline' (0: no deadline)", ge=0)


@dataclass(frozen=True)
class AugmentationConfig:
    """LLM-API augmentation (paraphrase, synthetic) and speaker swap."""

    backend: str = opt("api", "api (OpenAI-compatible server) or transformers (local model)", ("api", "transformers"))
    num_paraphrase: float = opt(0.0, "paraphrases: a count (>=1) or a fraction of the train set (<1)", ge=0)
    num_speaker_swap: float = opt(0.0, "speaker-swapped copies: a count or a fraction", ge=0)
    num_synthetic: float = opt(0.0, "synthetic dialogues from train topics: a count or a fraction", ge=0)
    api: ApiConfig = sub(ApiConfig)
    local_model: Optional[str] = opt(None, "model for backend=transformers (default: model.name)")
    min_length_ratio: float = opt(0.6, "paraphrase length / original length, lower bound", gt=0)
    max_length_ratio: float = opt(1.6, "paraphrase length / original length, upper bound", gt=0)
    min_hangul_ratio: float = opt(0.5, "share of Hangul among letters", ge=0, le=1)
    near_dup_threshold: float = opt(0.8, "n-gram Jaccard at or above which a text is a near-duplicate", gt=0, le=1)
    min_kiwi_score: float = opt(-5.6, "generated dialogues with a lower Kiwi log-probability per morpheme are refused "
                                      "as gibberish (real dev dialogues: 2/499 below; word-shuffled: 88% below)", le=0)
    min_summary_kiwi_score: float = opt(-8.0, "the same for generated summaries, which score lower for being short "
                                              "(real dev summaries: -7.5 the lowest; reversed text: -8.7 the highest)",
                                        le=0)
    min_sentence_end_share: float = opt(0.6, "generated dialogues need this share of turns ending like a sentence "
                                             "(real: >= 0.67 for 99%; word-shuffled: 0.5 median)", ge=0, le=1)
    max_failed_fraction: float = opt(0.1, "share of requests that may fail (after retries) before the stage fails; "
                                          "the journal keeps what completed, so --resume sends only the rest",
                                     ge=0, le=1)


@dataclass(frozen=True)
class MergeConfig:
    """Originals plus accepted augmented rows."""

    max_paraphrase: Optional[int] = opt(None, "cap on paraphrase rows (None: all)", ge=0)
    max_synthetic: Optional[int] = opt(None, "cap on synthetic rows (None: all)", ge=0)
    max_swap: Optional[int] = opt(None, "cap on speaker-swap rows (None: all)", ge=0)
    near_dup_threshold: float = opt(0.9, "n-gram Jaccard for near-duplicate removal", gt=0, le=1)
    shuffle: bool = opt(True, "deterministic shuffle by seed")


@dataclass(frozen=True)
class LoraConfig:
    """LoRA adapter settings."""

    r: int = opt(16, "rank", ge=1)
    alpha: int = opt(32, "scaling numerator (scale = alpha / r)", ge=1)
    dropout: float = opt(0.05, "dropout on the LoRA input", ge=0, lt=1)
    target_modules: str = opt("all-linear", "'all-linear' or comma-separated module names")
    bias: str = opt("none", "which biases train", ("none", "all", "lora_only"))
    use_dora: bool = opt(False, "weight-decomposed LoRA")
    use_rslora: bool = opt(False, "rank-stabilised scaling alpha / sqrt(r)")
    modules_to_save: tuple[str, ...] = opt((), "modules trained fully and saved with the adapter")


@dataclass(frozen=True)
class TrainingConfig:
    """Fine-tuning (TRL SFTTrainer for causal, Seq2SeqTrainer for seq2seq)."""

    num_train_epochs: float = opt(3.0, "epochs (ignored when max_steps > 0)", ge=0)
    max_steps: int = opt(-1, "total optimizer steps; -1 uses num_train_epochs", ge=-1)
    learning_rate: float = opt(2e-4, "peak learning rate", gt=0)
    per_device_train_batch_size: int = opt(4, "batch size per device", ge=1)
    per_device_eval_batch_size: int = opt(8, "eval batch size per device", ge=1)
    gradient_accumulation_steps: int = opt(4, "micro-batches per optimizer step", ge=1)
    warmup_fraction: float = opt(0.03, "share of steps spent warming up (mapped to warmup_steps)", ge=0, lt=1)
    lr_scheduler_type: str = opt("cosine", "transformers scheduler name")
    lr_scheduler_kwargs: dict = opt({}, "scheduler arguments, e.g. {min_lr_rate: 0.1} for cosine_with_min_lr")
    weight_decay: float = opt(0.0, "AdamW weight decay", ge=0)
    max_grad_norm: float = opt(1.0, "gradient clipping", ge=0)
    optim: str = opt("auto", "transformers optimizer name; auto = paged_adamw_8bit on CUDA, adamw_torch on CPU")
    use_lora: bool = opt(True, "train a LoRA adapter; false = full fine-tuning")
    use_qlora: bool = opt(True, "load the base in 4-bit (bitsandbytes) under the adapter")
    quantization: str = opt("nf4", "4-bit type for QLoRA", ("nf4", "fp4", "int8", "none"))
    bnb_4bit_use_double_quant: bool = opt(True, "quantize the quantization constants too")
    compute_dtype: str = opt("auto", "auto: bf16 where supported, else fp16 on CUDA, fp32 on CPU; native_bf16: the "
                             "same, but bf16 on a CPU with AVX512-BF16 or AMX too (training autocast and inference)",
                             ("auto", "native_bf16", "bfloat16", "float16", "float32"))
    lora: LoraConfig = sub(LoraConfig)
    gradient_checkpointing: bool = opt(True, "trade compute for activation memory")
    logging_steps: int = opt(10, "log every N steps", ge=1)
    eval_steps: int = opt(0, "evaluate every N steps; 0 or one that does not divide save_steps: at every checkpoint",
                          ge=0)
    save_steps: int = opt(200, "checkpoint every N steps", ge=1)
    save_total_limit: int = opt(3, "keep at most N checkpoints", ge=1)
    eval_file: str = opt("", "CSV (fname,dialogue,summary) the training-time eval reads (eval loss, ROUGE callback, "
                              "best checkpoint) instead of the dev split, relative to paths.data_dir; a benchmark "
                              "keeps its held-out dev rows away from checkpoint choice with it (empty: the dev split)")
    eval_rouge_samples: int = opt(0, "generate N dev summaries at each eval and compute ROUGE (0: off)", ge=0)
    metric_for_best_model: str = opt("auto", "best checkpoint by: auto (rouge_final when eval_rouge_samples > 0, "
                                     "else eval_loss)", ("auto", "eval_loss", "rouge_final", "rouge1", "rouge2", "rougeL"))
    early_stopping_patience: int = opt(0, "stop after N evals without improvement (0: off)", ge=0)
    instruction_augmentation: bool = opt(False, "render each example once per prompt.instruction_variants")
    padding_free: bool = opt(True, "causal: a micro-batch is its examples end to end, no padding; position ids "
                                   "restart per example, so none attends to another (false: padded batches)")
    packing: bool = opt(False, "causal: BFD-pack examples into fixed rows as long as the longest example "
                               "(padding-free too); wins over padding_free")
    label_logits_only: bool = opt(True, "causal: compute the output layer only at labelled (summary) positions, "
                                        "not the prompt's; same loss, much less time with a large vocabulary")
    group_by_length: bool = opt(False, "batch examples of similar length (padded batches only)")
    neftune_noise_alpha: Optional[float] = opt(None, "NEFTune embedding noise", gt=0)
    merge_adapter: bool = opt(False, "also write merged weights to final_merged/")
    report_to: tuple[str, ...] = opt((), "trackers of the run (src/tracking.py): a list of wandb and tensorboard, "
                                         "e.g. [wandb, tensorboard]; [] or none for none (one name alone is fine)",
                                     ("none", "tensorboard", "wandb"))
    wandb_project: str = opt("dialsum", "wandb project the run is logged to")
    wandb_entity: Optional[str] = opt(None, "wandb team or user (None: the key's default entity)")
    extra: dict = opt({}, "extra arguments forwarded to SFTConfig / Seq2SeqTrainingArguments")


@dataclass(frozen=True)
class Seq2SeqConfig:
    """Encoder-decoder (model.type=seq2seq) lengths and generation defaults (the KoBART baseline's)."""

    encoder_max_len: int = opt(512, "dialogue tokens fed to the encoder, <s> and </s> included", ge=3)
    decoder_max_len: int = opt(100, "summary tokens trained, </s> included (longer summaries are cut)", ge=2)
    generation_max_length: int = opt(100, "generate(max_length); inference.max_new_tokens wins when the config "
                                          "changed it, the tune stage chose it or the command line names it", ge=2)
    num_beams: int = opt(4, "beam width; inference.num_beams wins when the config changed it, the tune stage chose it "
                            "or the command line names it (whatever its value)", ge=1)
    no_repeat_ngram_size: int = opt(2, "forbid repeated n-grams (0: off); inference.no_repeat_ngram_size wins as "
                                       "num_beams does", ge=0)
    early_stopping: bool = opt(True, "beam search stops once num_beams finished candidates exist")


@dataclass(frozen=True)
class Config:
    """The whole pipeline configuration."""

    seed: int = opt(42, "seed for shuffles, sampling and training", ge=0)
    log_level: str = opt("INFO", "console log level", ("DEBUG", "INFO", "WARNING", "ERROR"))
    paths: PathsConfig = sub(PathsConfig)
    data: DataConfig = sub(DataConfig)
    model: ModelConfig = sub(ModelConfig)
    prompt: PromptConfig = sub(PromptConfig)
    preprocess: PreprocessConfig = sub(PreprocessConfig)
    augmentation: AugmentationConfig = sub(AugmentationConfig)
    merge: MergeConfig = sub(MergeConfig)
    training: TrainingConfig = sub(TrainingConfig)
    rl: RlConfig = sub(RlConfig)
    inference: InferenceConfig = sub(InferenceConfig)
    tune: TuneConfig = sub(TuneConfig)
    evaluation: EvaluationConfig = sub(EvaluationConfig)
    seq2seq: Seq2SeqConfig = sub(Seq2SeqConfig)


__all__ = ["AUTO", "BLOCKABLE_SCRIPTS", "DEBUG_OVERLAY", "DEFAULT_CONFIG", "REPO_ROOT", "SPLITS", "TUNE_SPACE", "Config",
           "EvaluationConfig", "InferenceConfig", "MbrConfig", "RlConfig", "TuneConfig", "opt", "sub"]
