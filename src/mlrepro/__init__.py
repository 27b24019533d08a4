"""mlrepro: classic machine-learning write-ups as fast, tested, reusable software."""

__version__ = "0.1.0"
