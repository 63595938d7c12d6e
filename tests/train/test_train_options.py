"""training.* mapped onto the installed TRL/transformers: names, eval/best-model plan, collation, tracking."""
from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import pytest
import torch

from src.config import load_config
from src.utils.errors import UserError
from src.train import options
from src.train.options import (Collation, bfd_rows, checkpointing_arguments, collation, eval_arguments, optimizer_name,
                               sft_arguments)

PADDED = Collation("padded", 512, 4, 4)


def cfg_with(*overrides: str):
    return load_config(None, ["model.device=cpu", "training.report_to=none", *overrides])


def test_every_argument_is_a_field_of_the_installed_sftconfig(tmp_path: Path) -> None:
    from trl import SFTConfig

    cfg = cfg_with("training.eval_rouge_samples=8", "training.early_stopping_patience=2", "training.save_steps=50")
    kwargs = sft_arguments(cfg, tmp_path, "cpu", torch.float32, True, Collation("packed", 900, 1, 6, 2.8))
    fields = {f.name for f in dataclasses.fields(SFTConfig)}
    assert set(kwargs) <= fields
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        args = SFTConfig(**kwargs)
    assert not [w for w in caught if "checkpointing" in str(w.message)], "no deprecated argument names of ours"
    assert args.warmup_steps == pytest.approx(0.03) and args.get_warmup_steps(1000) == 30
    assert args.optim == "adamw_torch" and args.lr_scheduler_type == "cosine" and args.max_grad_norm == 1.0
    assert args.packing and args.packing_strategy == "bfd" and args.padding_free is False and args.max_length == 900
    assert args.per_device_train_batch_size == 1 and args.gradient_accumulation_steps == 6
    assert args.load_best_model_at_end and args.metric_for_best_model == "rouge_final" and args.greater_is_better
    assert args.eval_steps == 50 and args.save_steps == 50 and args.report_to == []
    assert not args.gradient_checkpointing and not args.bf16 and not args.fp16


@pytest.mark.parametrize("setting, bf16, fp16", [("bfloat16", True, False), ("float16", False, True), ("float32", False, False)])
def test_one_compute_dtype_for_qlora_and_mixed_precision(tmp_path: Path, setting: str, bf16: bool, fp16: bool) -> None:
    from src.models.device import compute_dtype
    from src.models.loading import quantization_config

    cfg = cfg_with(f"training.compute_dtype={setting}")
    dtype = compute_dtype(cfg.training.compute_dtype, "cuda")
    kwargs = sft_arguments(cfg, tmp_path, "cuda", dtype, False, PADDED)
    assert (kwargs["bf16"], kwargs["fp16"]) == (bf16, fp16)
    assert quantization_config(cfg, dtype).bnb_4bit_compute_dtype == dtype
    assert kwargs["optim"] == "paged_adamw_8bit" and kwargs[next(iter(checkpointing_arguments(True)))]


def test_eval_plan_defaults_and_fixes(caplog) -> None:
    t = cfg_with().training
    assert eval_arguments(t, False) == {"eval_strategy": "no"}
    plan = eval_arguments(t, True)
    assert plan["eval_steps"] == t.save_steps and plan["metric_for_best_model"] == "eval_loss"
    assert plan["greater_is_better"] is False
    odd = dataclasses.replace(t, eval_steps=15, save_steps=10)
    assert eval_arguments(odd, True)["eval_steps"] == 10 and "not a multiple" in caplog.text
    assert eval_arguments(dataclasses.replace(t, eval_steps=5, save_steps=10), True)["eval_steps"] == 5
    with pytest.raises(UserError, match="training.eval_rouge_samples"):  # a config rule, before anything runs
        cfg_with("training.metric_for_best_model=rouge_final")


@pytest.mark.parametrize("mode", ["training.packing=true", "training.padding_free=false"])
def test_eval_rows_are_never_cut_by_the_training_row_length(mode: str) -> None:
    """TRL cuts every row to max_length: it must cover the longest eval row, not only the longest training one."""
    t = cfg_with(mode).training
    assert collation(t, [200, 300], "cpu", eval_lengths=[150, 720]).max_length == 720
    assert collation(t, [200, 800], "cpu", eval_lengths=[150, 720]).max_length == 800


def test_unknown_extra_argument_names_the_key(tmp_path: Path) -> None:
    cfg = cfg_with("training.extra={warmup_ratio: 0.1}")
    with pytest.raises(UserError, match="training.extra.warmup_ratio"):
        sft_arguments(cfg, tmp_path, "cpu", torch.float32, False, PADDED)
    ok = cfg_with("training.extra={dataloader_num_workers: 2}")
    assert sft_arguments(ok, tmp_path, "cpu", torch.float32, False, PADDED)["dataloader_num_workers"] == 2


def test_group_by_length_maps_to_the_sampling_strategy(tmp_path: Path) -> None:
    cfg = cfg_with("training.group_by_length=true", "training.padding_free=false")
    assert sft_arguments(cfg, tmp_path, "cpu", torch.float32, False, PADDED)["train_sampling_strategy"] == "group_by_length"


def test_optimizer_choice() -> None:
    t = cfg_with().training
    assert optimizer_name(t, "cuda") == "paged_adamw_8bit" and optimizer_name(t, "cpu") == "adamw_torch"
    assert optimizer_name(dataclasses.replace(t, optim="paged_adamw_32bit"), "cpu") == "adamw_torch"
    assert optimizer_name(dataclasses.replace(t, optim="adafactor"), "cpu") == "adafactor"


def test_padding_free_by_default_with_the_same_examples_per_step(tmp_path: Path) -> None:
    from trl import SFTConfig

    cfg = cfg_with("training.per_device_train_batch_size=4", "training.gradient_accumulation_steps=4")
    cpu, gpu = collation(cfg.training, [300, 900], "cpu"), collation(cfg.training, [300, 900], "cuda")
    assert (cpu.mode, cpu.max_length, cpu.rows_per_batch, cpu.accumulation) == ("padding_free", None, 1, 16)
    assert (gpu.rows_per_batch, gpu.accumulation) == (4, 4)
    args = SFTConfig(**sft_arguments(cfg, tmp_path, "cpu", torch.float32, False, cpu))
    assert args.padding_free and not args.packing and args.max_length is None
    assert args.per_device_train_batch_size * args.gradient_accumulation_steps == 16


def test_packed_collation_keeps_the_effective_batch() -> None:
    assert bfd_rows([6, 5, 4, 3, 2], 10) == 2 and bfd_rows([10, 10, 1], 10) == 3
    t = cfg_with("training.per_device_train_batch_size=4", "training.gradient_accumulation_steps=4",
                 "training.packing=true").training
    lengths = [300] * 90 + [900] * 10  # three short examples fill a 900-token row
    cpu, gpu = collation(t, lengths, "cpu"), collation(t, lengths, "cuda")
    assert cpu.mode == gpu.mode == "packed"
    assert cpu.max_length == gpu.max_length == 900 and cpu.examples_per_row == pytest.approx(100 / 40)
    assert cpu.rows_per_batch == 1 and cpu.accumulation == round(16 / 2.5)
    assert gpu.rows_per_batch == 2 and gpu.accumulation == round(16 / 5)
    padded = collation(dataclasses.replace(t, packing=False, padding_free=False), lengths, "cpu")
    assert (padded.rows_per_batch, padded.accumulation, padded.max_length) == (4, 4, 900)


def test_the_trainer_reports_to_every_tracker_named(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert options.report_to(cfg_with("training.report_to=[wandb,tensorboard]"), tmp_path) == ["wandb", "tensorboard"]
    assert options.report_to(cfg_with("training.report_to=none"), tmp_path) == []
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert options.report_to(cfg_with("training.report_to=wandb"), tmp_path) == []


@pytest.mark.parametrize("override, reaches", [
    ("training.optim=adafactor", ("optim", "adafactor")),
    ("training.optim=adamw_torch_fused", ("optim", "adamw_torch_fused")),
    ("training.lr_scheduler_type=cosine_with_min_lr", ("lr_scheduler_type", "cosine_with_min_lr")),
    ("training.lr_scheduler_type=warmup_stable_decay", ("lr_scheduler_type", "warmup_stable_decay")),
    ("training.weight_decay=0.1", ("weight_decay", 0.1)),
    ("training.max_grad_norm=0.3", ("max_grad_norm", 0.3)),
    ("training.neftune_noise_alpha=5", ("neftune_noise_alpha", 5.0)),
    ("training.logging_steps=7", ("logging_steps", 7)),
    ("seed=7", ("seed", 7)),
])
def test_option_families_reach_the_trainer(tmp_path: Path, override: str, reaches: tuple) -> None:
    from trl import SFTConfig

    cfg = cfg_with(override, "training.lr_scheduler_kwargs={min_lr_rate: 0.1}")
    assert options.check_trainer_options(cfg, "cpu") == []
    kwargs = sft_arguments(cfg, tmp_path, "cpu", torch.float32, False, PADDED)
    args = SFTConfig(**kwargs)
    key, value = reaches
    assert getattr(args, key) == value
    assert args.lr_scheduler_kwargs == {"min_lr_rate": 0.1}


@pytest.mark.parametrize("override, fragment", [
    ("training.optim=adamw_torchh", "did you mean 'adamw_torch'"),
    ("training.lr_scheduler_type=cosin", "'training.lr_scheduler_type' = 'cosin'"),
    ("training.compute_dtype=float16", "fp16 mixed precision needs CUDA"),
    ("training.extra={learning_rat: 1}", "training.extra.learning_rat"),
])
def test_bad_trainer_options_fail_with_the_valid_list(override: str, fragment: str) -> None:
    problems = options.check_trainer_options(cfg_with(override), "cpu")
    assert len(problems) == 1 and fragment in problems[0]
    if "optim" in override:
        assert "adafactor" in problems[0]  # the valid names are listed


def test_lora_and_quantization_options_reach_peft_and_bnb() -> None:
    from src.models.loading import quantization_config

    cfg = cfg_with("training.lora.r=4", "training.lora.alpha=8", "training.lora.dropout=0.1", "training.lora.bias=lora_only",
                   "training.lora.use_dora=true", "training.lora.use_rslora=true", "training.lora.target_modules=q_proj,v_proj",
                   "training.lora.modules_to_save=lm_head", "training.quantization=fp4",
                   "training.bnb_4bit_use_double_quant=false")
    lc = options.peft_config(cfg)
    assert (lc.r, lc.lora_alpha, lc.lora_dropout, lc.bias, lc.use_dora, lc.use_rslora) == (4, 8, 0.1, "lora_only", True, True)
    assert set(lc.target_modules) == {"q_proj", "v_proj"} and list(lc.modules_to_save) == ["lm_head"]
    q = quantization_config(cfg, torch.float32)
    assert q.bnb_4bit_quant_type == "fp4" and q.bnb_4bit_use_double_quant is False
    assert quantization_config(cfg_with("training.quantization=int8"), torch.float32).load_in_8bit
