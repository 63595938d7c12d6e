"""training.label_logits_only: the output layer at labelled positions only gives TRL's loss, gradients and metrics."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from src.train import label_logits


def tiny_llama() -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False))


def tiny_gemma3() -> torch.nn.Module:
    """Gemma 3's quirks at toy size: tied embeddings, sliding + full layers, and a final-logit softcap."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    return Gemma3ForCausalLM(Gemma3TextConfig(
        vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, head_dim=16, sliding_window=4, layer_types=["sliding_attention", "full_attention"],
        final_logit_softcapping=30.0, tie_word_embeddings=True))


def with_lora_and_fused_head(model: torch.nn.Module) -> torch.nn.Module:
    """What SFTTrainer builds: PEFT LoRA on all linear layers, TRL's fused head on the model underneath."""
    from peft import LoraConfig, get_peft_model
    from trl.trainer import add_fused_lm_head

    add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", lora_dropout=0.0))
    for name, param in peft.named_parameters():
        if "lora_B" in name:  # non-zero B, so the adapter's gradients flow through every path
            torch.nn.init.normal_(param, std=0.02)
    return peft


def padded_batch() -> dict[str, torch.Tensor]:
    """Two right-padded examples of different prompt and completion lengths."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 300, (2, 12), generator=g)
    labels = ids.clone()
    labels[0, :7], labels[1, :4] = -100, -100  # prompts
    labels[1, 10:] = -100  # padding
    mask = torch.ones_like(ids)
    mask[1, 10:] = 0
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def padding_free_batch() -> dict[str, torch.Tensor]:
    """Three examples end to end in one row, position ids restarting per example (TRL's padding-free collation)."""
    g = torch.Generator().manual_seed(2)
    lengths, prompts = [7, 9, 6], [4, 6, 2]
    ids = torch.randint(5, 300, (1, sum(lengths)), generator=g)
    labels = ids.clone()
    position_ids, start = [], 0
    for n, p in zip(lengths, prompts):
        labels[0, start:start + p] = -100
        position_ids += list(range(n))
        start += n
    return {"input_ids": ids, "position_ids": torch.tensor([position_ids]), "labels": labels}


def loss_and_grads(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, object, dict]:
    model.zero_grad()
    out = model(**batch, use_cache=False, fused_lm_head=True)
    per_token = -out.log_probs
    loss = per_token.sum() / out.label_mask.sum()  # as SFTTrainer.compute_loss reduces it
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    return loss.detach(), out, grads


@pytest.mark.parametrize("build", [tiny_llama, tiny_gemma3], ids=["llama", "gemma3-softcap-tied"])
@pytest.mark.parametrize("make_batch", [padded_batch, padding_free_batch], ids=["padded", "padding-free"])
def test_same_loss_gradients_and_metrics_as_trl_fused_head(build, make_batch) -> None:
    model = with_lora_and_fused_head(build())
    batch = make_batch()
    loss_trl, out_trl, grads_trl = loss_and_grads(model, batch)
    assert label_logits.install(model)
    loss_ours, out_ours, grads_ours = loss_and_grads(model, batch)
    assert abs(loss_ours.item() - loss_trl.item()) < 1e-5
    assert grads_trl and grads_ours.keys() == grads_trl.keys()
    for name in grads_trl:
        torch.testing.assert_close(grads_ours[name], grads_trl[name], rtol=1e-4, atol=1e-6, msg=name)
    assert torch.equal(out_ours.label_mask, out_trl.label_mask)
    torch.testing.assert_close(out_ours.entropy, out_trl.entropy, rtol=1e-4, atol=1e-5)
    assert torch.equal(out_ours.is_top1, out_trl.is_top1)


def test_the_head_sees_only_labelled_positions_and_generation_is_unchanged() -> None:
    model = with_lora_and_fused_head(tiny_gemma3())
    batch = padding_free_batch()
    prompt = batch["input_ids"][:, :5]
    before = model.generate(input_ids=prompt, max_new_tokens=6, do_sample=False)
    label_logits.install(model)
    rows: list[int] = []
    head = model.get_base_model().get_output_embeddings()
    hook = head.register_forward_hook(lambda mod, args, out: rows.append(args[0].reshape(-1, args[0].shape[-1]).shape[0]))
    model(**batch, use_cache=False, fused_lm_head=True)
    hook.remove()
    assert rows == [int((batch["labels"][:, 1:] != -100).sum())], "one projection, of the labelled positions only"
    assert torch.equal(model.generate(input_ids=prompt, max_new_tokens=6, do_sample=False), before)


def test_a_batch_without_labels_gives_a_differentiable_zero() -> None:
    model = with_lora_and_fused_head(tiny_llama())
    label_logits.install(model)
    batch = padded_batch()
    batch["labels"] = torch.full_like(batch["labels"], -100)
    out = model(**batch, use_cache=False, fused_lm_head=True)
    out.loss.backward()
    assert out.loss.item() == 0.0 and not out.label_mask.any()


def test_sft_trainer_trains_through_the_restricted_head(synthetic, tmp_path: Path) -> None:
    """The switch is on by default and the trainer's forward goes through it (a no-op wrapper would fail this)."""
    from src.config import load_config
    from src.prompting.builder import PromptBuilder
    from src.prompting.fewshot import ShotSelector
    from src.models.loading import load_tokenizer
    from src.train.options import collation
    from src.train.sft import build_trainer, encode_frame, load_for_training

    cfg = load_config(None, [f"model.name={synthetic['model']}", "model.device=cpu", "prompt.num_fewshot=0",
                             "training.report_to=none", "training.use_qlora=false", "training.max_steps=2",
                             "training.save_steps=100", "training.compute_dtype=float32"])
    assert cfg.training.label_logits_only
    tok = load_tokenizer(str(synthetic["model"]), cfg)
    frame = synthetic["frames"]["train"].head(8)
    rows = encode_frame(PromptBuilder(tok, cfg.prompt), ShotSelector(frame, cfg.prompt, 0), frame, cfg, False).rows
    model = load_for_training(cfg, str(synthetic["model"]), "cpu", torch.float32)
    trainer = build_trainer(cfg, model, tok, rows, None, tmp_path, "cpu", torch.float32,
                            collation(cfg.training, [len(r["input_ids"]) for r in rows], "cpu"), [])
    seen: list[int] = []
    head = trainer.model.get_base_model().get_output_embeddings()
    head.register_forward_hook(lambda mod, args, out: seen.append(args[0].reshape(-1, args[0].shape[-1]).shape[0]))
    trainer.train()
    labelled = [sum(t != -100 for t in r["labels"][1:]) for r in rows]
    assert seen and max(seen) <= max(labelled), "the head projected prompt positions too"
    assert trainer.state.log_history[-1]["train_loss"] > 0
