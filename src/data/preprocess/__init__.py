"""Preprocessing rules: table-driven denoising and typo fixes applied to dialogues and summaries."""
