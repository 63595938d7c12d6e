"""Small shared helpers: atomic writes, fingerprints."""
