"""Augmentation: the LLM clients and their journal, paraphrase and synthetic requests, speaker swap, validators, near-duplicate index."""
