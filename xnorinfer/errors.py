"""Exceptions users see when a model cannot be loaded or run, or a backend cannot be used."""


class ModelError(ValueError):
    """A model file is malformed, hostile, or uses something xnorinfer does not support."""


class BackendError(RuntimeError):
    """The requested backend or ISA path cannot be used here."""


class CLibraryMissing(BackendError):
    """The compiled extension was not built or cannot be imported."""
