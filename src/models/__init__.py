"""Model resolution, loading and the tiny debug models."""
