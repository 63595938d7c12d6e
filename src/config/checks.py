"""Cross-key rules of the config: what no single key's type, choices or bounds can express.

Single-key checks (types, choices, finite numbers, bounds) happen while the tree is built
(``src.config.loading``); the rules here see the whole tree. Every rule is config-only (no file,
model or package is looked at), so all of them run in milliseconds, before any stage, and every
problem is reported at once, one line each naming the keys and the fix. What depends on the
machine or on installed packages is a stage's own ``check`` (``src.stages``).
"""
from __future__ import annotations

from typing import Callable

from src.config.schema import BLOCKABLE_SCRIPTS, SPLITS, Config
from src.utils.errors import UserError

ROUGE_METRICS = ("rouge_final", "rouge1", "rouge2", "rougeL")


def training_problems(cfg: Config) -> list[str]:
    """QLoRA needs LoRA; something to train; a ROUGE metric needs ROUGE during training."""
    t, problems = cfg.training, []
    if t.use_qlora and not t.use_lora and cfg.model.type == "causal":
        problems.append("config key 'training.use_qlora' is true but 'training.use_lora' is false: "
                        "QLoRA trains a LoRA adapter; set training.use_lora=true or training.use_qlora=false")
    if t.max_steps == 0 or (t.max_steps < 0 and t.num_train_epochs <= 0):
        problems.append("config keys 'training.max_steps'/'training.num_train_epochs': nothing to train; "
                        "set max_steps > 0 or num_train_epochs > 0")
    if t.metric_for_best_model in ROUGE_METRICS and t.eval_rouge_samples <= 0 and cfg.model.type == "causal":
        problems.append(f"config key 'training.metric_for_best_model' = {t.metric_for_best_model!r} needs ROUGE "
                        "during training: set training.eval_rouge_samples > 0 (e.g. 100) or use eval_loss")
    return problems


def inference_problems(cfg: Config) -> list[str]:
    """Sampling settings, and what the vLLM backend cannot do."""
    inf, problems = cfg.inference, []
    if len(inf.mbr.weights) != 3 or sum(inf.mbr.weights) <= 0:
        problems.append(f"config key 'inference.mbr.weights' = {list(inf.mbr.weights)}: give three non-negative "
                        "weights (ROUGE-1, ROUGE-2, ROUGE-L) with a positive sum, e.g. [1, 1, 1]")
    if inf.mbr.num_candidates > 1 and inf.mbr.from_tune > 0 and inf.backend == "vllm":
        problems.append(f"config key 'inference.mbr.from_tune' = {inf.mbr.from_tune}: the tune stage's settings may "
                        "use beams or n-gram blocking, which the vllm backend lacks; set inference.mbr.from_tune=0 "
                        "(sampled candidates only) or inference.backend=transformers")
    unknown = [s for s in inf.block_scripts if s not in BLOCKABLE_SCRIPTS]
    if unknown:
        problems.append(f"config key 'inference.block_scripts' = {list(inf.block_scripts)}: unknown script(s) "
                        f"{', '.join(unknown)}; choose from {', '.join(BLOCKABLE_SCRIPTS)} (or [] for none)")
    if cfg.model.type == "seq2seq" and inf.backend in ("continuous", "vllm"):
        problems.append(f"config key 'inference.backend' = {inf.backend!r} does not apply to model.type=seq2seq "
                        "(those engines serve causal models; an encoder-decoder generates with model.generate, the "
                        "seq2seq engine); set inference.backend=auto")
    elif inf.backend == "vllm":
        if inf.num_beams > 1:
            problems.append(f"config key 'inference.num_beams' = {inf.num_beams}: the vllm backend decodes greedily "
                            "or samples; set inference.num_beams=1 or inference.backend=transformers")
        if inf.no_repeat_ngram_size:
            problems.append(f"config key 'inference.no_repeat_ngram_size' = {inf.no_repeat_ngram_size}: not "
                            "supported by the vllm backend; set it to 0 or inference.backend=transformers")
    return problems


def augmentation_problems(cfg: Config) -> list[str]:
    """Length-ratio order, and a local generator that can chat."""
    a, problems = cfg.augmentation, []
    if a.min_length_ratio >= a.max_length_ratio:
        problems.append(f"config keys 'augmentation.min_length_ratio' = {a.min_length_ratio} >= "
                        f"'augmentation.max_length_ratio' = {a.max_length_ratio}: no paraphrase can pass; "
                        "make the minimum smaller than the maximum")
    wants_llm = a.num_paraphrase > 0 or a.num_synthetic > 0
    if (a.backend == "transformers" and cfg.model.type == "seq2seq" and not a.local_model
            and cfg.model.name != "tiny-debug" and wants_llm):
        problems.append("config key 'augmentation.local_model' is unset but model.type=seq2seq cannot chat: "
                        "name a causal chat model for augmentation.backend=transformers, or use backend=api")
    return problems


def data_problems(cfg: Config) -> list[str]:
    """Settings of ``data.*`` that cannot work, found without touching any file."""
    d, problems = cfg.data, []
    for split in SPLITS:
        hub = getattr(d.hub, split)
        if hub.path is None and (hub.data_files or hub.name or hub.data_dir):
            problems.append(f"config key 'data.hub.{split}' has settings but no path: set data.hub.{split}.path "
                            "(a hub id, a dataset folder, or json/csv/parquet with data_files)")
        if hub.streaming and hub.fraction < 1:
            problems.append(f"config key 'data.hub.{split}.fraction' = {hub.fraction}: a streamed dataset has no "
                            f"known length; use data.max_rows.{split} instead")
        if not getattr(d, f"{split}_file") and hub.path is None:
            problems.append(f"config keys 'data.{split}_file' and 'data.hub.{split}.path': the {split} split "
                            "has no source; set one of them")
    n_train = len(d.train_file) + (d.hub.train.path is not None)
    if d.train_weights and len(d.train_weights) != n_train:
        problems.append(f"config key 'data.train_weights' has {len(d.train_weights)} values for {n_train} training "
                        "sources (data.train_file entries, then data.hub.train); give one per source or none")
    if 0 < d.max_dialogue_chars < d.min_dialogue_chars:
        problems.append(f"config keys 'data.min_dialogue_chars' = {d.min_dialogue_chars} > 'data.max_dialogue_chars' "
                        f"= {d.max_dialogue_chars}: no dialogue can pass; lower the minimum or raise the maximum")
    return problems


def rl_problems(cfg: Config) -> list[str]:
    """A reward with something to optimise."""
    r = cfg.rl
    if r.rouge_weight + r.length_weight + r.no_stop_weight + r.fluency_weight > 0:
        return []
    return ["config keys 'rl.rouge_weight', 'rl.length_weight', 'rl.no_stop_weight' and 'rl.fluency_weight' are all 0: "
            "GRPO would have no reward to follow; give rl.rouge_weight a positive weight (e.g. 1)"]


RULES: tuple[Callable[[Config], list[str]], ...] = (data_problems, training_problems, inference_problems,
                                                    augmentation_problems, rl_problems)


def config_problems(cfg: Config) -> list[str]:
    """Every cross-key problem of ``cfg``, one line each."""
    return [line for rule in RULES for line in rule(cfg)]


def check_config(cfg: Config) -> None:
    """Raise one UserError listing every cross-key problem."""
    problems = config_problems(cfg)
    if problems:
        raise UserError(*problems)
