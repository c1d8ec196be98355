"""Numba binary GEMM: out[i, j] = k - 2 * popcount(a[i] XOR b[j]) over the k valid bits (csrc/bgemm/).

The arrays come validated from xnorinfer.kernels: C-contiguous, the right dtypes and shapes, k >= 1,
num_threads >= 1.  Garbage tail bits in either operand never change a result, and nothing is copied:
the micro-kernels AND the last word of each row with the tail mask.

* m >= 4 and n > 16: the panel micro-kernel (numba_core.panel_block).  Each tile packs NB = 64 rows of
  b into a panel, per k-block of rows longer than 1.5 * 1024 words, and sweeps its rows of a across it;
  the partial counts of k-blocks accumulate in `out`.
* m <= 3 (GEMV) or n <= 16: the direct micro-kernel (numba_core.direct_block), dot products along k,
  a row against 8 rows of the other operand at a time.
* Threads: the output is cut into tiles (panels x row ranges, or row x column ranges for the direct
  kernel; about 4 per thread), one chunk each for numba_core.run_chunks; each tile owns its scratch.
  Small problems (numba_core.threads_for) run serially with no thread launch.
"""
import numpy as np
from numba import njit, prange

from .numba_core import (JIT, NB, direct_block, k_block, pack_panel, panel_block, run_chunks, tail_mask,
                         threads_for)

__all__ = ["bgemm"]

_DIRECT_MAX_M = 3                # m up to this uses the direct kernel,
_DIRECT_MAX_N = 16               # and so does n up to this (a panel would be mostly padding)


@njit(**JIT)
def _panel_tile(a, b, k, out, j0, i0, i1, kc):
    """out[i0:i1, j0:j0+NB] (clipped to out): for each k-block of kc words, pack the panel, then sweep
    the rows across it."""
    W = a.shape[1]
    tail = tail_mask(k)
    bp = np.empty((min(kc, W), NB), np.uint64)
    acc = np.empty((4, NB), np.int64)
    ncols = min(NB, out.shape[1] - j0)
    p0 = np.int64(0)
    for w0 in range(0, W, kc):
        w1 = min(w0 + kc, W)
        pack_panel(b, tail, j0, w0, w1, bp)
        panel_block(a, i0, i1 - i0, tail, bp, p0, w0, w1, acc, out, i0, j0, ncols, k, w0 == 0, w1 == W)


@njit(**JIT)
def _bgemm_chunk(a, b, k, out, direct, kc, row_chunks, col_chunks, tiles, t, chunks):
    """Tiles t * tiles // chunks .. (t + 1) * tiles // chunks - 1 of out.  Direct kernel: tile u is the
    (u // col_chunks)-th of row_chunks ranges of rows times the (u % col_chunks)-th of col_chunks ranges
    of columns (multiples of 8).  Panel kernel: panel u // row_chunks times the (u % row_chunks)-th of
    row_chunks ranges of rows (multiples of 4)."""
    M = a.shape[0]
    N = b.shape[0]
    for u in range(t * tiles // chunks, (t + 1) * tiles // chunks):
        if direct:
            ti = u // col_chunks
            tj = u - ti * col_chunks
            groups = (N + 7) // 8
            i0 = ti * M // row_chunks
            direct_block(a, i0, (ti + 1) * M // row_chunks - i0, tail_mask(k), b,
                         min(N, tj * groups // col_chunks * 8), min(N, (tj + 1) * groups // col_chunks * 8),
                         out, i0, k)
        else:
            quads = (M + 3) // 4
            q = u // row_chunks
            r = u - q * row_chunks
            _panel_tile(a, b, k, out, q * NB, min(M, r * quads // row_chunks * 4),
                        min(M, (r + 1) * quads // row_chunks * 4), kc)


@njit(parallel=True, **JIT)
def _bgemm_parallel(a, b, k, out, direct, kc, row_chunks, col_chunks, tiles, chunks):
    # Each tile allocates its own scratch inside _panel_tile (never hoisted out of the prange).
    # The prange index is unsigned: cast it, or the body gets compiled a second time.
    for t in prange(chunks):
        _bgemm_chunk(a, b, k, out, direct, kc, row_chunks, col_chunks, tiles, np.int64(t), chunks)


def bgemm(a, b, k, out, num_threads):
    """out[i, j] = k - 2 * popcount(a[i] XOR b[j]) over the k valid bits (arrays pre-validated)."""
    m, words = a.shape
    n = b.shape[0]
    k = int(k)
    direct = m <= _DIRECT_MAX_M or n <= _DIRECT_MAX_N
    threads = threads_for(int(num_threads), m * n * words)
    row_chunks = col_chunks = 1
    if threads > 1:
        want = 4 * threads  # tiles: enough for an even share
        if direct:
            col_chunks = min(want, (n + 7) // 8)
            row_chunks = min(m, -(-want // col_chunks))
        else:
            # every row chunk re-packs its panels: split rows only when panels are few
            row_chunks = min((m + 3) // 4, -(-want // ((n + NB - 1) // NB)))
    tiles = row_chunks * col_chunks if direct else (n + NB - 1) // NB * row_chunks
    run_chunks(_bgemm_chunk, _bgemm_parallel, (a, b, k, out, direct, k_block(words), row_chunks, col_chunks, tiles),
               threads, tiles)
    return out
