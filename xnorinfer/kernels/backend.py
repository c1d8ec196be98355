"""Backend selection: the compiled C library through cffi, or the Numba fallback.

XNORINFER_BACKEND=c|numba forces one; by default the C library is used when it was built, else Numba.
Both are resolved lazily, on the first kernel call, so `import xnorinfer` stays cheap.
"""
from __future__ import annotations

import logging
import os
import threading
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Optional

from ..errors import BackendError, CLibraryMissing

log = logging.getLogger("xnorinfer")
_lock = threading.Lock()
_backends: Dict[str, Any] = {}


def _load_c() -> Any:
    try:
        from .clib import ffi, lib
    except ImportError:
        return None
    from .cbackend import CBackend
    return CBackend(ffi, lib)


def load_backend(name: str) -> Any:
    """The backend called `name` ("c" or "numba"), created once."""
    with _lock:
        if name not in _backends:
            if name == "c":
                backend = _load_c()
                if backend is None:
                    raise CLibraryMissing("the C backend was requested but the compiled library "
                                       "xnorinfer.kernels.clib is not installed (reinstall with a C "
                                       "compiler, or use XNORINFER_BACKEND=numba)")
            elif name == "numba":
                from .numba_backend import NumbaBackend
                backend = NumbaBackend()
            else:
                raise BackendError(f"XNORINFER_BACKEND={name!r}: expected 'c' or 'numba'")
            _backends[name] = backend
        return _backends[name]


_default: Any = None


def get_backend() -> Any:
    global _default
    backend = _default
    if backend is None:
        choice = os.environ.get("XNORINFER_BACKEND", "").strip().lower()
        if choice:
            backend = load_backend(choice)
            log.info("XNORINFER_BACKEND=%s: the %s backend runs the kernels", choice, backend.name)
        else:
            try:
                backend = load_backend("c")
            except CLibraryMissing:
                log.warning("the compiled C library (xnorinfer.kernels.clib) is not installed: the Numba backend "
                            "runs the kernels, and models on the Python executor (reinstall with a C compiler, "
                            "or from a wheel, for the C runtime)")
                backend = load_backend("numba")
        _default = backend
    return backend


@contextmanager
def use_backend(name: str, isa: Optional[str] = None) -> Iterator[Any]:
    """Run the enclosed code on backend `name` (and, for C, ISA path `isa`): for tests and benchmarks."""
    global _default
    previous, backend = _default, load_backend(name)
    previous_isa = backend.isa() if name == "c" else None
    if isa is not None:
        if name != "c":
            raise ValueError("an ISA path can only be chosen for the C backend")
        backend.select_isa(isa)
    _default = backend
    try:
        yield backend
    finally:
        _default = previous
        if previous_isa is not None:
            backend.select_isa(previous_isa)


def backend_info() -> Dict[str, Any]:
    """Which backend and ISA path run the kernels, which paths this CPU supports, how many threads."""
    info = get_backend().info()
    info["c_library_built"] = _load_c_cached() is not None
    return info


def _load_c_cached() -> Any:
    try:
        return load_backend("c")
    except CLibraryMissing:
        return None
