"""Augmentation: the LLM clients and their journal, paraphrase and synthetic requests, speaker swap, validators (the near-duplicate index is ``src.utils.neardup``)."""
