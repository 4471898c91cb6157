"""The inference service: HTTP in, the exported SavedModel, JSON out. Never imports training/."""

__version__ = "0.1.0"
