"""Korean dialogue summarization pipeline (run with ``python -m src.main``)."""
