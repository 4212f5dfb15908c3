"""Evaluation metrics. Submodules add their names here."""

__all__: list[str] = []
