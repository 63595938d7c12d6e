"""Shared helpers: user-facing errors, the speaker-tag and mask patterns, the one atomic writer and fingerprints, the one JSONL journal, logging, secrets."""
