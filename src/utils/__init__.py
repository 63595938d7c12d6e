"""Shared helpers: the one atomic writer and fingerprints, the one JSONL journal, logging, secrets."""
