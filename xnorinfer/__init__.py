"""xnorinfer: fast CPU inference for binary neural networks.

Bit convention: +-1 values are packed 64 to a uint64 along the last axis; element 64*j + i of a row is
bit i of word j; bit 1 means -1, bit 0 means +1; x < 0 packs to -1, everything else (0, -0.0) to +1.
"""
from importlib.metadata import PackageNotFoundError, version as _dist_version
from typing import TYPE_CHECKING, Any

from .errors import BackendError, ModelError
from .kernels import backend_info, bgemm, pack, unpack
from .options import (ExecutionMode, ExecutionOrder, GraphOptimizationLevel, SessionOptions, get_available_providers,
                      get_device)

try:  # pyproject.toml's version is the one source: read back from the installed package's metadata
    __version__: str = _dist_version("xnorinfer")
except PackageNotFoundError:  # a source tree on sys.path, never installed: no metadata to read
    __version__ = "0+unknown"

if TYPE_CHECKING:  # for type checkers; at run time the session (and onnx) load on first use, below
    from .session import InferenceSession


def __getattr__(name: str) -> Any:
    # The session pulls in the importer (and onnx); load it on first use, not at import time.
    if name == "InferenceSession":
        from .session import InferenceSession
        return InferenceSession
    raise AttributeError(f"module 'xnorinfer' has no attribute {name!r}")


__all__ = ["pack", "unpack", "bgemm", "backend_info", "BackendError", "ModelError", "InferenceSession",
           "SessionOptions", "GraphOptimizationLevel", "ExecutionMode", "ExecutionOrder", "get_available_providers",
           "get_device", "__version__"]
