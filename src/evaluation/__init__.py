"""Competition scoring: ROUGE-1/2/L F1 on Mecab morphemes (default), Kiwi morphemes or whitespace tokens.

Used by the evaluate stage, by training-time evaluation and by ``python -m src.evaluate``.
"""
from src.evaluation.files import evaluate_files, read_scored_csv
from src.evaluation.morphemes import DEFAULT_TOKENIZER, TOKENIZERS, mecab_tokens, morpheme_tokens, prepare_texts
from src.evaluation.report import write_report
from src.evaluation.rouge_compat import rouge_f1
from src.evaluation.scoring import score_frames, score_rows, score_texts, summarize

__all__ = [
    "DEFAULT_TOKENIZER",
    "TOKENIZERS",
    "evaluate_files",
    "mecab_tokens",
    "morpheme_tokens",
    "prepare_texts",
    "read_scored_csv",
    "rouge_f1",
    "score_frames",
    "score_rows",
    "score_texts",
    "summarize",
    "write_report",
]
