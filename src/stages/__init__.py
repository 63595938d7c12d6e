"""The pipeline stages, one module each, in the order ``src.pipeline.STAGES`` runs them (see its docstring)."""
