"""Inference: generation engines (transformers, vLLM), the causal and seq2seq predictors, batching, post-processing, the infer stage's work."""
