"""Models: resolving model.name, loading models and tokenizers, checkpoints, the tiny debug models, the seq2seq model."""
