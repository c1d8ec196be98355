"""Numba fallback backend: pack, unpack and binary GEMM compiled by Numba for the host CPU.

Used when the compiled C library is absent or when XNORINFER_BACKEND=numba.  The caller
(xnorinfer.kernels) has already validated every argument: arrays are C-contiguous with the right
dtypes and shapes, k >= 1 for bgemm, num_threads >= 1.

Bit convention (see csrc/include/xnorinfer.h): element 64*j + i of a row is bit i of word j, bit 1
means -1, bit 0 means +1, x < 0 packs to -1 and everything else (0, -0.0, NaN) to +1; packers write
the tail bits of a row's last word as 0; kernels never depend on them.

Design
------
* Popcount is an LLVM intrinsic (`popcount` emits llvm.ctpop.i64), so LLVM uses the hardware
  POPCNT and vectorizes it: VPOPCNTQ with AVX-512 VPOPCNTDQ, a PSHUFB nibble table with AVX2, CNT
  on NEON.  On CPUs with VPOPCNTDQ the kernels ask for 512-bit vectors (`prefer_wide_vectors`):
  LLVM's default tuning for Intel server parts is 256-bit.
* Every kernel indexes with uint64 values: with signed indices Numba adds negative-index wraparound,
  which turns LLVM's vector loads and stores into gathers and scatters.
* bgemm, m >= 4 and n > 16 ("panel" kernels, outer-product form as in the C micro-kernel): 64 rows
  of b are transposed into a panel bp[w, c], then blocks of 4 rows of a sweep across it:
  acc[r, c] += popcount(a[i + r, w] ^ bp[w, c]).  The innermost loop runs over the 64 contiguous
  columns, which LLVM vectorizes with no horizontal sums; each panel word loaded serves 4 rows, two
  words per pass halve the traffic on acc, and the panel (and acc) stay in L1/L2.  Rows longer than
  1.5 * _KC words are cut into k-blocks whose partial counts accumulate in `out`.
* bgemm, m <= 3 (GEMV) or n <= 16 ("direct" kernels): dot products along k, one row of a against
  8 rows of b in one loop with 8 accumulators, which LLVM vectorizes as reductions.
* Tail bits: packing b into panels clears them; rows of a and the direct kernels mask the last
  word, so garbage tail bits in either operand never change a result (and nothing is copied).
* Threads: the output is cut into tiles (panels x row ranges, or row x column ranges for the direct
  kernels; about 4 per thread) shared by a numba.prange loop; each tile owns its scratch.  Small
  problems (< _MIN_WORK_PER_THREAD word pairs per thread) run serially with no thread launch.
  numba.set_num_threads is thread-local and restored after the call.  Only one parallel region runs
  at a time (the workqueue threading layer aborts the process on concurrent launches): a call made
  while another thread holds the parallel section runs serially instead of waiting.  A process
  forked after the GNU OpenMP layer ran runs serially too (GNU OpenMP does not survive fork()).
* pack / unpack: 64 elements per word in a loop LLVM vectorizes (compare -> mask -> word; float16
  is handled on its uint16 bits); rows are split across threads for large arrays.
* All functions are nogil and cached (cache=True): compiled code is written to __pycache__ next to
  this file, or to Numba's user cache directory when that is not writable.
"""
import os
import threading

import numpy as np
import numba
from numba import njit, prange, types
from numba.extending import intrinsic

__all__ = ["pack_rows", "unpack_rows", "bgemm", "info"]

_JIT = dict(nogil=True, cache=True)

_NB = 64                         # panel width: columns of out computed per pass over a row block
_DIRECT_MAX_M = 3                # m up to this uses the direct (dot-product) kernels,
_DIRECT_MAX_N = 16               # and so does n up to this (a panel would be mostly padding)
_KC = 1024                       # words per k-block (the panel's block: 512 KiB, stays in L2);
                                 # rows of at most 1.5 * _KC words are not split
_MIN_WORK_PER_THREAD = 1 << 15   # M*N*W (word pairs) below which another thread does not pay
_PACK_PARALLEL_MIN = 1 << 22     # elements (pack) / outputs (unpack) from which threads are used

parallel_lock = threading.Lock()
parallel_ok = True  # False in a child forked after GNU OpenMP ran (_after_fork_in_child)


def _after_fork_in_child():
    """GNU OpenMP does not survive fork(): a child whose parent already ran Numba's "omp" threading
    layer is killed on its first parallel launch ("Terminating: fork() called from a process already
    using GNU OpenMP").  Such a child (e.g. a multiprocessing worker) runs the serial kernels."""
    global parallel_ok, parallel_lock
    parallel_lock = threading.Lock()  # it may have been held by a thread that does not exist here
    try:
        if numba.threading_layer() == "omp":
            parallel_ok = False
    except Exception:  # no parallel region ran in the parent: the child may start its own threads
        pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# ----------------------------------------------------------------------------------------------
# popcount


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


@njit(**_JIT)
def tail_mask(k):
    """Mask of the valid bits of a row's last word."""
    r = k & 63
    if r == 0:
        return ~np.uint64(0)
    return (np.uint64(1) << np.uint64(r)) - np.uint64(1)


# ----------------------------------------------------------------------------------------------
# direct kernels (small m): dot products along k, several rows of b per row of a.
# Indices are cast to uint64 so that Numba emits no negative-index wraparound, which would turn
# the vectorized loads into gathers.  The last word is masked: both a and b may carry garbage.


@njit(**_JIT)
def _direct_1x8(a, i, b, j, tail, out, k):
    prefer_wide_vectors()
    W = a.shape[1]
    ra = np.uint64(i)
    rb0 = np.uint64(j)
    rb1 = np.uint64(j + 1)
    rb2 = np.uint64(j + 2)
    rb3 = np.uint64(j + 3)
    rb4 = np.uint64(j + 4)
    rb5 = np.uint64(j + 5)
    rb6 = np.uint64(j + 6)
    rb7 = np.uint64(j + 7)
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0
    last = np.uint64(W - 1)
    for w in range(np.uint64(0), last):
        x = a[ra, w]
        s0 += popcount(x ^ b[rb0, w])
        s1 += popcount(x ^ b[rb1, w])
        s2 += popcount(x ^ b[rb2, w])
        s3 += popcount(x ^ b[rb3, w])
        s4 += popcount(x ^ b[rb4, w])
        s5 += popcount(x ^ b[rb5, w])
        s6 += popcount(x ^ b[rb6, w])
        s7 += popcount(x ^ b[rb7, w])
    x = a[ra, last]
    s0 += popcount((x ^ b[rb0, last]) & tail)
    s1 += popcount((x ^ b[rb1, last]) & tail)
    s2 += popcount((x ^ b[rb2, last]) & tail)
    s3 += popcount((x ^ b[rb3, last]) & tail)
    s4 += popcount((x ^ b[rb4, last]) & tail)
    s5 += popcount((x ^ b[rb5, last]) & tail)
    s6 += popcount((x ^ b[rb6, last]) & tail)
    s7 += popcount((x ^ b[rb7, last]) & tail)
    out[i, j] = k - 2 * s0
    out[i, j + 1] = k - 2 * s1
    out[i, j + 2] = k - 2 * s2
    out[i, j + 3] = k - 2 * s3
    out[i, j + 4] = k - 2 * s4
    out[i, j + 5] = k - 2 * s5
    out[i, j + 6] = k - 2 * s6
    out[i, j + 7] = k - 2 * s7


@njit(**_JIT)
def _direct_1x1(a, i, b, j, tail, out, k):
    prefer_wide_vectors()
    W = a.shape[1]
    ra = np.uint64(i)
    rb = np.uint64(j)
    last = np.uint64(W - 1)
    s = 0
    for w in range(np.uint64(0), last):
        s += popcount(a[ra, w] ^ b[rb, w])
    s += popcount((a[ra, last] ^ b[rb, last]) & tail)
    out[i, j] = k - 2 * s


@njit(**_JIT)
def _direct(a, b, k, out, i0, i1, j0, j1):
    """out[i0:i1, j0:j1] by dot products; blocks of 8 rows of b are reused by rows i0..i1 of a."""
    tail = tail_mask(k)
    j = j0
    while j + 8 <= j1:
        for i in range(i0, i1):
            _direct_1x8(a, i, b, j, tail, out, k)
        j += 8
    while j < j1:
        for i in range(i0, i1):
            _direct_1x1(a, i, b, j, tail, out, k)
        j += 1


# ----------------------------------------------------------------------------------------------
# panel kernels (m > _DIRECT_MAX_M): _NB rows of b are transposed into a panel bp[w, c] (a word of
# each of the _NB columns of out side by side), and a block of rows of a is swept across it in
# outer-product form: for each word w, a[i, w] is XORed with the whole panel row bp[w, :] and the
# popcounts are added into acc[r, :].  The innermost loop runs over c, contiguous, which LLVM
# vectorizes (VPOPCNTQ on AVX-512); no horizontal sums are needed, and the panel stays in cache.


@njit(**_JIT)
def _pack_panel(b, k, j0, w0, w1, bp):
    """bp[w - w0, c] = b[j0 + c, w] for c < _NB, w0 <= w < w1 (0 past the last row of b); the tail
    bits of the last word are cleared."""
    N, W = b.shape
    tail = tail_mask(k)
    ones = ~np.uint64(0)
    zero = np.uint64(0)
    for c0 in range(0, _NB, 8):
        for w in range(w0, w1):
            m = tail if w == W - 1 else ones
            for c in range(8):
                j = j0 + c0 + c
                bp[w - w0, c0 + c] = b[j, w] & m if j < N else zero


@njit(**_JIT)
def _panel_rows4(a, i, bp, w0, w1, tail, acc):
    """acc[r, c] += popcount(a[i + r, w] ^ bp[w - w0, c]) for r < 4, c < _NB, w0 <= w < w1 (the
    last word of a's rows masked by tail).  Two words per pass halve the loads and stores of acc."""
    prefer_wide_vectors()
    wl = np.uint64(a.shape[1] - 1)
    ones = ~np.uint64(0)
    ra0 = np.uint64(i)
    ra1 = np.uint64(i + 1)
    ra2 = np.uint64(i + 2)
    ra3 = np.uint64(i + 3)
    one = np.uint64(1)
    start = np.uint64(w0)
    end = np.uint64(w1)
    pairs_end = start + (end - start) // np.uint64(2) * np.uint64(2)
    for w in range(start, pairs_end, np.uint64(2)):
        v = w + one
        m = tail if w == wl else ones
        n = tail if v == wl else ones
        x0 = a[ra0, w] & m
        x1 = a[ra1, w] & m
        x2 = a[ra2, w] & m
        x3 = a[ra3, w] & m
        z0 = a[ra0, v] & n
        z1 = a[ra1, v] & n
        z2 = a[ra2, v] & n
        z3 = a[ra3, v] & n
        for c in range(_NB):
            y = bp[w - start, c]
            u = bp[v - start, c]
            acc[0, c] += popcount(x0 ^ y) + popcount(z0 ^ u)
            acc[1, c] += popcount(x1 ^ y) + popcount(z1 ^ u)
            acc[2, c] += popcount(x2 ^ y) + popcount(z2 ^ u)
            acc[3, c] += popcount(x3 ^ y) + popcount(z3 ^ u)
    if pairs_end < end:
        w = pairs_end
        m = tail if w == wl else ones
        x0 = a[ra0, w] & m
        x1 = a[ra1, w] & m
        x2 = a[ra2, w] & m
        x3 = a[ra3, w] & m
        for c in range(_NB):
            y = bp[w - start, c]
            acc[0, c] += popcount(x0 ^ y)
            acc[1, c] += popcount(x1 ^ y)
            acc[2, c] += popcount(x2 ^ y)
            acc[3, c] += popcount(x3 ^ y)


@njit(**_JIT)
def _panel_rows1(a, i, bp, w0, w1, tail, acc):
    """acc[0, c] += popcount(a[i, w] ^ bp[w - w0, c]) for c < _NB, w0 <= w < w1."""
    prefer_wide_vectors()
    wl = np.uint64(a.shape[1] - 1)
    ones = ~np.uint64(0)
    ra = np.uint64(i)
    start = np.uint64(w0)
    for w in range(start, np.uint64(w1)):
        x = a[ra, w] & (tail if w == wl else ones)
        for c in range(_NB):
            acc[0, c] += popcount(x ^ bp[w - start, c])


@njit(**_JIT)
def _panel_store(acc, rows, out, i, j0, k, first, last):
    """Add the counts of acc[:rows, :] into out[i:i+rows, j0:] (k-blocks after the first) and turn
    them into dot products (last k-block)."""
    prefer_wide_vectors()
    ncols = min(_NB, out.shape[1] - j0)
    for r in range(rows):
        row = np.uint64(i + r)
        for c in range(ncols):
            col = np.uint64(j0 + c)
            count = acc[r, c]
            if not first:
                count += out[row, col]
            if last:
                out[row, col] = k - 2 * count
            else:
                out[row, col] = count


@njit(**_JIT)
def _panel_tile(a, b, k, out, j0, i0, i1, kc):
    """out[i0:i1, j0:j0+_NB] (clipped to out): for each k-block of kc words, pack the panel, then
    sweep the row blocks across it."""
    W = a.shape[1]
    tail = tail_mask(k)
    bp = np.empty((min(kc, W), _NB), np.uint64)
    acc = np.empty((4, _NB), np.int64)
    for w0 in range(0, W, kc):
        w1 = min(w0 + kc, W)
        first = w0 == 0
        last = w1 == W
        _pack_panel(b, k, j0, w0, w1, bp)
        i = i0
        # (the row counts passed to _panel_store are computed, not literals: a literal argument
        # makes Numba compile an extra specialization of the callee)
        while i + 4 <= i1:
            acc[:, :] = 0
            _panel_rows4(a, i, bp, w0, w1, tail, acc)
            _panel_store(acc, min(4, i1 - i), out, i, j0, k, first, last)
            i += 4
        while i < i1:
            acc[0, :] = 0
            _panel_rows1(a, i, bp, w0, w1, tail, acc)
            _panel_store(acc, min(1, i1 - i), out, i, j0, k, first, last)
            i += 1


# ----------------------------------------------------------------------------------------------
# drivers


@njit(**_JIT)
def _tile_count(a, b, direct, row_chunks, col_chunks):
    if direct:
        return row_chunks * col_chunks
    return (b.shape[0] + _NB - 1) // _NB * row_chunks


@njit(**_JIT)
def _run_tile(a, b, k, out, direct, kc, t, row_chunks, col_chunks):
    """Tile t of out.  Direct kernels: the (t // col_chunks)-th of row_chunks ranges of rows times
    the (t % col_chunks)-th of col_chunks ranges of columns (multiples of 8).  Panel kernels: panel
    t // row_chunks times the (t % row_chunks)-th of row_chunks ranges of rows (multiples of 4).
    The bounds are computed, so every kernel argument is a runtime int64 (a Literal[int] argument
    would make Numba compile another specialization of the callee)."""
    M = a.shape[0]
    N = b.shape[0]
    if direct:
        ti = t // col_chunks
        tj = t - ti * col_chunks
        groups = (N + 7) // 8
        _direct(a, b, k, out, ti * M // row_chunks, (ti + 1) * M // row_chunks,
                min(N, tj * groups // col_chunks * 8), min(N, (tj + 1) * groups // col_chunks * 8))
    else:
        quads = (M + 3) // 4
        p = t // row_chunks
        r = t - p * row_chunks
        _panel_tile(a, b, k, out, p * _NB, min(M, r * quads // row_chunks * 4),
                    min(M, (r + 1) * quads // row_chunks * 4), kc)


@njit(**_JIT)
def _bgemm_serial(a, b, k, out, direct, kc, row_chunks, col_chunks):
    for t in range(_tile_count(a, b, direct, row_chunks, col_chunks)):
        _run_tile(a, b, k, out, direct, kc, t, row_chunks, col_chunks)


@njit(parallel=True, **_JIT)
def _bgemm_parallel(a, b, k, out, direct, kc, row_chunks, col_chunks):
    # Each tile allocates its own scratch inside _panel_tile (never hoisted out of the prange).
    # The prange index is unsigned: cast it, or _run_tile gets compiled a second time.
    for t in prange(_tile_count(a, b, direct, row_chunks, col_chunks)):
        _run_tile(a, b, k, out, direct, kc, np.int64(t), row_chunks, col_chunks)


def max_threads():
    return numba.config.NUMBA_NUM_THREADS


def bgemm(a, b, k, out, num_threads):
    """out[i, j] = k - 2 * popcount(a[i] XOR b[j]) over the k valid bits (arrays pre-validated)."""
    m, words = a.shape
    n = b.shape[0]
    k = int(k)
    kc = words if words <= _KC + _KC // 2 else _KC
    direct = m <= _DIRECT_MAX_M or n <= _DIRECT_MAX_N
    threads = min(int(num_threads), max_threads(), max(1, m * n * words // _MIN_WORK_PER_THREAD))
    if threads > 1 and parallel_ok:
        want = 4 * threads  # tiles: enough for an even share
        if direct:
            col_chunks = min(want, (n + 7) // 8)
            row_chunks = min(m, -(-want // col_chunks))
            tiles = row_chunks * col_chunks
        else:
            # every row chunk re-packs its panels: split rows only when panels are few
            panels = (n + _NB - 1) // _NB
            row_chunks = min((m + 3) // 4, -(-want // panels))
            col_chunks = 1
            tiles = panels * row_chunks
        if tiles < 2:
            threads = 1
    if threads > 1 and parallel_ok and parallel_lock.acquire(blocking=False):
        try:
            previous = numba.get_num_threads()
            if previous != threads:
                numba.set_num_threads(threads)
            try:
                _bgemm_parallel(a, b, k, out, direct, kc, row_chunks, col_chunks)
            finally:
                if previous != threads:
                    numba.set_num_threads(previous)
        finally:
            parallel_lock.release()
    else:
        _bgemm_serial(a, b, k, out, direct, kc, 1, 1)
    return out


# ----------------------------------------------------------------------------------------------
# pack / unpack


@njit(inline="always")
def _f16_is_negative(u):
    # u: the uint16 bits of a float16.  Negative iff the sign is set and the magnitude is in
    # (0, 0x7c00]: -0.0 (0x8000) and the NaNs (magnitude > 0x7c00) are not.
    v = np.int64(u)
    return (v > 0x8000) & (v <= 0xFC00)


@njit(**_JIT)
def _pack_range(x, out, r0, r1):
    prefer_wide_vectors()
    k = x.shape[1]
    full = k // 64
    for r in range(r0, r1):
        row = np.uint64(r)
        for w in range(full):
            base = w * 64
            bits = np.uint64(0)
            for i in range(64):
                if x[row, np.uint64(base + i)] < 0:
                    bits |= np.uint64(1) << np.uint64(i)
            out[row, np.uint64(w)] = bits
        if full * 64 < k:
            base = full * 64
            bits = np.uint64(0)
            for i in range(k - base):
                if x[row, np.uint64(base + i)] < 0:
                    bits |= np.uint64(1) << np.uint64(i)
            out[row, np.uint64(full)] = bits


@njit(**_JIT)
def _pack_range_f16(x, out, r0, r1):
    """As _pack_range for x = the uint16 view of a float16 array."""
    prefer_wide_vectors()
    k = x.shape[1]
    full = k // 64
    for r in range(r0, r1):
        row = np.uint64(r)
        for w in range(full):
            base = w * 64
            bits = np.uint64(0)
            for i in range(64):
                if _f16_is_negative(x[row, np.uint64(base + i)]):
                    bits |= np.uint64(1) << np.uint64(i)
            out[row, np.uint64(w)] = bits
        if full * 64 < k:
            base = full * 64
            bits = np.uint64(0)
            for i in range(k - base):
                if _f16_is_negative(x[row, np.uint64(base + i)]):
                    bits |= np.uint64(1) << np.uint64(i)
            out[row, np.uint64(full)] = bits


@njit(**_JIT)
def _pack_serial(x, out, chunks):
    rows = x.shape[0]
    for c in range(chunks):
        _pack_range(x, out, c * rows // chunks, (c + 1) * rows // chunks)


@njit(parallel=True, **_JIT)
def _pack_parallel(x, out, chunks):
    rows = x.shape[0]
    for c in prange(chunks):
        _pack_range(x, out, c * rows // chunks, (c + 1) * rows // chunks)


@njit(**_JIT)
def _pack_serial_f16(x, out, chunks):
    rows = x.shape[0]
    for c in range(chunks):
        _pack_range_f16(x, out, c * rows // chunks, (c + 1) * rows // chunks)


@njit(parallel=True, **_JIT)
def _pack_parallel_f16(x, out, chunks):
    rows = x.shape[0]
    for c in prange(chunks):
        _pack_range_f16(x, out, c * rows // chunks, (c + 1) * rows // chunks)


@njit(**_JIT)
def _unpack_range(words, k, out, r0, r1):
    prefer_wide_vectors()
    full = k // 64
    plus = np.float32(1.0)
    minus = np.float32(-1.0)
    one = np.uint64(1)
    for r in range(r0, r1):
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


@njit(**_JIT)
def _unpack_serial(words, k, out, chunks):
    rows = out.shape[0]
    for c in range(chunks):
        _unpack_range(words, k, out, c * rows // chunks, (c + 1) * rows // chunks)


@njit(parallel=True, **_JIT)
def _unpack_parallel(words, k, out, chunks):
    rows = out.shape[0]
    for c in prange(chunks):
        _unpack_range(words, k, out, c * rows // chunks, (c + 1) * rows // chunks)


def _run_rows(serial, parallel, size, rows, *args):
    """Call parallel(*args, chunks) on the calling thread's Numba thread count when the job is big
    enough and no other parallel call is running, else serial(*args, 1)."""
    if (size >= _PACK_PARALLEL_MIN and rows >= 2 and parallel_ok
            and parallel_lock.acquire(blocking=False)):
        try:
            threads = min(numba.get_num_threads(), rows)
            if threads > 1:
                parallel(*args, threads)
                return
        finally:
            parallel_lock.release()
    serial(*args, 1)


def pack_rows(x, out):
    """Pack a C-contiguous (rows, k) array into out (rows, ceil(k/64)) uint64 (pre-validated)."""
    rows, k = x.shape
    if rows == 0 or k == 0:
        return out
    if x.dtype == np.float16:
        _run_rows(_pack_serial_f16, _pack_parallel_f16, x.size, rows, x.view(np.uint16), out)
    else:
        _run_rows(_pack_serial, _pack_parallel, x.size, rows, x, out)
    return out


def unpack_rows(words, k, out):
    """Unpack (rows, ceil(k/64)) uint64 words into out (rows, k) float32 +1/-1 (pre-validated)."""
    rows = out.shape[0]
    k = int(k)
    if rows == 0 or k == 0:
        return out
    _run_rows(_unpack_serial, _unpack_parallel, rows * k, rows, words, k, out)
    return out


# ----------------------------------------------------------------------------------------------


def info():
    """Backend description: Numba version, threading layer (None until a parallel call ran)."""
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel region has run yet
        layer = None
    return {"backend": "numba", "numba_version": numba.__version__,
            "threading_layer": layer, "max_threads": max_threads(),
            "vector_width": 512 if _WIDE_VECTORS else None}
