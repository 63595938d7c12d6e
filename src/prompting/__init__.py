"""Prompts: the one prompt builder shared by training and inference, and few-shot selection."""
