"""Training: TRL SFTTrainer for causal models (QLoRA, LoRA or full), Seq2SeqTrainer for KoBART-style models, their options and callbacks."""
