"""What every Numba kernel shares: the compile options, the popcount and vector-width intrinsics, the
one policy that decides whether a call runs on threads, and the micro-kernels that GEMM
(numba_gemm.py) and the binary convolution (numba_conv.py) both run.

Rules the kernels follow
------------------------
* Popcount is an LLVM intrinsic (`popcount` emits llvm.ctpop.i64), so LLVM uses the hardware POPCNT
  and vectorizes it: VPOPCNTQ with AVX-512 VPOPCNTDQ, a PSHUFB nibble table with AVX2, CNT on NEON.
  On CPUs with VPOPCNTDQ the hot loops ask for 512-bit vectors (`prefer_wide_vectors`): LLVM's
  default tuning for Intel server parts is 256-bit.
* Array indices in the hot loops are uint64: with signed indices Numba adds negative-index
  wraparound, which turns LLVM's vector loads and stores into gathers and scatters.  (Mixing int64
  and uint64 in arithmetic gives float64 in Numba: indices are computed as int64 and cast.)
* No reference counting in per-row or per-pixel work: arrays are passed whole with indices, never as
  views made in a loop, and everything compiles with error_model="numpy" (integer division by zero
  gives 0 instead of raising).  A function that can raise keeps an atomic incref / decref of every
  array argument at its entry and exit; with views and per-pixel calls that cost a fifth of the time
  of a 56x56x256 convolution.
* No literal arguments between compiled functions: Numba compiles a callee again for every literal
  it is passed, so counts and offsets are passed as computed values (np.int64(0), not 0).  One
  exception on purpose: the two directions of the direct kernel (_dots_x8's `across`, True or False)
  are compiled apart, which makes its stores plain ones (a GEMV is 5-10% slower with the direction a
  runtime value).
* Threads (`run_chunks`): a kernel is a body `body(*args, t, chunks)` that does chunk t of `chunks`,
  plus a three-line prange loop over the same body.  Small jobs, one-thread calls, a call made while
  another thread holds the parallel region (the workqueue threading layer aborts the process on
  concurrent launches) and any call in a child forked after GNU OpenMP ran (GNU OpenMP does not
  survive fork()) call the body once as chunk 0 of 1 on the calling thread: no thread launch.
  numba.set_num_threads is thread-local and restored after the call.
* All functions are nogil and cached (cache=True): compiled code is written to __pycache__ next to
  each module, or to Numba's user cache directory when that is not writable.  Numba checks only a
  cached function's own source file: the kernels here are compiled into the other modules' cached
  code, so after changing this file clear every numba_*.py cache (or set NUMBA_CACHE_DIR afresh).
"""
import os
import threading

import numba
import numpy as np
from numba import njit, types
from numba.extending import intrinsic

__all__ = ["JIT", "NB", "k_block", "popcount", "prefer_wide_vectors", "tail_mask", "threads_for",
           "run_chunks", "pack_panel", "panel_block", "direct_block", "info"]

JIT = dict(nogil=True, cache=True, error_model="numpy")

NB = 64                          # panel width: columns of the output computed per pass over a row block
_KC = 1024                       # words per k-block (a panel's block: 512 KiB, stays in L2)
_MIN_WORK_PER_THREAD = 1 << 15   # word pairs per thread below which another thread does not pay


def k_block(words):
    """Words per k-block for rows of `words` words: rows of at most 1.5 blocks are not split."""
    return words if words <= _KC + _KC // 2 else _KC


# ----------------------------------------------------------------------------------------------
# intrinsics


@intrinsic
def popcount(typingctx, x):
    """Number of set bits of a 64-bit integer, as int64 (LLVM's ctpop: POPCNT / VPOPCNTQ / CNT)."""
    if isinstance(x, types.Integer) and x.bitwidth == 64:
        def codegen(context, builder, signature, args):
            return builder.ctpop(args[0])
        return types.int64(x), codegen
    return None


def _host_has_vpopcntq():
    """Whether Numba compiles for a CPU with AVX-512 VPOPCNTDQ (Ice Lake and later, Zen 4 and
    later)."""
    try:
        if numba.config.CPU_FEATURES is not None:
            features = numba.config.CPU_FEATURES
        elif numba.config.CPU_NAME is not None:
            return False
        else:
            import llvmlite.binding as llvm
            features = llvm.get_host_cpu_features().flatten()
        return "+avx512vpopcntdq" in features.split(",")
    except Exception:
        return False


_WIDE_VECTORS = _host_has_vpopcntq()


@intrinsic
def prefer_wide_vectors(typingctx):
    """Ask LLVM's vectorizers for 512-bit vectors in the calling function.

    LLVM tunes Intel server CPUs to prefer 256-bit vectors (the frequency cost of AVX-512 on early
    parts), which halves the width of the popcount loops; with VPOPCNTDQ the 512-bit loops are ~25%
    faster.  This sets the function attribute "prefer-vector-width"="512" (as clang's
    -mprefer-vector-width=512 does).  llvmlite only accepts known attribute names through its API,
    so the string attribute is added to the set directly; if that ever fails, nothing changes but
    the vector width."""
    def codegen(context, builder, signature, args):
        if _WIDE_VECTORS:
            try:
                set.add(builder.function.attributes, '"prefer-vector-width"="512"')
            except Exception:
                pass
        return context.get_dummy_value()
    return types.none(), codegen


@njit(**JIT)
def tail_mask(k):
    """Mask of the valid bits of the last word of a k-bit row."""
    r = k & 63
    if r == 0:
        return ~np.uint64(0)
    return (np.uint64(1) << np.uint64(r)) - np.uint64(1)


# ----------------------------------------------------------------------------------------------
# threads

parallel_lock = threading.Lock()
parallel_ok = True  # False in a child forked after GNU OpenMP ran (_after_fork_in_child)


def _after_fork_in_child():
    """GNU OpenMP does not survive fork(): a child whose parent already ran Numba's "omp" threading
    layer is killed on its first parallel launch ("Terminating: fork() called from a process already
    using GNU OpenMP").  Such a child (e.g. a multiprocessing worker) runs every kernel serially."""
    global parallel_ok, parallel_lock
    parallel_lock = threading.Lock()  # it may have been held by a thread that does not exist here
    try:
        if numba.threading_layer() == "omp":
            parallel_ok = False
    except Exception:  # no parallel region ran in the parent: the child may start its own threads
        pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _max_threads():
    return numba.config.NUMBA_NUM_THREADS


def threads_for(num_threads, work):
    """Threads for a job of `work` word pairs: at most num_threads and Numba's pool, and one per
    _MIN_WORK_PER_THREAD at most (the same rule as the C library's)."""
    share = work // _MIN_WORK_PER_THREAD
    if share < 2 or num_threads < 2:  # most calls: answered before any lookup
        return 1
    return min(num_threads, _max_threads(), share)


def run_chunks(body, parallel, args, threads, chunks):
    """Do body(*args, t, chunks) for every t < chunks: as parallel(*args, chunks), a prange loop over
    that body, on min(threads, chunks) threads (threads: at most Numba's pool), or as
    body(*args, 0, 1) on the calling thread when that is one thread or another thread holds the
    parallel region (see the module docstring)."""
    if threads > 1 and chunks > 1 and parallel_ok and parallel_lock.acquire(blocking=False):
        threads = min(threads, chunks)
        try:
            previous = numba.get_num_threads()
            if previous != threads:
                numba.set_num_threads(threads)
            try:
                parallel(*args, chunks)
            finally:
                if previous != threads:
                    numba.set_num_threads(previous)
        finally:
            parallel_lock.release()
        return
    body(*args, 0, 1)


# ----------------------------------------------------------------------------------------------
# panel micro-kernel: NB rows of the right operand are transposed into a panel bp[w, c] (a word of
# each of NB output columns side by side), and blocks of 4 rows of the left operand sweep across it
# in outer-product form, acc[r, c] += popcount(a[i + r, w] ^ bp[w, c]).  The innermost loop runs over
# the NB contiguous columns, which LLVM vectorizes (VPOPCNTQ on AVX-512) with no horizontal sums; each
# panel word loaded serves 4 rows, and the panel and acc stay in cache.  GEMM packs its panels per
# k-block as it goes; the convolution packs its weights into panels once per layer.


@njit(**JIT)
def pack_panel(b, tail, j0, w0, w1, bp):
    """bp[w - w0, c] = b[j0 + c, w] for c < NB, w0 <= w < w1 (0 past the last row of b), the last word
    of each row ANDed with tail."""
    N, W = b.shape
    ones = ~np.uint64(0)
    zero = np.uint64(0)
    for c0 in range(0, NB, 8):
        for w in range(w0, w1):
            m = tail if w == W - 1 else ones
            for c in range(8):
                j = j0 + c0 + c
                bp[w - w0, c0 + c] = b[j, w] & m if j < N else zero


@njit(**JIT)
def _words4(a, r, w, mask):
    """Word w of rows r .. r+3 of a, ANDed with mask."""
    return (a[r, w] & mask, a[r + np.uint64(1), w] & mask, a[r + np.uint64(2), w] & mask,
            a[r + np.uint64(3), w] & mask)


@njit(**JIT)
def _panel_rows4(a, i, tail, bp, p0, w0, w1, acc):
    """acc[r, c] += popcount(a[i + r, w] ^ bp[p0 + w - w0, c]) for r < 4, c < NB, w0 <= w < w1 (the last
    word of a's rows ANDed with tail).  Two words per pass halve the loads and stores of acc."""
    prefer_wide_vectors()
    wl = np.uint64(a.shape[1] - 1)
    ones = ~np.uint64(0)
    ra = np.uint64(i)
    one = np.uint64(1)
    start = np.uint64(w0)
    end = np.uint64(w1)
    base = np.uint64(p0)
    pairs_end = start + (end - start) // np.uint64(2) * np.uint64(2)
    for w in range(start, pairs_end, np.uint64(2)):
        v = w + one
        x0, x1, x2, x3 = _words4(a, ra, w, tail if w == wl else ones)
        z0, z1, z2, z3 = _words4(a, ra, v, tail if v == wl else ones)
        for c in range(NB):
            y = bp[w - start + base, c]
            u = bp[v - start + base, c]
            acc[0, c] += popcount(x0 ^ y) + popcount(z0 ^ u)
            acc[1, c] += popcount(x1 ^ y) + popcount(z1 ^ u)
            acc[2, c] += popcount(x2 ^ y) + popcount(z2 ^ u)
            acc[3, c] += popcount(x3 ^ y) + popcount(z3 ^ u)
    if pairs_end < end:
        w = pairs_end
        x0, x1, x2, x3 = _words4(a, ra, w, tail if w == wl else ones)
        for c in range(NB):
            y = bp[w - start + base, c]
            acc[0, c] += popcount(x0 ^ y)
            acc[1, c] += popcount(x1 ^ y)
            acc[2, c] += popcount(x2 ^ y)
            acc[3, c] += popcount(x3 ^ y)


@njit(**JIT)
def _panel_rows1(a, i, tail, bp, p0, w0, w1, acc):
    """acc[0, c] += popcount(a[i, w] ^ bp[p0 + w - w0, c]) for c < NB, w0 <= w < w1."""
    prefer_wide_vectors()
    wl = np.uint64(a.shape[1] - 1)
    ones = ~np.uint64(0)
    ra = np.uint64(i)
    start = np.uint64(w0)
    base = np.uint64(p0)
    for w in range(start, np.uint64(w1)):
        x = a[ra, w] & (tail if w == wl else ones)
        for c in range(NB):
            acc[0, c] += popcount(x ^ bp[w - start + base, c])


@njit(**JIT)
def _panel_store(acc, rows, out, o, j0, ncols, k, first, last):
    """Add the counts acc[:rows, :ncols] into out[o:o+rows, j0:j0+ncols] (k-blocks after the first)
    and turn them into dot products k - 2 * count (the last k-block)."""
    prefer_wide_vectors()
    for r in range(rows):
        row = np.uint64(o + r)
        for c in range(ncols):
            col = np.uint64(j0 + c)
            count = acc[r, c]
            if not first:
                count += out[row, col]
            if last:
                out[row, col] = k - 2 * count
            else:
                out[row, col] = count


@njit(**JIT)
def panel_block(a, a0, m, tail, bp, p0, w0, w1, acc, out, o0, j0, ncols, k, first, last):
    """Words w0 .. w1-1 of rows a0 .. a0+m-1 of a against the panel whose word w is row p0 + w - w0 of
    bp, into out[o0 .. o0+m-1, j0 .. j0+ncols-1]: the counts of the first k-block are stored, later
    ones added, and the last turns them into k - 2 * count.  acc: (4, NB) int64 scratch."""
    i = 0
    # (the row counts passed to _panel_store are computed, not literals: see the module docstring)
    while i + 4 <= m:
        acc[:, :] = 0
        _panel_rows4(a, a0 + i, tail, bp, p0, w0, w1, acc)
        _panel_store(acc, min(4, m - i), out, o0 + i, j0, ncols, k, first, last)
        i += 4
    while i < m:
        acc[0, :] = 0
        _panel_rows1(a, a0 + i, tail, bp, p0, w0, w1, acc)
        _panel_store(acc, min(1, m - i), out, o0 + i, j0, ncols, k, first, last)
        i += 1


# ----------------------------------------------------------------------------------------------
# direct micro-kernel, for few rows on either side (where a panel would be mostly padding): dot
# products along the rows, one row of one operand against 8 rows of the other in one loop with 8
# accumulators, which LLVM vectorizes as reductions.  The loop over rows stays inside the kernel: a
# call per row costs as much as a short row's work.  Rows of a meet blocks of 8 rows of b; the rows of
# b left over (fewer than 8) meet blocks of 8 rows of a; what remains, one dot product at a time.


@njit(**JIT)
def _dots_x8(x, x0, n, tail, y, y0, out, o, j, across, k):
    """For i < n and c < 8, d = k - 2 * popcount(x[x0 + i] ^ y[y0 + c]) (the last word ANDed with tail)
    goes to out[o + i, j + c] when `across` (y's rows are out's columns), else to out[o + c, j + i]
    (x's rows are out's columns).  `across` is passed as a literal: see the module docstring."""
    prefer_wide_vectors()
    rb0 = np.uint64(y0)
    rb1 = np.uint64(y0 + 1)
    rb2 = np.uint64(y0 + 2)
    rb3 = np.uint64(y0 + 3)
    rb4 = np.uint64(y0 + 4)
    rb5 = np.uint64(y0 + 5)
    rb6 = np.uint64(y0 + 6)
    rb7 = np.uint64(y0 + 7)
    last = np.uint64(x.shape[1] - 1)
    dr, dc = (0, 1) if across else (1, 0)  # out's step from one c to the next
    for i in range(n):
        ra = np.uint64(x0 + i)
        s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0
        for w in range(np.uint64(0), last):
            v = x[ra, w]
            s0 += popcount(v ^ y[rb0, w])
            s1 += popcount(v ^ y[rb1, w])
            s2 += popcount(v ^ y[rb2, w])
            s3 += popcount(v ^ y[rb3, w])
            s4 += popcount(v ^ y[rb4, w])
            s5 += popcount(v ^ y[rb5, w])
            s6 += popcount(v ^ y[rb6, w])
            s7 += popcount(v ^ y[rb7, w])
        v = x[ra, last]
        s0 += popcount((v ^ y[rb0, last]) & tail)
        s1 += popcount((v ^ y[rb1, last]) & tail)
        s2 += popcount((v ^ y[rb2, last]) & tail)
        s3 += popcount((v ^ y[rb3, last]) & tail)
        s4 += popcount((v ^ y[rb4, last]) & tail)
        s5 += popcount((v ^ y[rb5, last]) & tail)
        s6 += popcount((v ^ y[rb6, last]) & tail)
        s7 += popcount((v ^ y[rb7, last]) & tail)
        r = o + i * dc
        col = j + i * dr
        out[r, col] = k - 2 * s0
        out[r + dr, col + dc] = k - 2 * s1
        out[r + 2 * dr, col + 2 * dc] = k - 2 * s2
        out[r + 3 * dr, col + 3 * dc] = k - 2 * s3
        out[r + 4 * dr, col + 4 * dc] = k - 2 * s4
        out[r + 5 * dr, col + 5 * dc] = k - 2 * s5
        out[r + 6 * dr, col + 6 * dc] = k - 2 * s6
        out[r + 7 * dr, col + 7 * dc] = k - 2 * s7


@njit(**JIT)
def _mismatches(a, i, tail, b, j):
    """popcount(a[i] ^ b[j]) along the row, the last word ANDed with tail."""
    prefer_wide_vectors()
    ra = np.uint64(i)
    rb = np.uint64(j)
    last = np.uint64(a.shape[1] - 1)
    s = 0
    for w in range(np.uint64(0), last):
        s += popcount(a[ra, w] ^ b[rb, w])
    return s + popcount((a[ra, last] ^ b[rb, last]) & tail)


@njit(**JIT)
def direct_block(a, a0, m, tail, b, j0, j1, out, o0, k):
    """out[o0 + i, j] = k - 2 * popcount(a[a0 + i] ^ b[j]) for i < m, j0 <= j < j1, the last word ANDed
    with tail."""
    j = j0
    while j + 8 <= j1:
        _dots_x8(a, a0, m, tail, b, j, out, o0, j, True, k)
        j += 8
    i = 0
    while i + 8 <= m and j < j1:
        _dots_x8(b, j, j1 - j, tail, a, a0 + i, out, o0 + i, j, False, k)
        i += 8
    for jj in range(j, j1):
        for ii in range(i, m):
            out[o0 + ii, jj] = k - 2 * _mismatches(a, a0 + ii, tail, b, jj)


# ----------------------------------------------------------------------------------------------


def info():
    """Numba version, threading layer (None until a parallel call ran), threads, vector width."""
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel region has run yet
        layer = None
    return {"backend": "numba", "numba_version": numba.__version__,
            "threading_layer": layer, "max_threads": _max_threads(),
            "vector_width": 512 if _WIDE_VECTORS else None}
