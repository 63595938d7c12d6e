"""Shared helpers: user-facing errors, the speaker-tag, mask and script patterns, the near-duplicate index, the one atomic writer and fingerprints, the one JSONL journal, logging, secrets."""
