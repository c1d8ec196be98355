"""Numba fallback for the binary layers: convolution (and so the dense layer) and bit max-pooling.

Called by NumbaBackend (numba_backend.py) with arguments xnorinfer.layers has already validated: x is
packed NHWC uint64, C-contiguous; w packed OHWI; out preallocated and C-contiguous; num_threads >= 1.
The results are bit for bit those of the C library (csrc/bconv/bconv.c and output.c), whose
algorithm this follows; see csrc/include/xnorinfer.h for the exact semantics.

Design
------
* Indirect GEMM over output pixels, as in C: for a block of pixels the receptive fields are gathered
  (tap by tap, each tap's channels padded to whole words exactly as the packed OHWI weights are, the
  last word of each tap masked so that garbage tail bits in x never count) into a small buffer, once
  per pixel, and run against all the output channels; no im2col of the whole input.  A channel group
  whose channels do not start on a word boundary is gathered with shifts.
* Weights are prepared once per layer (prepare_bconv): each tap's padding bits cleared, then
  transposed into panels of _NB = 64 output channels, bp[w, c] (a word of each of 64 channels side by
  side).  The micro-kernel sweeps 4 gathered rows across a panel in outer-product form,
  cnt[r, c] += popcount(row_r[w] ^ bp[w, c]), with the innermost loop over the 64 contiguous channels:
  LLVM vectorizes it (VPOPCNTQ with AVX-512) with no horizontal sums, two words per pass.  Panels of
  more than 1.5 * _KC words are cut into k-blocks so the panel stays in L2.  Groups with few output
  channels (<= _DIRECT_MAX_OG, where a 64-wide panel would be mostly padding, e.g. depthwise
  convolutions) use dot products along the row instead, 4 weight rows at a time.
* Popcount is numba_core's LLVM ctpop intrinsic, and every hot loop asks for 512-bit vectors where
  VPOPCNTDQ exists (numba_core.prefer_wide_vectors).  Array indices in the hot loops are uint64: with
  signed indices Numba adds negative-index wraparound, which turns vector loads into gathers.  (Mixing
  int64 and uint64 in arithmetic gives float64 in Numba: indices are computed as int64 and cast.)
* No reference counting in the per-pixel work: arrays are passed whole with indices (rows, r),
  never as views made in a loop (rows[g, r]), and the kernels use error_model="numpy" (integer
  division by zero gives 0 instead of raising).  A function that can raise keeps an atomic
  incref / decref of every array argument at its entry and exit; with views and per-pixel calls
  that cost a fifth of the time of a 56x56x256 convolution.
* Padding: a padded tap is gathered as 0 bits, i.e. +1 values, exact for pad_value 1; for pad_value 0
  the per-tap sums of the +-1 weights (prepared once) of every padded tap are subtracted from the
  accumulator, only on border pixels.
* Fused output transform, for a block of pixels while their accumulators are in L1, straight into
  `out` (int32 / float32 / packed bits): one compiled kernel serves the three kinds (the two unused
  outputs are empty arrays), so the layer costs one compilation.  float32: float32(acc) * scale,
  rounded, + bias, rounded (Numba emits separate fmul / fadd without fast-math flags, so LLVM never
  contracts them into an FMA), then clamped with NaN passing through; absent scale / bias are
  skipped, not replaced by 1 and 0 (x + 0.0 would turn -0.0 into +0.0).  packed: bit o =
  (acc < thresholds[o]) XOR flip[o], tail bits 0.
* Threads: output pixels are cut into about 4 chunks per thread (multiples of 4 pixels) shared by a
  numba.prange loop; each chunk allocates its own scratch.  Small layers (< _MIN_WORK_PER_THREAD word
  pairs per thread) run serially.  Same conventions as numba_gemm: one parallel region at a time, through
  numba_core's lock (a call made while another thread holds it runs serially), serial in a child forked
  after GNU OpenMP ran, numba.set_num_threads restored after the call.
* All functions are nogil and cached (cache=True).  The intrinsics come from numba_core and are
  inlined into this module's cached code: after changing them, clear both modules' caches.
"""
import numba
import numpy as np
from numba import njit, prange

from . import numba_core
from .numba_core import popcount, prefer_wide_vectors, tail_mask

__all__ = ["prepare_bconv", "bconv2d", "bmaxpool2d"]

_JIT = dict(nogil=True, cache=True, error_model="numpy")

_NB = 64                         # panel width: output channels per pass of the micro-kernel
_KC = 1024                       # words per k-block; rows of at most 1.5 * _KC words are not split
_DIRECT_MAX_OG = 16              # output channels per group up to which dot products are used
_BLOCK_ROW_BYTES = 16 * 1024     # gathered rows of a pixel block (as in C)
_BLOCK_ACC_BYTES = 32 * 1024     # its int32 accumulators
_MIN_WORK_PER_THREAD = 1 << 15   # word pairs per thread below which a conv runs serially (pool: twice
                                 # as many words ANDed), as in C

# The geometry as an int64 vector (one Numba type whatever the layer): indices into it.
(_BATCH, _IN_H, _IN_W, _IN_C, _OUT_C, _KH, _KW, _SH, _SW, _DH, _DW, _PT, _PL, _GROUPS, _OUT_H, _OUT_W,
 _CG, _OG, _WPT, _XW, _KWORDS, _K, _MC, _PPG, _DIRECT, _NPARAMS) = range(26)

_EMPTY_U64_1 = np.empty(0, np.uint64)
_EMPTY_U64_2 = np.empty((0, 0), np.uint64)
_EMPTY_U64_3 = np.empty((0, 0, 0), np.uint64)
_EMPTY_I32_1 = np.empty(0, np.int32)
_EMPTY_I32_2 = np.empty((0, 0), np.int32)
_EMPTY_F32_1 = np.empty(0, np.float32)
_EMPTY_F32_2 = np.empty((0, 0), np.float32)


def _words(n):
    return (n + 63) // 64


def _tail_mask_py(n):
    return np.uint64((1 << (n % 64)) - 1) if n % 64 else ~np.uint64(0)


def _output_size(g):
    span_h = g["dilation_h"] * (g["kernel_h"] - 1) + 1
    span_w = g["dilation_w"] * (g["kernel_w"] - 1) + 1
    return ((g["in_h"] + g["pad_top"] + g["pad_bottom"] - span_h) // g["stride_h"] + 1,
            (g["in_w"] + g["pad_left"] + g["pad_right"] - span_w) // g["stride_w"] + 1)


def _params(g):
    """The geometry vector of a layer call (see the index constants above)."""
    p = np.zeros(_NPARAMS, np.int64)
    for index, key in ((_BATCH, "batch"), (_IN_H, "in_h"), (_IN_W, "in_w"), (_IN_C, "in_c"),
                       (_OUT_C, "out_c"), (_KH, "kernel_h"), (_KW, "kernel_w"), (_SH, "stride_h"),
                       (_SW, "stride_w"), (_DH, "dilation_h"), (_DW, "dilation_w"), (_PT, "pad_top"),
                       (_PL, "pad_left"), (_GROUPS, "groups")):
        p[index] = g[key]
    p[_OUT_H], p[_OUT_W] = _output_size(g)
    groups = g["groups"]
    cg, og = g["in_c"] // groups, g["out_c"] // groups
    taps = g["kernel_h"] * g["kernel_w"]
    p[_CG], p[_OG], p[_WPT], p[_XW] = cg, og, _words(cg), _words(g["in_c"])
    p[_KWORDS], p[_K] = taps * _words(cg), taps * cg
    p[_PPG] = (og + _NB - 1) // _NB
    p[_DIRECT] = og <= _DIRECT_MAX_OG
    by_rows = _BLOCK_ROW_BYTES // (groups * p[_KWORDS] * 8)
    by_acc = _BLOCK_ACC_BYTES // (g["out_c"] * 4)
    mc = min(by_rows, by_acc, 256)
    p[_MC] = 4 if mc < 4 else mc - mc % 4
    return p


# ----------------------------------------------------------------------------------------------
# weights


class PreparedConv:
    """A layer's weights for the Numba kernels: panels (groups * panels_per_group, kwords, _NB) or,
    for groups with few output channels, masked rows (out_c, kwords); tap_sums (taps, out_c) int32
    for pad_value 0 with padding, else None."""

    __slots__ = ("panels", "rows", "tap_sums")

    def __init__(self, panels, rows, tap_sums):
        self.panels, self.rows, self.tap_sums = panels, rows, tap_sums


def prepare_bconv(w, geometry):
    out_c, kh, kw, wpt = w.shape
    groups = geometry["groups"]
    cg, og = geometry["in_c"] // groups, out_c // groups
    taps, kwords = kh * kw, kh * kw * wpt
    masked = w.reshape(out_c, taps, wpt).copy()
    masked[:, :, wpt - 1] &= _tail_mask_py(cg)  # each tap's padding bits may hold anything
    padded = any(geometry[k] for k in ("pad_top", "pad_bottom", "pad_left", "pad_right"))
    tap_sums = None
    if geometry["pad_value"] == 0 and padded:
        # (out_c, taps): the -1 weights of each tap (unpackbits: np.bitwise_count needs numpy 2)
        minus = np.unpackbits(masked.view(np.uint8), axis=2).sum(axis=2, dtype=np.int32)
        tap_sums = np.ascontiguousarray((cg - 2 * minus).T.astype(np.int32))
    rows = masked.reshape(out_c, kwords)
    if og <= _DIRECT_MAX_OG:
        return PreparedConv(_EMPTY_U64_3, rows, tap_sums)
    ppg = (og + _NB - 1) // _NB
    panels = np.zeros((groups, ppg * _NB, kwords), np.uint64)
    panels[:, :og, :] = rows.reshape(groups, og, kwords)
    panels = np.ascontiguousarray(panels.reshape(groups * ppg, _NB, kwords).transpose(0, 2, 1))
    return PreparedConv(panels, _EMPTY_U64_2, tap_sums)


# ----------------------------------------------------------------------------------------------
# kernels (arrays passed whole with indices, never as views made in a loop: see the docstring)


@njit(**_JIT)
def _gather(x, p, pix, g, rows, r):
    """rows[g, r, :] = the receptive field of output pixel `pix` for channel group g: tap by tap,
    wpt words each (bits g*cg .. g*cg+cg-1 of the input pixel, the last word masked), padded taps
    as 0 words (+1 values)."""
    out_h = p[_OUT_H]
    out_w = p[_OUT_W]
    per_image = out_h * out_w
    b = pix // per_image
    rem = pix - b * per_image
    oy = rem // out_w
    ox = rem - oy * out_w
    in_h = p[_IN_H]
    in_w = p[_IN_W]
    kw = p[_KW]
    dh = p[_DH]
    dw = p[_DW]
    wpt = p[_WPT]
    xw = p[_XW]
    bit0 = g * p[_CG]
    q = bit0 >> 6
    s = bit0 & 63
    up = np.uint64(s)
    down = np.uint64(64 - s)
    mask = tail_mask(p[_CG])
    zero = np.uint64(0)
    gu = np.uint64(g)
    ru = np.uint64(r)
    bu = np.uint64(b)
    iy0 = oy * p[_SH] - p[_PT]
    ix0 = ox * p[_SW] - p[_PL]
    d = 0
    for ky in range(p[_KH]):
        iy = iy0 + ky * dh
        if iy < 0 or iy >= in_h:
            for i in range(np.uint64(d), np.uint64(d + kw * wpt)):
                rows[gu, ru, i] = zero
            d += kw * wpt
            continue
        yu = np.uint64(iy)
        for kx in range(kw):
            ix = ix0 + kx * dw
            if ix < 0 or ix >= in_w:
                for i in range(np.uint64(d), np.uint64(d + wpt)):
                    rows[gu, ru, i] = zero
            else:
                xu = np.uint64(ix)
                if s == 0:
                    for i in range(wpt):
                        rows[gu, ru, np.uint64(d + i)] = x[bu, yu, xu, np.uint64(q + i)]
                else:
                    for i in range(wpt):
                        v = x[bu, yu, xu, np.uint64(q + i)] >> up
                        if q + i + 1 < xw:
                            v |= x[bu, yu, xu, np.uint64(q + i + 1)] << down
                        rows[gu, ru, np.uint64(d + i)] = v
                rows[gu, ru, np.uint64(d + wpt - 1)] &= mask
            d += wpt


@njit(**_JIT)
def _panel_rows4(rows, g, i, panels, q, w0, w1, cnt):
    """cnt[r, c] += popcount(rows[g, i + r, w] ^ panels[q, w, c]) for r < 4, c < _NB,
    w0 <= w < w1; two words per pass halve the loads and stores of cnt."""
    prefer_wide_vectors()
    gu = np.uint64(g)
    pu = np.uint64(q)
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
        x0 = rows[gu, ra0, w]
        x1 = rows[gu, ra1, w]
        x2 = rows[gu, ra2, w]
        x3 = rows[gu, ra3, w]
        z0 = rows[gu, ra0, v]
        z1 = rows[gu, ra1, v]
        z2 = rows[gu, ra2, v]
        z3 = rows[gu, ra3, v]
        for c in range(_NB):
            y = panels[pu, w, c]
            u = panels[pu, v, c]
            cnt[0, c] += popcount(x0 ^ y) + popcount(z0 ^ u)
            cnt[1, c] += popcount(x1 ^ y) + popcount(z1 ^ u)
            cnt[2, c] += popcount(x2 ^ y) + popcount(z2 ^ u)
            cnt[3, c] += popcount(x3 ^ y) + popcount(z3 ^ u)
    if pairs_end < end:
        w = pairs_end
        x0 = rows[gu, ra0, w]
        x1 = rows[gu, ra1, w]
        x2 = rows[gu, ra2, w]
        x3 = rows[gu, ra3, w]
        for c in range(_NB):
            y = panels[pu, w, c]
            cnt[0, c] += popcount(x0 ^ y)
            cnt[1, c] += popcount(x1 ^ y)
            cnt[2, c] += popcount(x2 ^ y)
            cnt[3, c] += popcount(x3 ^ y)


@njit(**_JIT)
def _panel_rows1(rows, g, i, panels, q, w0, w1, cnt):
    """cnt[0, c] += popcount(rows[g, i, w] ^ panels[q, w, c]) for c < _NB, w0 <= w < w1."""
    prefer_wide_vectors()
    gu = np.uint64(g)
    pu = np.uint64(q)
    ra = np.uint64(i)
    for w in range(np.uint64(w0), np.uint64(w1)):
        x = rows[gu, ra, w]
        for c in range(_NB):
            cnt[0, c] += popcount(x ^ panels[pu, w, c])


@njit(**_JIT)
def _store_counts(cnt, nrows, counts, i, col0, ncols, first):
    """counts[i + r, col0 + c] (=, or += after the first k-block) cnt[r, c], r < nrows, c < ncols."""
    prefer_wide_vectors()
    for r in range(nrows):
        row = np.uint64(i + r)
        rr = np.uint64(r)
        if first:
            for c in range(ncols):
                counts[row, np.uint64(col0 + c)] = cnt[rr, np.uint64(c)]
        else:
            for c in range(ncols):
                counts[row, np.uint64(col0 + c)] += cnt[rr, np.uint64(c)]


@njit(**_JIT)
def _direct_rows(rows, g, m, wr, o0, og, counts):
    """counts[i, o0 + j] = popcount(rows[g, i] ^ wr[o0 + j]) for i < m, j < og: dot products along
    the row, 4 weight rows per pass."""
    prefer_wide_vectors()
    gu = np.uint64(g)
    n = np.uint64(rows.shape[2])
    zero = np.uint64(0)
    for i in range(m):
        ri = np.uint64(i)
        j = 0
        while j + 4 <= og:
            r0 = np.uint64(o0 + j)
            r1 = np.uint64(o0 + j + 1)
            r2 = np.uint64(o0 + j + 2)
            r3 = np.uint64(o0 + j + 3)
            s0 = s1 = s2 = s3 = 0
            for w in range(zero, n):
                xv = rows[gu, ri, w]
                s0 += popcount(xv ^ wr[r0, w])
                s1 += popcount(xv ^ wr[r1, w])
                s2 += popcount(xv ^ wr[r2, w])
                s3 += popcount(xv ^ wr[r3, w])
            counts[ri, r0] = s0
            counts[ri, r1] = s1
            counts[ri, r2] = s2
            counts[ri, r3] = s3
            j += 4
        while j < og:
            r0 = np.uint64(o0 + j)
            s0 = 0
            for w in range(zero, n):
                s0 += popcount(rows[gu, ri, w] ^ wr[r0, w])
            counts[ri, r0] = s0
            j += 1


@njit(**_JIT)
def _correct_padding(p, pix, tap_sums, counts, r):
    """counts[r, o] -= tap_sums[tap, o] for every padded tap of output pixel pix (pad_value 0)."""
    out_h = p[_OUT_H]
    out_w = p[_OUT_W]
    rem = pix % (out_h * out_w)
    oy = rem // out_w
    ox = rem - oy * out_w
    in_h = p[_IN_H]
    in_w = p[_IN_W]
    kh = p[_KH]
    kw = p[_KW]
    dh = p[_DH]
    dw = p[_DW]
    y0 = oy * p[_SH] - p[_PT]
    x0 = ox * p[_SW] - p[_PL]
    if y0 >= 0 and x0 >= 0 and y0 + dh * (kh - 1) < in_h and x0 + dw * (kw - 1) < in_w:
        return  # interior pixel
    ru = np.uint64(r)
    n = np.uint64(counts.shape[1])
    for ky in range(kh):
        iy = y0 + ky * dh
        for kx in range(kw):
            ix = x0 + kx * dw
            if iy < 0 or ix < 0 or iy >= in_h or ix >= in_w:
                tap = np.uint64(ky * kw + kx)
                for o in range(np.uint64(0), n):
                    counts[ru, o] -= tap_sums[tap, o]


@njit(**_JIT)
def _finish(p, blk, m, counts, tap_sums, kind, scale, bias, lo, hi, acc_lo, acc_hi, thresholds, flip_bits,
            out_i32, out_f32, out_u64):
    """Output pixels blk .. blk+m-1 from their popcounts counts[:m]: acc = k - 2 * count, the
    padding correction, then the output transform into their rows of the output."""
    prefer_wide_vectors()
    n = counts.shape[1]
    k = p[_K]
    zero = np.uint64(0)
    nu = np.uint64(n)
    correct = tap_sums.shape[0] > 0
    has_scale = scale.shape[0] > 0
    has_bias = bias.shape[0] > 0
    one = np.uint64(1)
    for r in range(m):
        ru = np.uint64(r)
        row = np.uint64(blk + r)
        for o in range(zero, nu):
            counts[ru, o] = k - 2 * counts[ru, o]
        if correct:
            _correct_padding(p, blk + r, tap_sums, counts, r)
        if kind == 0:
            for o in range(zero, nu):
                out_i32[row, o] = counts[ru, o]
        elif kind == 1:
            for o in range(zero, nu):
                a = counts[ru, o]
                if a < acc_lo:
                    a = acc_lo
                if a > acc_hi:
                    a = acc_hi
                v = np.float32(a)
                if has_scale:
                    v = v * scale[o]
                if has_bias:
                    v = v + bias[o]
                if v < lo:  # comparisons are false for NaN: NaN passes through
                    v = lo
                if v > hi:
                    v = hi
                out_f32[row, o] = v
        else:
            for wd in range((n + 63) // 64):
                base = wd * 64
                bits = zero
                for i in range(min(64, n - base)):
                    o = np.uint64(base + i)
                    if counts[ru, o] < thresholds[o]:
                        bits |= one << np.uint64(i)
                out_u64[row, np.uint64(wd)] = bits ^ flip_bits[np.uint64(wd)]


@njit(**_JIT)
def _conv_chunk(x, p, panels, wrows, tap_sums, kind, scale, bias, lo, hi, acc_lo, acc_hi, thresholds, flip_bits,
                out_i32, out_f32, out_u64, t, chunks):
    """Chunk t of `chunks` (ranges of whole quads of output pixels) of the convolution."""
    pixels = p[_BATCH] * p[_OUT_H] * p[_OUT_W]
    quads = (pixels + 3) // 4
    p0 = t * quads // chunks * 4
    p1 = min(pixels, (t + 1) * quads // chunks * 4)
    if p0 >= p1:
        return
    groups = p[_GROUPS]
    og = p[_OG]
    ppg = p[_PPG]
    kwords = p[_KWORDS]
    direct = p[_DIRECT] != 0
    mc = min(p[_MC], (p1 - p0 + 3) // 4 * 4)
    kc = kwords if kwords <= _KC + _KC // 2 else _KC
    rows = np.empty((groups, mc, kwords), np.uint64)
    counts = np.empty((mc, p[_OUT_C]), np.int32)
    cnt = np.empty((4, _NB), np.int64)
    for blk in range(p0, p1, mc):
        m = min(mc, p1 - blk)
        m4 = m - m % 4
        for r in range(m):
            for g in range(groups):
                _gather(x, p, blk + r, g, rows, r)
        for g in range(groups):
            if direct:
                _direct_rows(rows, g, m, wrows, g * og, og, counts)
                continue
            for qq in range(ppg):
                q = g * ppg + qq
                col0 = g * og + qq * _NB
                ncols = min(_NB, og - qq * _NB)
                for w0 in range(0, kwords, kc):
                    w1 = min(w0 + kc, kwords)
                    first = w0 == 0
                    # (every argument is a runtime value, not a literal such as a first i = 0 or
                    # a row count of 4: a Literal[int] argument makes Numba compile another
                    # specialization of the callee)
                    for i in range(0, m4, 4):
                        cnt[:, :] = 0
                        _panel_rows4(rows, g, i, panels, q, w0, w1, cnt)
                        _store_counts(cnt, min(4, m - i), counts, i, col0, ncols, first)
                    for i in range(m4, m):
                        cnt[0, :] = 0
                        _panel_rows1(rows, g, i, panels, q, w0, w1, cnt)
                        _store_counts(cnt, min(1, m - i), counts, i, col0, ncols, first)
        _finish(p, blk, m, counts, tap_sums, kind, scale, bias, lo, hi, acc_lo, acc_hi, thresholds, flip_bits, out_i32,
                out_f32, out_u64)


@njit(parallel=True, **_JIT)
def _conv_parallel(x, p, panels, wrows, tap_sums, kind, scale, bias, lo, hi, acc_lo, acc_hi, thresholds, flip_bits,
                   out_i32, out_f32, out_u64, chunks):
    # Each chunk allocates its scratch inside _conv_chunk (never hoisted out of the prange).  The
    # prange index is unsigned: cast it, or _conv_chunk gets compiled a second time.
    for t in prange(chunks):
        _conv_chunk(x, p, panels, wrows, tap_sums, kind, scale, bias, lo, hi, acc_lo, acc_hi, thresholds, flip_bits,
                    out_i32, out_f32, out_u64, np.int64(t), chunks)


@njit(**_JIT)
def _pool_chunk(x, p, out, t, chunks):
    """Chunk t of `chunks` of the output pixels of the bit max-pool: AND over the real taps."""
    pixels = p[_BATCH] * p[_OUT_H] * p[_OUT_W]
    out_h = p[_OUT_H]
    out_w = p[_OUT_W]
    in_h = p[_IN_H]
    in_w = p[_IN_W]
    kh = p[_KH]
    kw = p[_KW]
    dh = p[_DH]
    dw = p[_DW]
    words = np.uint64(x.shape[3])
    zero = np.uint64(0)
    ones = ~zero
    mask = tail_mask(p[_IN_C])
    per_image = out_h * out_w
    for pix in range(t * pixels // chunks, (t + 1) * pixels // chunks):
        b = pix // per_image
        rem = pix - b * per_image
        oy = rem // out_w
        ox = rem - oy * out_w
        row = np.uint64(pix)
        bu = np.uint64(b)
        for i in range(zero, words):
            out[row, i] = ones  # AND identity: all -1
        y0 = oy * p[_SH] - p[_PT]
        x0 = ox * p[_SW] - p[_PL]
        for ky in range(kh):
            iy = y0 + ky * dh
            if iy < 0 or iy >= in_h:
                continue
            yu = np.uint64(iy)
            for kx in range(kw):
                ix = x0 + kx * dw
                if ix < 0 or ix >= in_w:
                    continue
                xu = np.uint64(ix)
                for i in range(zero, words):
                    out[row, i] &= x[bu, yu, xu, i]
        out[row, words - np.uint64(1)] &= mask


@njit(parallel=True, **_JIT)
def _pool_parallel(x, p, out, chunks):
    for t in prange(chunks):
        _pool_chunk(x, p, out, np.int64(t), chunks)


# ----------------------------------------------------------------------------------------------
# drivers


def _run(serial, parallel, args, threads, units):
    """parallel(*args, chunks) on `threads` threads (about 4 chunks each, at most `units`) when that
    is worth it and no other parallel call is running, else serial(*args, 0, 1)."""
    threads = min(threads, numba_core.max_threads(), units)
    if threads > 1 and numba_core.parallel_ok:
        lock = numba_core.parallel_lock  # looked up at each call: a forked child replaces it
        if lock.acquire(blocking=False):
            try:
                previous = numba.get_num_threads()
                if previous != threads:
                    numba.set_num_threads(threads)
                try:
                    parallel(*args, min(4 * threads, units))
                finally:
                    if previous != threads:
                        numba.set_num_threads(previous)
            finally:
                lock.release()
            return
    serial(*args, 0, 1)


def bconv2d(x, prepared, geometry, transform, out, num_threads):
    """Binary convolution of packed NHWC x with prepared weights, the output transform fused."""
    p = _params(geometry)
    pixels = int(p[_BATCH] * p[_OUT_H] * p[_OUT_W])
    if pixels == 0:
        return out
    out_c = int(p[_OUT_C])
    kind = int(transform.kind)
    out2 = out.reshape(pixels, out.shape[-1])
    out_i32, out_f32, out_u64 = _EMPTY_I32_2, _EMPTY_F32_2, _EMPTY_U64_2
    scale, bias, thresholds, flip_bits = _EMPTY_F32_1, _EMPTY_F32_1, _EMPTY_I32_1, _EMPTY_U64_1
    lo = hi = np.float32(0)
    acc_lo, acc_hi = np.int64(-2**62), np.int64(2**62)
    if kind == 0:
        out_i32 = out2
    elif kind == 1:
        out_f32 = out2
        if transform.scale is not None:
            scale = transform.scale
        if transform.bias is not None:
            bias = transform.bias
        lo, hi = np.float32(transform.clamp[0]), np.float32(transform.clamp[1])
        if getattr(transform, "acc_clamp", None) is not None:
            acc_lo, acc_hi = (np.int64(v) for v in transform.acc_clamp)
    else:
        out_u64 = out2
        thresholds = transform.thresholds
        flip_bits = np.zeros(_words(out_c), np.uint64)
        if transform.flip is not None:
            bits = np.zeros(_words(out_c) * 64, np.uint8)
            bits[:out_c] = transform.flip & 1
            flip_bits = np.packbits(bits, bitorder="little").view("<u8").astype(np.uint64)
    tap_sums = prepared.tap_sums if prepared.tap_sums is not None else _EMPTY_I32_2
    args = (x, p, prepared.panels, prepared.rows, tap_sums, kind, scale, bias, lo, hi, acc_lo, acc_hi,
            thresholds, flip_bits, out_i32, out_f32, out_u64)
    work = pixels * out_c * int(p[_KWORDS])
    threads = min(int(num_threads), max(1, work // _MIN_WORK_PER_THREAD))
    _run(_conv_chunk, _conv_parallel, args, threads, (pixels + 3) // 4)
    return out


def bmaxpool2d(x, geometry, out, num_threads):
    """Bit max-pooling of packed NHWC x: AND over each window's real taps, tail bits 0."""
    p = _params(dict(geometry, out_c=geometry["in_c"], groups=1))
    pixels = int(p[_BATCH] * p[_OUT_H] * p[_OUT_W])
    if pixels == 0:
        return out
    words = x.shape[3]
    work = pixels * words * int(p[_KH] * p[_KW])
    threads = min(int(num_threads), max(1, work // (2 * _MIN_WORK_PER_THREAD)))
    _run(_pool_chunk, _pool_parallel, (x, p, out.reshape(pixels, words)), threads, pixels)
    return out
