"""The kernel core on numpy arrays: pack, unpack, bgemm, and the backend that runs them.

Validation lives here (shapes, dtypes, contiguity, ranges) so that the backends below, C
(cbackend.py) or Numba (numba_backend.py), only ever see arrays they can index safely; backend.py
chooses between them.
"""
from __future__ import annotations

import operator
from typing import Any, Optional

import numpy as np
import numpy.typing as npt

from ..errors import BackendError, CLibraryMissing
from .backend import backend_info, get_backend, load_backend, use_backend

PACKABLE_DTYPES = tuple(np.dtype(t) for t in ("float16", "float32", "float64", "int8", "int16", "int32", "int64"))

_U64 = np.dtype(np.uint64)
_I32 = np.dtype(np.int32)
_F32 = np.dtype(np.float32)


def words_for(k: int) -> int:
    """Number of uint64 words holding k packed values."""
    return (k + 63) // 64


def as_int(value: Any, name: str, minimum: int) -> int:
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}") from None
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def pack(x: npt.ArrayLike, num_threads: Optional[int] = None) -> npt.NDArray[np.uint64]:
    """Pack the last axis of `x` into bits: x < 0 -> -1 (bit 1), everything else -> +1 (bit 0).

    Returns a uint64 array of shape x.shape[:-1] + (ceil(K/64),); tail bits of the last word are 0.
    Accepts float16/32/64 and signed integer arrays of at least one dimension.  num_threads: at most
    this many threads (None: the pool's size; small arrays are packed by one).
    """
    threads = None if num_threads is None else as_int(num_threads, "num_threads", 1)
    x = np.asarray(x)
    if x.dtype not in PACKABLE_DTYPES:
        raise TypeError(f"pack: dtype {x.dtype} is not supported; expected float16/32/64 or a "
                        "signed integer type")
    if x.ndim == 0:
        raise ValueError("pack: x must have at least one dimension (the axis to pack)")
    k = x.shape[-1]
    rows = x.size // k if k else int(np.prod(x.shape[:-1]))
    out = np.empty(x.shape[:-1] + (words_for(k),), dtype=np.uint64)
    if rows and k:
        x2 = np.ascontiguousarray(x).reshape(rows, k)
        get_backend().pack_rows(x2, out.reshape(rows, -1), threads)
    return out


def unpack(words: npt.NDArray[np.uint64], k: int, dtype: npt.DTypeLike = np.float32) -> npt.NDArray[Any]:
    """Inverse of pack: uint64 words (..., ceil(k/64)) -> array (..., k) of +1/-1 in `dtype`."""
    k = as_int(k, "k", 0)
    dtype = np.dtype(dtype)
    if dtype.kind not in "fi":
        raise TypeError(f"unpack: dtype must be a float or signed integer type, got {dtype}")
    words = check_words(words, "words")
    if words.ndim == 0:
        raise ValueError("unpack: words must have at least one dimension")
    if words.shape[-1] != words_for(k):
        raise ValueError(f"unpack: words has {words.shape[-1]} words per row but k={k} needs "
                         f"{words_for(k)}")
    rows = int(np.prod(words.shape[:-1]))
    out = np.empty(words.shape[:-1] + (k,), dtype=np.float32)
    if rows and k:
        get_backend().unpack_rows(words.reshape(rows, -1), k, out.reshape(rows, k))
    return out if dtype == _F32 else out.astype(dtype)


def check_words(arr: npt.NDArray[np.uint64], name: str) -> npt.NDArray[np.uint64]:
    if type(arr) is not np.ndarray and not isinstance(arr, np.ndarray):
        raise TypeError(f"{name} must be a numpy array of uint64 packed words, got {type(arr).__name__}")
    if arr.dtype != _U64:
        raise TypeError(f"{name} must have dtype uint64 (packed words), got {arr.dtype}")
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    return arr


def bgemm(a: npt.NDArray[np.uint64], b: npt.NDArray[np.uint64], k: int, *,
          out: Optional[npt.NDArray[np.int32]] = None, num_threads: Optional[int] = None) -> npt.NDArray[np.int32]:
    """Binary matrix product of packed rows: out[i, j] = sum_q a_iq * b_jq over k values of +-1.

    a: packed (M, W) uint64, b: packed (N, W) uint64, W = ceil(k/64).  Returns int32 (M, N) = A @ B.T
    in +-1 arithmetic, i.e. k - 2*popcount(a_i XOR b_j).  Tail bits beyond k are ignored.
    """
    if type(k) is not int:
        k = as_int(k, "k", 1)
    if not 1 <= k <= 2**30:
        raise ValueError(f"k={k} is out of range: it must be >= 1 and, for int32 results, <= 2**30")
    a = check_words(a, "a")
    b = check_words(b, "b")
    a_shape, b_shape = a.shape, b.shape
    if len(a_shape) != 2 or len(b_shape) != 2:
        raise ValueError(f"a and b must be 2-D (rows, words), got shapes {a_shape} and {b_shape}")
    w = (k + 63) >> 6
    if a_shape[1] != w or b_shape[1] != w:
        raise ValueError(f"k={k} needs {w} words per row, but a has {a_shape[1]} and b has {b_shape[1]}")
    m, n = a_shape[0], b_shape[0]
    if out is None:
        out = np.empty((m, n), dtype=_I32)
    else:
        if not isinstance(out, np.ndarray) or out.dtype != _I32:
            raise TypeError("out must be a numpy int32 array")
        if out.shape != (m, n):
            raise ValueError(f"out has shape {out.shape}, expected {(m, n)}")
        if not out.flags.c_contiguous or not out.flags.writeable:
            raise ValueError("out must be C-contiguous and writeable")
        if np.may_share_memory(out, a) or np.may_share_memory(out, b):
            raise ValueError("out must not overlap a or b")
    if m and n:
        get_backend().bgemm(a, b, k, out, 0 if num_threads is None else as_int(num_threads, "num_threads", 1))
    return out
