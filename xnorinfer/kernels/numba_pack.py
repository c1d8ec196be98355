"""Numba pack and unpack: rows of values to rows of 64-bit words and back (csrc/pack/ in C).

Bit convention (see csrc/include/xnorinfer.h): element 64*j + i of a row is bit i of word j, bit 1
means -1, bit 0 means +1, x < 0 packs to -1 and everything else (0, -0.0, NaN) to +1; pack writes the
tail bits of a row's last word as 0 and unpack never reads them.  64 elements make a word in a loop
LLVM vectorizes (compare -> mask -> word); float16, which Numba cannot compare, is read as its uint16
bits.  Rows are split across threads from _PARALLEL_MIN elements on (numba_core.run_chunks).
"""
import numba
import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from .numba_core import JIT, prefer_wide_vectors, run_chunks

__all__ = ["pack_rows", "unpack_rows"]

_PARALLEL_MIN = 1 << 22  # elements (pack) / outputs (unpack) from which threads are used


def negative(v):
    """Whether pack writes v as -1: v < 0, so -0.0 and NaN are +1.  Compiled code is given a float16
    as its uint16 bits, which the overload below decodes."""
    return v < 0


@overload(negative, inline="always")
def _negative_compiled(v):
    if v == types.uint16:
        # a float16's bits: negative iff the sign is set and the magnitude is in (0, 0x7c00]: -0.0
        # (0x8000) and the NaNs (magnitude > 0x7c00) are not
        return lambda v: (np.int64(v) > 0x8000) & (np.int64(v) <= 0xFC00)
    return lambda v: v < 0


@njit(**JIT)
def _pack_chunk(x, out, t, chunks):
    prefer_wide_vectors()
    rows, k = x.shape
    full = k // 64
    for r in range(t * rows // chunks, (t + 1) * rows // chunks):
        row = np.uint64(r)
        for w in range(full):
            base = w * 64
            bits = np.uint64(0)
            for i in range(64):
                if negative(x[row, np.uint64(base + i)]):
                    bits |= np.uint64(1) << np.uint64(i)
            out[row, np.uint64(w)] = bits
        if full * 64 < k:
            base = full * 64
            bits = np.uint64(0)
            for i in range(k - base):
                if negative(x[row, np.uint64(base + i)]):
                    bits |= np.uint64(1) << np.uint64(i)
            out[row, np.uint64(full)] = bits


@njit(parallel=True, **JIT)
def _pack_parallel(x, out, chunks):
    # The prange index is unsigned: cast it, or the body gets compiled a second time.
    for t in prange(chunks):
        _pack_chunk(x, out, np.int64(t), chunks)


@njit(**JIT)
def _unpack_chunk(words, k, out, t, chunks):
    prefer_wide_vectors()
    rows = out.shape[0]
    full = k // 64
    plus = np.float32(1.0)
    minus = np.float32(-1.0)
    one = np.uint64(1)
    for r in range(t * rows // chunks, (t + 1) * rows // chunks):
        row = np.uint64(r)
        for w in range(full):
            v = words[row, np.uint64(w)]
            base = w * 64
            for i in range(64):
                out[row, np.uint64(base + i)] = minus if (v >> np.uint64(i)) & one else plus
        if full * 64 < k:
            v = words[row, np.uint64(full)]
            base = full * 64
            for i in range(k - base):
                out[row, np.uint64(base + i)] = minus if (v >> np.uint64(i)) & one else plus


@njit(parallel=True, **JIT)
def _unpack_parallel(words, k, out, chunks):
    for t in prange(chunks):
        _unpack_chunk(words, k, out, np.int64(t), chunks)


def _threads(size, rows):
    """The calling thread's Numba thread count for a large job, else 1; one chunk of rows each."""
    return min(numba.get_num_threads(), rows) if size >= _PARALLEL_MIN else 1


def pack_rows(x, out, num_threads=None):
    """Pack a C-contiguous (rows, k) array into out (rows, ceil(k/64)) uint64 (pre-validated), on up to
    num_threads threads (None: Numba's)."""
    rows, k = x.shape
    if rows == 0 or k == 0:
        return out
    if x.dtype == np.float16:
        x = x.view(np.uint16)
    threads = _threads(x.size, rows)
    if num_threads:
        threads = min(threads, num_threads)
    run_chunks(_pack_chunk, _pack_parallel, (x, out), threads, threads)
    return out


def unpack_rows(words, k, out):
    """Unpack (rows, ceil(k/64)) uint64 words into out (rows, k) float32 +1/-1 (pre-validated)."""
    rows = out.shape[0]
    k = int(k)
    if rows == 0 or k == 0:
        return out
    threads = _threads(rows * k, rows)
    run_chunks(_unpack_chunk, _unpack_parallel, (words, k, out), threads, threads)
    return out
