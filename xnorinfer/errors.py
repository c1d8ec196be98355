"""Exceptions users see when a model cannot be loaded or run."""


class ModelError(ValueError):
    """A model file is malformed, hostile, or uses something xnorinfer does not support."""
