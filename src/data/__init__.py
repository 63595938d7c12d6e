"""Data in: reading and checking tables, sources and column mapping, denoise and typo rules, the merge of originals and augmented rows."""
