"""SFT on the tiny model, CPU: QLoRA 4-bit, label masks, length budget, train/inference prompt identity."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from src.config import load_config
from src.utils.errors import UserError
from src.prompting.builder import PromptBuilder
from src.prompting.fewshot import ShotSelector
from src.train.final import TrainJob
from src.train.sft import encode_frame, check_training_rows


def make_cfg(synthetic: dict, *overrides: str):
    return load_config(None, [f"model.name={synthetic['model']}", "model.device=cpu", "prompt.num_fewshot=0",
                              "training.report_to=none", "training.logging_steps=1", *overrides])


@pytest.fixture(scope="module")
def tok(synthetic):
    from src.models.loading import load_tokenizer

    return load_tokenizer(str(synthetic["model"]), make_cfg(synthetic))


@pytest.mark.slow
def test_qlora_4bit_trains_the_adapter_and_leaves_the_base(synthetic, tok, tmp_path: Path) -> None:
    import bitsandbytes as bnb

    from src.train.options import collation
    from src.train.sft import build_trainer, load_for_training

    cfg = make_cfg(synthetic, "training.use_qlora=true", "training.max_steps=4", "training.learning_rate=1e-2",
                   "training.save_steps=100", "training.compute_dtype=float32")
    base_file = Path(synthetic["model"]) / "model.safetensors"
    base_sha = hashlib.sha256(base_file.read_bytes()).hexdigest()
    rows = encode_frame(PromptBuilder(tok, cfg.prompt), ShotSelector(synthetic["frames"]["train"], cfg.prompt, 0),
                        synthetic["frames"]["train"], cfg, False).rows
    model = load_for_training(cfg, str(synthetic["model"]), "cpu", torch.float32)
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in model.modules()), "the base is loaded in 4-bit"
    quantized = [(p, p.detach().clone()) for p in model.parameters() if p.dtype == torch.uint8]
    trainer = build_trainer(cfg, model, tok, rows, None, tmp_path, "cpu", torch.float32,
                            collation(cfg.training, [len(r["input_ids"]) for r in rows], "cpu"), [])
    trainable = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert {p.dtype for n, p in trainer.model.named_parameters() if p.requires_grad} == {torch.float32}, \
        "adapter weights are fp32 master weights, not TRL's bf16 cast"
    trainer.train()
    after = dict(trainer.model.named_parameters())
    assert any(not torch.equal(trainable[n], after[n].detach()) for n in trainable if "lora_B" in n)
    assert quantized and all(torch.equal(p.detach(), before) for p, before in quantized), "4-bit base weights never change"
    final = tmp_path / "final_checkpoint"
    trainer.save_model(str(final))
    TrainJob(tmp_path, False, {"seed": cfg.seed}).finalize(final, cfg, tok, [tok.decode(rows[0]["input_ids"])], None)
    for name in ("adapter_model.safetensors", "pipeline_config.yaml", "pipeline_fingerprint.json",
                 "pipeline_inference.json", "tokenizer_config.json"):
        assert (final / name).is_file(), name
    assert hashlib.sha256(base_file.read_bytes()).hexdigest() == base_sha


def test_labels_mask_the_prompt_and_end_with_the_stop_token(synthetic, tok) -> None:
    cfg = make_cfg(synthetic)
    builder = PromptBuilder(tok, cfg.prompt)
    df = synthetic["frames"]["train"].head(5)
    rows = encode_frame(builder, ShotSelector(df, cfg.prompt, 0), df, cfg, False).rows
    for row, summary in zip(rows, df["summary"]):
        completion = builder.completion_ids(summary)
        n_prompt = len(row["input_ids"]) - len(completion)
        assert row["labels"][:n_prompt] == [-100] * n_prompt
        assert row["labels"][n_prompt:] == row["input_ids"][n_prompt:] == completion
        assert row["labels"][-1] in builder.stop_token_ids
    check_training_rows(rows, builder.stop_token_ids, "train")


def test_check_training_rows_names_missing_stop_and_fully_masked_examples() -> None:
    rows = [{"input_ids": [5, 6, 7], "labels": [-100, 6, 9]}, {"input_ids": [5, 6], "labels": [-100, -100]}]
    with pytest.raises(UserError) as err:
        check_training_rows(rows, [9], "training set")
    text = "\n".join(err.value.problems)
    assert "1 example(s) have no label at all (first: #1)" in text
    assert "never train the stop token [9] (first: #1)" in text


@pytest.mark.parametrize("collate", ["training.padding_free=true", "training.packing=true", "training.padding_free=false"])
def test_overlong_dialogues_keep_header_and_summary_in_every_batch(synthetic, tok, tmp_path: Path, collate: str) -> None:
    """Every example of the batches of over-long dialogues keeps its generation header and its full summary."""
    from src.train.options import collation
    from src.train.sft import build_trainer, load_for_training

    cfg = make_cfg(synthetic, "prompt.max_prompt_tokens=160", "training.use_qlora=false", "training.max_steps=1", collate)
    builder = PromptBuilder(tok, cfg.prompt)
    df = synthetic["frames"]["train"].head(6).copy()
    df["dialogue"] = [d + "\n" + "\n".join(f"#Person{k % 2 + 1}#: 긴 대화가 {k}번째로 계속 이어지고 있어요." for k in range(40))
                      for d in df["dialogue"]]
    encoded = encode_frame(builder, ShotSelector(df, cfg.prompt, 0), df, cfg, False)
    assert encoded.trimmed == len(df)
    header = builder.encode_prompt("x").input_ids[-3:]
    coll = collation(cfg.training, [len(r["input_ids"]) for r in encoded.rows], "cpu")
    model = load_for_training(cfg, str(synthetic["model"]), "cpu", torch.float32)
    trainer = build_trainer(cfg, model, tok, encoded.rows, None, tmp_path, "cpu", torch.float32, coll, [])
    seen = set()
    for batch in trainer.get_train_dataloader():
        for example, target in split_examples(batch):
            summary = next(s for s in df["summary"] if example[-len(builder.completion_ids(s)):] == builder.completion_ids(s))
            completion = builder.completion_ids(summary)
            n_prompt = len(example) - len(completion)
            assert n_prompt <= 160 and example[n_prompt - 3:n_prompt] == header
            assert target[n_prompt:] == completion and set(target[:n_prompt]) == {-100}
            seen.add(tuple(example))
    assert len(seen) == len(set(tuple(r["input_ids"]) for r in encoded.rows))


def split_examples(batch: dict) -> list[tuple[list[int], list[int]]]:
    """(input ids, labels) of each example in a padded or a padding-free (position-id) batch."""
    if "position_ids" not in batch:  # right-padded rows
        sizes = batch["attention_mask"].sum(dim=1).tolist()
        return [(ids[:n], lab[:n]) for ids, lab, n in zip(batch["input_ids"].tolist(), batch["labels"].tolist(), sizes)]
    ids, labels, pos = batch["input_ids"][0].tolist(), batch["labels"][0].tolist(), batch["position_ids"][0].tolist()
    starts = [i for i, p in enumerate(pos) if p == 0] + [len(ids)]
    return [(ids[a:b], labels[a:b]) for a, b in zip(starts, starts[1:])]


class CaptureEngine:
    """Stands in for generation: records the prompt ids the Predictor would feed the model."""

    chunk_size = 0

    def __init__(self) -> None:
        self.prompts: list[list[int]] = []

    def generate(self, batch, gen, stop_ids, banned=()):
        self.prompts += [list(p) for p in batch]
        return [([], True) for _ in batch]


@pytest.mark.parametrize("selection", ["fixed", "random"])
def test_train_and_inference_prompts_are_identical_up_to_the_completion(synthetic, tok, selection: str) -> None:
    from src.inference.predictor import Predictor

    cfg = make_cfg(synthetic, "prompt.num_fewshot=2", f"prompt.fewshot_selection={selection}")
    builder = PromptBuilder(tok, cfg.prompt)
    pool, dev = synthetic["frames"]["train"], synthetic["frames"]["dev"]
    selector = ShotSelector(pool, cfg.prompt, cfg.seed)
    rows = encode_frame(builder, selector, dev, cfg, False).rows
    engine = CaptureEngine()
    predictor = Predictor(None, tok, PromptBuilder(tok, cfg.prompt), ShotSelector(pool, cfg.prompt, cfg.seed),
                          cfg.inference, "cpu", engine=engine)
    predictor.predict_batch(dev["dialogue"].tolist(), dev["fname"].tolist())
    for row, summary in zip(rows, dev["summary"]):
        prompt = row["input_ids"][: len(row["input_ids"]) - len(builder.completion_ids(summary))]
        assert prompt in engine.prompts
    assert len({tuple(p) for p in engine.prompts}) == len(dev)


def test_instruction_augmentation_renders_every_variant(synthetic, tok) -> None:
    cfg = make_cfg(synthetic, "training.instruction_augmentation=true")
    df = synthetic["frames"]["train"].head(4)
    encoded = encode_frame(PromptBuilder(tok, cfg.prompt), ShotSelector(df, cfg.prompt, 0), df, cfg, True)
    variants = cfg.prompt.instruction_variants
    assert len(variants) == 5 and len(encoded.rows) == 5 * len(df)
    texts = [tok.decode(r["input_ids"]) for r in encoded.rows[:5]]
    assert all(v in t for v, t in zip(variants, texts))


@pytest.mark.slow
def test_merge_adapter_writes_weights_that_match_the_adapter(synthetic, tok, tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from src.train.options import collation
    from src.train.sft import build_trainer, load_for_training, merge_adapter

    cfg = make_cfg(synthetic, "training.use_qlora=false", "training.max_steps=2", "training.learning_rate=1e-2",
                   "training.merge_adapter=true")
    df = synthetic["frames"]["train"].head(8)
    rows = encode_frame(PromptBuilder(tok, cfg.prompt), ShotSelector(df, cfg.prompt, 0), df, cfg, False).rows
    model = load_for_training(cfg, str(synthetic["model"]), "cpu", torch.float32)
    trainer = build_trainer(cfg, model, tok, rows, None, tmp_path, "cpu", torch.float32,
                            collation(cfg.training, [len(r["input_ids"]) for r in rows], "cpu"), [])
    trainer.train()
    final, job = tmp_path / "final_checkpoint", TrainJob(tmp_path, False, {"seed": cfg.seed})
    trainer.save_model(str(final))
    job.finalize(final, cfg, tok, [], None)
    merged_dir = merge_adapter(cfg, str(synthetic["model"]), final, job, tok, trainer)
    assert merged_dir == tmp_path / "final_merged" and not (merged_dir / "adapter_config.json").exists()
    ids = torch.tensor([rows[0]["input_ids"]])
    merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
    adapter = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(synthetic["model"]), str(final)).eval()
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, adapter(ids).logits, atol=1e-4)


def test_rouge_callback_scores_generated_dev_summaries_with_similar_shots(synthetic, tok) -> None:
    from types import SimpleNamespace

    from transformers import AutoModelForCausalLM

    from src.train.callbacks import RougeCallback, RougeSample

    cfg = make_cfg(synthetic, "prompt.num_fewshot=1", "prompt.fewshot_selection=similar", "inference.max_new_tokens=8")
    sample = RougeSample.from_frame(synthetic["frames"]["dev"], 4, cfg.seed, "whitespace")
    assert len(sample.fnames) == 4 and sample == RougeSample.from_frame(synthetic["frames"]["dev"], 4, cfg.seed, "whitespace")
    builder = PromptBuilder(tok, cfg.prompt)
    callback = RougeCallback(cfg.inference, sample, tok, builder, ShotSelector(synthetic["frames"]["train"], cfg.prompt, 0),
                             "cpu")
    logged: list = []
    callback.bind(logged.append)
    model = AutoModelForCausalLM.from_pretrained(synthetic["model"]).train()
    metrics = {"eval_loss": 1.0}
    callback.on_evaluate(None, SimpleNamespace(global_step=7), None, metrics=metrics, model=model)
    assert set(metrics) == {"eval_loss", "eval_rouge1", "eval_rouge2", "eval_rougeL", "eval_rouge_final"}
    assert 0 <= metrics["eval_rouge_final"] <= 100 and logged == [{k: v for k, v in metrics.items() if "rouge" in k}]
    assert model.training, "the callback gives the model back in training mode"


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_full_fine_tuning_keeps_fp32_master_weights_under_autocast(synthetic, dtype) -> None:
    from src.train.sft import load_for_training

    cfg = make_cfg(synthetic, "training.use_lora=false", "training.use_qlora=false")
    model = load_for_training(cfg, str(synthetic["model"]), "cpu", dtype)
    assert {p.dtype for p in model.parameters()} == {torch.float32}, "AdamW on bf16/fp16 weights loses small updates"
    lora = load_for_training(make_cfg(synthetic, "training.use_qlora=false"), str(synthetic["model"]), "cpu", dtype)
    assert {p.dtype for p in lora.parameters()} == {dtype}, "a LoRA base stays in the compute dtype (frozen)"
    pure = load_for_training(make_cfg(synthetic, "training.use_lora=false", "training.use_qlora=false",
                                      "model.torch_dtype=bfloat16"), str(synthetic["model"]), "cpu", torch.bfloat16)
    assert {p.dtype for p in pure.parameters()} == {torch.bfloat16}, "pure bf16 when the config asks for it"
