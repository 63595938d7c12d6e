"""The config sections of generation and what builds on it: inference (with MBR), the rl stage, tune, evaluation."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

from src.config.fields import ENGINE, GENERATION, OUTPUT, opt, sub

BLOCKABLE_SCRIPTS = ("han", "kana", "cyrillic")  # no reference uses them: inference.block_scripts, the fluency check


@dataclass(frozen=True)
class MbrConfig:
    """Minimum-Bayes-risk selection: per dialogue, the candidate most like the others (num_candidates > 1 turns it on)."""

    num_candidates: int = opt(1, "candidates per dialogue: the configured decode, the tune stage's next best "
                                 "settings (mbr.from_tune), then samples (1: off)", ge=1)
    from_tune: int = opt(0, "how many of the tune stage's next best settings add a candidate each (the tune stage "
                            "then checks MBR on its rows; tune.select=confident turns MBR off unless it beats the "
                            "chosen setting with confidence)", ge=0)
    temperature: float = opt(0.7, "sampling temperature of the sampled candidates", gt=0)
    top_p: float = opt(0.95, "nucleus share of the sampled candidates", gt=0, le=1)
    weights: tuple[float, ...] = opt((1.0, 1.0, 1.0), "utility weights of ROUGE-1, ROUGE-2, ROUGE-L F1", ge=0)
    chunk: int = opt(32, "dialogues whose candidates are generated and selected together (journaled per chunk)",
                     ge=1)


@dataclass(frozen=True)
class InferenceConfig:
    """Batched generation for dev and test."""

    batch_size: int = opt(8, "prompts per generate() call (greedy outputs do not depend on it)", ge=1, decides=ENGINE)
    max_batch_tokens: int = opt(0, "cap on padded tokens per batch, (longest prompt + max_new_tokens) x rows (0: none)", ge=0, decides=ENGINE)
    max_new_tokens: Union[int, str] = opt("auto", "generation length cap: auto (the 99.5th percentile of the training "
                                          "summaries' tokens plus a margin, stored with the checkpoint) or a number; "
                                          "outputs that reach it are counted in the manifest", ge=1, decides=GENERATION)
    num_beams: int = opt(1, "beam search width", ge=1, decides=GENERATION)
    no_repeat_ngram_size: int = opt(0, "forbid repeated n-grams (0: off; speaker tags repeat, so keep it >= 5)", ge=0, decides=GENERATION)
    length_penalty: float = opt(1.0, "beam length penalty", decides=GENERATION)
    repetition_penalty: float = opt(1.0, "penalty on repeated tokens", gt=0, decides=GENERATION)
    do_sample: bool = opt(False, "sample instead of greedy/beam", decides=GENERATION)
    temperature: float = opt(1.0, "sampling temperature", gt=0, decides=GENERATION)
    top_p: float = opt(1.0, "nucleus sampling", gt=0, le=1, decides=GENERATION)
    checkpoint: Optional[str] = opt(None, "model/adapter folder to use; default the run's final_checkpoint (with "
                                    "--skip-training and no --run-name: the newest one trained with model.name)")
    prompt_from_checkpoint: bool = opt(True, "prompt as the checkpoint was trained (its prompt.* settings and few-shot "
                                             "pool, recorded with it); false: the current prompt.* settings", decides=OUTPUT)
    backend: str = opt("auto", "generation engine: continuous (slots refilled as sequences finish, the kept-id output "
                               "layer; measured on CPU), transformers (model.generate on left-padded batches), vllm "
                               "(its own environment: make setup-vllm on CPU, pip install vllm on a GPU); auto: "
                               "continuous on CPU, transformers on an accelerator (continuous is not yet measured there)",
                       ("auto", "continuous", "transformers", "vllm"), decides=OUTPUT)
    slots: int = opt(32, "continuous: sequences decoded together (a beam takes one slot each); a finished one's slot "
                         "takes the next prompt", ge=1, decides=ENGINE)
    prefill_tokens: int = opt(2048, "continuous: padded prompt tokens prefilled in one forward", ge=1, decides=ENGINE)
    output_vocab: str = opt("auto", "ids the output layer scores: full, or trimmed (the training data's ids stored with "
                                    "the checkpoint, the prompts' own, Hangul and short ASCII tokens; docs/BENCHMARKS.md "
                                    "has the measured effect); auto: trimmed where the checkpoint stores its ids "
                                    "(continuous and transformers engines)", ("auto", "trimmed", "full"), decides=OUTPUT)
    vocab_check_every: int = opt(32, "trimmed vocabulary: every N decode steps the full output layer checks whether a "
                                     "dropped id would have won (counted as vocab_escapes in the manifest; 0: never)",
                                 ge=0, decides=ENGINE)
    quantize: str = opt("auto", "base under an adapter: auto (4-bit when trained with QLoRA), 4bit, or none",
                        ("auto", "4bit", "none"), decides=OUTPUT)
    merge_lora: bool = opt(True, "fold the adapter into an unquantized base before generating (faster)", decides=OUTPUT)
    vllm_gpu_memory_utilization: float = opt(0.9, "vllm on a GPU: share of GPU memory it may take (weights + KV cache)",
                                             gt=0, le=1, decides=ENGINE)
    vllm_cpu_kv_cache_gb: int = opt(2, "vllm on a CPU: GiB of RAM for its KV cache (VLLM_CPU_KVCACHE_SPACE; a share "
                                       "of RAM as on a GPU would take most of the machine)", ge=1, decides=ENGINE)
    vllm_tensor_parallel_size: int = opt(1, "vllm on GPUs: how many GPUs one model is split across "
                                            "(tensor_parallel_size)", ge=1, decides=ENGINE)
    empty_fallback: str = opt("first_turn", "what replaces an empty output", ("first_turn", "placeholder"), decides=OUTPUT)
    cut_unfinished: bool = opt(True, "drop a last sentence without a full stop after complete ones (the length cap "
                                     "cut it; every reference ends its sentences with '.')", decides=OUTPUT)
    block_scripts: tuple[str, ...] = opt(BLOCKABLE_SCRIPTS, "scripts generation may not use (no reference "
                                         "has them), as bad_words_ids: any of han, kana, cyrillic; [] for none", decides=OUTPUT)
    predict_dev: bool = opt(True, "also predict the dev set (scored by the evaluate stage)")
    mbr: MbrConfig = sub(MbrConfig, decides=OUTPUT)
    ensemble_from: tuple[str, ...] = opt((), "other runs (names in paths.output_dir) whose dev predictions and "
                                             "submission join this run's as candidates; per fname the consensus wins", decides=OUTPUT)


@dataclass(frozen=True)
class RlConfig:
    """The rl stage: GRPO (TRL's GRPOTrainer) continuing the SFT adapter, rewarded by the competition's score."""

    enabled: bool = opt(False, "run the rl stage in runs without --stages (naming rl in --stages sets this true)")
    init_checkpoint: Optional[str] = opt(None, "adapter or model folder to start from (None: the SFT final_checkpoint)")
    data: str = opt("merged", "training rows: merged (what SFT trained on) or clean (the originals)", ("merged", "clean"))
    rows: Optional[int] = opt(None, "at most this many of those rows, drawn by seed (None: all)", ge=1)
    max_steps: int = opt(100, "GRPO optimizer steps", ge=1)
    prompts_per_step: int = opt(2, "dialogues per optimizer step, each with rl.num_generations completions", ge=1)
    num_generations: int = opt(4, "completions sampled per dialogue; advantages compare them within the group", ge=2)
    temperature: float = opt(0.9, "sampling temperature of the completions", gt=0)
    max_completion_length: Union[int, str] = opt("auto", "completion token cap: auto (the cap inference uses with "
                                                         "the starting checkpoint) or a number", ge=1)
    beta: float = opt(0.04, "KL weight against the starting adapter (0: no reference pass, faster, no KL guard)", ge=0)
    learning_rate: float = opt(5e-5, "learning rate of the LoRA weights (constant)", gt=0)
    rouge_weight: float = opt(1.0, "weight of final / 100 (mean ROUGE-1/2/L F1, evaluation.tokenizer) of the "
                                   "post-processed completion against the row's reference(s)", ge=0)
    length_weight: float = opt(0.5, "weight of the length guard: -(|words / reference words - 1| - tolerance)", ge=0)
    length_tolerance: float = opt(0.2, "relative word-count difference from the reference that costs nothing", ge=0)
    no_stop_weight: float = opt(1.0, "weight of the -1 for a completion that ends without a stop token", ge=0)
    fluency_weight: float = opt(0.0, "weight of the Kiwi guard: -(rl.min_kiwi_score - Kiwi score per morpheme) "
                                     "below that score, >= -1 (0: off, Kiwi not run)", ge=0)
    min_kiwi_score: float = opt(-8.0, "Kiwi score per morpheme the fluency guard starts at (real: >= -7.5)", le=0)
    eval_rows: int = opt(20, "dev rows summarised greedily by the SFT and the RL checkpoint, both scores in the "
                             "manifest and report (0: off)", ge=0)
    generation: str = opt("auto", "completions sampled by: auto (vLLM if installed and on CUDA, else transformers), "
                                  "transformers or vllm", ("auto", "transformers", "vllm"))
    logging_steps: int = opt(1, "log every N steps (reward, KL, completion length)", ge=1)
    save_steps: int = opt(10, "checkpoint every N steps (what --resume continues from)", ge=1)
    save_total_limit: int = opt(2, "keep at most N checkpoints", ge=1)
    extra: dict = opt({}, "extra arguments forwarded to TRL's GRPOConfig (e.g. loss_type, scale_rewards, top_p)")

TUNE_SPACE = {"num_beams": [1, 4], "length_penalty": [0.8, 1.0, 1.3], "repetition_penalty": [1.0, 1.15],
              "no_repeat_ngram_size": [0, 6]}


@dataclass(frozen=True)
class TuneConfig:
    """The tune stage: generation settings searched on a tuning part of dev the reported dev score never sees."""

    rows: int = opt(100, "dev rows set aside for tuning (the evaluate stage scores the other rows)", ge=2)
    budget: int = opt(800, "generated dialogues the whole search may cost", ge=2)
    search: str = opt("grid", "grid (every combination of tune.space) or random (tune.trials of them)",
                      ("grid", "random"))
    trials: int = opt(16, "settings drawn when tune.search=random", ge=1)
    space: dict = opt(TUNE_SPACE, "values to try per key: inference.* generation keys (num_beams, length_penalty, "
                                  "repetition_penalty, no_repeat_ngram_size, max_new_tokens, temperature, ...) and "
                                  "instruction (an index into prompt.instruction_variants)")
    keep: float = opt(0.5, "share of settings kept after each round of successive halving (rows double each round)",
                      gt=0, lt=1)
    min_rows: int = opt(10, "tuning rows every setting is scored on in the first round", ge=1)
    select: str = opt("confident", "confident (a setting replaces the baseline, the run's own setting, only when "
                      "its 95% paired bootstrap interval vs the baseline lies above 0) or best (the best final on the "
                      "most rows, baseline included)", ("confident", "best"))


@dataclass(frozen=True)
class EvaluationConfig:
    """ROUGE as the competition scores it."""

    tokenizer: str = opt("mecab", "mecab (python-mecab-ko morphemes of the raw text, as the leaderboard scores), "
                                  "kiwi (Kiwi morphemes, speaker tags kept whole) or whitespace (plain rouge 1.0.1)",
                         ("mecab", "kiwi", "whitespace"))
