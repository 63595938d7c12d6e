"""GRPO in process on a tiny model: TRL's generation keeps to the builder's stop ids and the banned ids; LoRA moves."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from src.config import load_config
from src.train.grpo import train_grpo
from src.train.grpo_setup import RlJob

pytestmark = pytest.mark.slow  # a model, two GRPO steps and two small generation runs: about 20 s on 2 cores


def sft_adapter(model_dir: Path, out: Path) -> Path:
    """A LoRA adapter on the tiny model, saved as the train stage saves one (weights + tokenizer)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir),
                           LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"))
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(out)
    return out


def test_two_grpo_steps_respect_stop_and_banned_ids_and_move_only_the_adapter(synthetic: dict, tmp_path: Path,
                                                                              monkeypatch) -> None:
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    import src.inference.constraints as constraints

    tokenizer = AutoTokenizer.from_pretrained(synthetic["model"])
    # ban every second ordinary id: a random model would sample plenty of them if the ban did not reach TRL
    special = set(tokenizer.all_special_ids)
    banned = tuple(i for i in range(0, len(tokenizer), 2) if i not in special)
    monkeypatch.setattr(constraints, "blocked_token_ids", lambda tok, scripts: banned)
    init = sft_adapter(synthetic["model"], tmp_path / "sft")
    cfg = load_config(None, ["model.device=cpu", "model.name=" + str(synthetic["model"]), "training.use_qlora=false",
                             "prompt.num_fewshot=0", "rl.max_steps=2", "rl.num_generations=2", "rl.prompts_per_step=2",
                             "rl.max_completion_length=16", "rl.learning_rate=5e-2", "rl.save_steps=1",
                             "rl.eval_rows=2", "training.report_to=none"])
    job = RlJob(tmp_path / "rl", False, {"test": 1}, init, str(synthetic["model"]), report_dir=tmp_path)
    fields = train_grpo(cfg, synthetic["frames"]["train"].head(8), synthetic["frames"]["dev"], job)
    audit = fields["audit"]
    assert audit["completions"] == 8 and audit["banned_tokens"] == 0 and audit["stop_before_end"] == 0
    assert fields["global_step"] == 2 and fields["banned_ids"] == len(banned) and fields["rows"] == 8
    final = tmp_path / "rl" / "final_checkpoint"
    assert not (final / "ref").exists(), "TRL's reference copy of the adapter is not part of the result"
    before, after = (load_file(str(p / "adapter_model.safetensors")) for p in (init, final))
    assert before.keys() == after.keys() and any((before[k] != after[k]).any() for k in before)
    assert (tmp_path / "rl_log.csv").is_file() and (tmp_path / "rl_curves.png").stat().st_size > 1000
    log = pd.read_csv(tmp_path / "rl_log.csv")
    assert log["step"].dropna().astype(int).tolist()[:2] == [1, 2] and {"reward", "reward_std", "kl"} <= set(log)
    assert set(fields["dev"]) >= {"sft", "rl", "rows"} and fields["dev"]["rows"] == 2
