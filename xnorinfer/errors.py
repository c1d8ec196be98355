"""Exceptions users see when a model cannot be loaded or run, or a backend cannot be used."""


class ModelError(ValueError):
    """A model file is malformed, hostile, or uses something xnorinfer does not support."""


class BackendError(RuntimeError):
    """The requested backend or ISA path cannot be used here."""


class CLibraryMissing(BackendError):
    """The compiled extension was not built or cannot be imported."""


class MissingDependency(ImportError):
    """An optional package a feature needs is not installed.  The message says which extra installs it,
    e.g. `reading .tflite files needs the optional package 'tflite': pip install "xnorinfer[tflite]"`.
    An ImportError, so code that catches ImportError keeps working."""

    def __init__(self, package, purpose, extra=None, install=None):
        self.package, self.purpose, self.extra = package, purpose, extra
        install = install or (f'pip install "xnorinfer[{extra}]"' if extra else f"pip install {package}")
        super().__init__(f"{purpose} needs the optional package {package!r}: {install}", name=package)


def import_optional(module, purpose, extra=None, *, also=(), pip_name=None, install=None):
    """Import and return `module`, or raise MissingDependency if it is not installed.  `also` lists the
    other top-level modules the same extra provides (a dependency of `module` that is missing counts as
    missing from that extra); `pip_name` is the distribution's name when it differs from the module's.
    An ImportError of anything else (a package that is installed but broken) propagates unchanged."""
    import importlib
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        ours = {m.partition(".")[0] for m in (module, *also)}
        if missing not in ours:
            raise
        if missing == module.partition(".")[0] and pip_name:
            missing = pip_name
        raise MissingDependency(missing, purpose, extra, install) from exc
