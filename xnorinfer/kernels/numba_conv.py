"""Numba binary layers: the convolution (and so the dense layer, a 1x1 convolution) with its fused
output transform, and bit max-pooling (csrc/bconv/bconv.c and output.c in C).

Arguments come validated from xnorinfer.layers: x packed NHWC uint64, C-contiguous; w packed OHWI;
out preallocated and C-contiguous; num_threads >= 1.

* Indirect GEMM over output pixels, as in C: for a block of pixels the receptive fields are gathered
  (tap by tap, each tap's channels padded to whole words exactly as the packed OHWI weights are, the
  last word of each tap masked so that garbage tail bits in x never count) into a small buffer, once
  per pixel, and run against all the output channels; no im2col of the whole input.  A channel group
  whose channels do not start on a word boundary is gathered with shifts.
* The dot products are numba_core's micro-kernels, the ones GEMM runs: the weights are prepared once
  per layer (prepare_bconv) with each tap's padding bits cleared, packed into NB = 64-channel panels by
  numba_core.pack_panel, and swept by the gathered rows (numba_core.panel_block); groups with few
  output channels (<= _DIRECT_MAX_OG, where a panel would be mostly padding, e.g. depthwise
  convolutions) keep their masked weight rows for numba_core.direct_block.  Rows of more than 1.5 * 1024
  words are cut into k-blocks so that the panel stays in L2.
* Padding: a padded tap is gathered as 0 bits, i.e. +1 values, exact for pad_value 1; for pad_value 0
  the per-tap sums of the +-1 weights (prepared once) of every padded tap are subtracted from the
  accumulator, only on border pixels.
* The output transform (_output_rows), for a block of pixels while their accumulators are in L1,
  straight into `out`; one compiled kernel serves the three kinds (the two unused outputs are empty
  arrays), so a layer costs one compilation:
    int32    acc;
    float32  acc clamped to the accumulator clamp, float32(acc) * scale, rounded, + bias, rounded,
             + residual (a fused shortcut), rounded, then clamped with NaN passing through.  Numba emits
             separate fmul / fadd without fast-math flags, so LLVM never contracts them into an FMA;
             absent scale / bias are skipped, not replaced by 1 and 0 (x + 0.0 would turn -0.0 into
             +0.0);
    packed   bit o = (acc < thresholds[o]) XOR flip[o], tail bits 0.
* Threads: output pixels are cut into about 4 chunks per thread (multiples of 4 pixels), each with its
  own scratch, for numba_core.run_chunks.
"""
import numpy as np
from numba import njit, prange

from .numba_core import (JIT, NB, direct_block, k_block, pack_panel, panel_block, prefer_wide_vectors,
                         run_chunks, tail_mask, threads_for)

__all__ = ["PreparedConv", "prepare_bconv", "plan", "bconv2d", "bmaxpool2d"]

_DIRECT_MAX_OG = 16              # output channels per group up to which the direct kernel is used
_BLOCK_ROW_BYTES = 16 * 1024     # gathered rows of a pixel block (as in C)
_BLOCK_ACC_BYTES = 32 * 1024     # its int32 accumulators

# The geometry as an int64 vector (one Numba type whatever the layer): indices into it.
(_BATCH, _IN_H, _IN_W, _IN_C, _OUT_C, _KH, _KW, _SH, _SW, _DH, _DW, _PT, _PL, _GROUPS, _OUT_H, _OUT_W,
 _PER_IMAGE, _CG, _OG, _WPT, _XW, _KWORDS, _K, _KC, _MC, _PPG, _DIRECT, _NPARAMS) = range(28)

_EMPTY_U64_1 = np.empty(0, np.uint64)
_EMPTY_U64_2 = np.empty((0, 0), np.uint64)
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
    p[_PER_IMAGE] = p[_OUT_H] * p[_OUT_W]
    groups = g["groups"]
    cg, og = g["in_c"] // groups, g["out_c"] // groups
    taps = g["kernel_h"] * g["kernel_w"]
    p[_CG], p[_OG], p[_WPT], p[_XW] = cg, og, _words(cg), _words(g["in_c"])
    p[_KWORDS], p[_K] = taps * _words(cg), taps * cg
    p[_KC] = k_block(int(p[_KWORDS]))
    p[_PPG] = (og + NB - 1) // NB
    p[_DIRECT] = og <= _DIRECT_MAX_OG
    by_rows = _BLOCK_ROW_BYTES // (groups * p[_KWORDS] * 8)
    by_acc = _BLOCK_ACC_BYTES // (g["out_c"] * 4)
    mc = min(by_rows, by_acc, 256)
    p[_MC] = 4 if mc < 4 else mc - mc % 4
    return p


# ----------------------------------------------------------------------------------------------
# weights


class PreparedConv:
    """A layer's weights for the Numba kernels: panels (groups * panels_per_group * kwords, NB), panel q's
    word w at row q * kwords + w, or, for groups with few output channels, masked rows (out_c, kwords);
    tap_sums (taps, out_c) int32 for pad_value 0 with padding, else None."""

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
        return PreparedConv(_EMPTY_U64_2, rows, tap_sums)
    ppg = (og + NB - 1) // NB
    panels = np.empty((groups * ppg * kwords, NB), np.uint64)
    no_tail = ~np.uint64(0)  # the taps' padding bits are already cleared
    for g in range(groups):
        for q in range(ppg):
            at = (g * ppg + q) * kwords
            pack_panel(rows[g * og:(g + 1) * og], no_tail, q * NB, 0, kwords, panels[at:at + kwords])
    return PreparedConv(panels, _EMPTY_U64_2, tap_sums)


# ----------------------------------------------------------------------------------------------
# kernels (arrays passed whole with indices, never as views made in a loop: see numba_core)


@njit(**JIT)
def _window(p, pix):
    """Output pixel pix's image, and the input row and column of its window's top-left tap (negative
    in the padding)."""
    out_w = p[_OUT_W]
    per_image = p[_PER_IMAGE]
    b = pix // per_image
    rem = pix - b * per_image
    oy = rem // out_w
    return b, oy * p[_SH] - p[_PT], (rem - oy * out_w) * p[_SW] - p[_PL]


@njit(**JIT)
def _gather(x, p, pix, g, rows, row):
    """rows[row, :] = the receptive field of output pixel `pix` for channel group g: tap by tap, wpt
    words each (bits g*cg .. g*cg+cg-1 of the input pixel, the last word masked), padded taps as 0
    words (+1 values)."""
    b, iy0, ix0 = _window(p, pix)
    in_h, in_w, kw, dh, dw = p[_IN_H], p[_IN_W], p[_KW], p[_DH], p[_DW]
    wpt = p[_WPT]
    xw = p[_XW]
    bit0 = g * p[_CG]
    q = bit0 >> 6
    s = bit0 & 63
    up = np.uint64(s)
    down = np.uint64(64 - s)
    mask = tail_mask(p[_CG])
    zero = np.uint64(0)
    ru = np.uint64(row)
    bu = np.uint64(b)
    d = 0
    for ky in range(p[_KH]):
        iy = iy0 + ky * dh
        if iy < 0 or iy >= in_h:
            for i in range(np.uint64(d), np.uint64(d + kw * wpt)):
                rows[ru, i] = zero
            d += kw * wpt
            continue
        yu = np.uint64(iy)
        for kx in range(kw):
            ix = ix0 + kx * dw
            if ix < 0 or ix >= in_w:
                for i in range(np.uint64(d), np.uint64(d + wpt)):
                    rows[ru, i] = zero
            else:
                xu = np.uint64(ix)
                if s == 0:
                    for i in range(wpt):
                        rows[ru, np.uint64(d + i)] = x[bu, yu, xu, np.uint64(q + i)]
                else:
                    for i in range(wpt):
                        v = x[bu, yu, xu, np.uint64(q + i)] >> up
                        if q + i + 1 < xw:
                            v |= x[bu, yu, xu, np.uint64(q + i + 1)] << down
                        rows[ru, np.uint64(d + i)] = v
                rows[ru, np.uint64(d + wpt - 1)] &= mask
            d += wpt


@njit(**JIT)
def _correct_padding(p, pix, tap_sums, acc, r):
    """acc[r, o] -= tap_sums[tap, o] for every padded tap of output pixel pix (pad_value 0)."""
    _, y0, x0 = _window(p, pix)
    in_h, in_w, kh, kw, dh, dw = p[_IN_H], p[_IN_W], p[_KH], p[_KW], p[_DH], p[_DW]
    if y0 >= 0 and x0 >= 0 and y0 + dh * (kh - 1) < in_h and x0 + dw * (kw - 1) < in_w:
        return  # interior pixel
    ru = np.uint64(r)
    n = np.uint64(acc.shape[1])
    for ky in range(kh):
        iy = y0 + ky * dh
        for kx in range(kw):
            ix = x0 + kx * dw
            if iy < 0 or ix < 0 or iy >= in_h or ix >= in_w:
                tap = np.uint64(ky * kw + kx)
                for o in range(np.uint64(0), n):
                    acc[ru, o] -= tap_sums[tap, o]


@njit(**JIT)
def _output_rows(acc, m, row0, params, outs):
    """Output rows row0 .. row0+m-1 from the accumulators acc[:m] through the output transform
    (see the module docstring).  params: (kind, scale, bias, lo, hi, acc_lo, acc_hi, thresholds,
    flip_bits); outs: (residual, out_i32, out_f32, out_u64).  Absent arrays are empty."""
    prefer_wide_vectors()
    kind, scale, bias, lo, hi, acc_lo, acc_hi, thresholds, flip_bits = params
    residual, out_i32, out_f32, out_u64 = outs
    n = acc.shape[1]
    zero = np.uint64(0)
    one = np.uint64(1)
    nu = np.uint64(n)
    has_scale = scale.shape[0] > 0
    has_bias = bias.shape[0] > 0
    has_residual = residual.shape[0] > 0
    for r in range(m):
        ru = np.uint64(r)
        row = np.uint64(row0 + r)
        if kind == 0:
            for o in range(zero, nu):
                out_i32[row, o] = acc[ru, o]
        elif kind == 1:
            for o in range(zero, nu):
                a = acc[ru, o]
                if a < acc_lo:
                    a = acc_lo
                if a > acc_hi:
                    a = acc_hi
                v = np.float32(a)
                if has_scale:
                    v = v * scale[o]
                if has_bias:
                    v = v + bias[o]
                if has_residual:
                    v = v + residual[row, o]
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
                    if acc[ru, o] < thresholds[o]:
                        bits |= one << np.uint64(i)
                out_u64[row, np.uint64(wd)] = bits ^ flip_bits[np.uint64(wd)]


@njit(**JIT)
def _conv_chunk(x, p, panels, wrows, tap_sums, params, outs, t, chunks):
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
    kc = p[_KC]
    k = p[_K]
    direct = p[_DIRECT] != 0
    mc = min(p[_MC], (p1 - p0 + 3) // 4 * 4)
    rows = np.empty((groups * mc, kwords), np.uint64)  # group g's fields at rows g*mc ..
    acc = np.empty((mc, p[_OUT_C]), np.int32)
    scratch = np.empty((4, NB), np.int64)
    no_tail = ~np.uint64(0)  # gathered rows and prepared weights hold no padding bits
    at_row0 = np.int64(0)
    for blk in range(p0, p1, mc):
        m = min(mc, p1 - blk)
        for r in range(m):
            for g in range(groups):
                _gather(x, p, blk + r, g, rows, g * mc + r)
        for g in range(groups):
            if direct:
                direct_block(rows, g * mc, m, no_tail, wrows, g * og, g * og + og, acc, at_row0, k)
                continue
            for q in range(ppg):
                at = (g * ppg + q) * kwords
                for w0 in range(0, kwords, kc):
                    w1 = min(w0 + kc, kwords)
                    panel_block(rows, g * mc, m, no_tail, panels, at + w0, w0, w1, scratch, acc, at_row0,
                                g * og + q * NB, min(NB, og - q * NB), k, w0 == 0, w1 == kwords)
        if tap_sums.shape[0] > 0:
            for r in range(m):
                _correct_padding(p, blk + r, tap_sums, acc, r)
        _output_rows(acc, m, blk, params, outs)


@njit(parallel=True, **JIT)
def _conv_parallel(x, p, panels, wrows, tap_sums, params, outs, chunks):
    # Each chunk allocates its scratch inside _conv_chunk (never hoisted out of the prange).  The
    # prange index is unsigned: cast it, or the body gets compiled a second time.
    for t in prange(chunks):
        _conv_chunk(x, p, panels, wrows, tap_sums, params, outs, np.int64(t), chunks)


@njit(**JIT)
def _pool_chunk(x, p, out, t, chunks):
    """Chunk t of `chunks` of the output pixels of the bit max-pool: AND over the real taps."""
    pixels = p[_BATCH] * p[_OUT_H] * p[_OUT_W]
    in_h, in_w, kh, kw, dh, dw = p[_IN_H], p[_IN_W], p[_KH], p[_KW], p[_DH], p[_DW]
    words = np.uint64(x.shape[3])
    zero = np.uint64(0)
    ones = ~zero
    mask = tail_mask(p[_IN_C])
    for pix in range(t * pixels // chunks, (t + 1) * pixels // chunks):
        b, y0, x0 = _window(p, pix)
        row = np.uint64(pix)
        bu = np.uint64(b)
        for i in range(zero, words):
            out[row, i] = ones  # AND identity: all -1
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


@njit(parallel=True, **JIT)
def _pool_parallel(x, p, out, chunks):
    for t in prange(chunks):
        _pool_chunk(x, p, out, np.int64(t), chunks)


# ----------------------------------------------------------------------------------------------
# drivers


def _transform_params(transform, out_c):
    """The output transform as _output_rows takes it; absent arrays are empty and the accumulator
    clamp, when there is none, is wider than any accumulator."""
    scale, bias, thresholds, flip_bits = _EMPTY_F32_1, _EMPTY_F32_1, _EMPTY_I32_1, _EMPTY_U64_1
    lo = hi = np.float32(0)
    acc_lo, acc_hi = np.int64(-2**62), np.int64(2**62)
    if transform.kind == 1:
        if transform.scale is not None:
            scale = transform.scale
        if transform.bias is not None:
            bias = transform.bias
        lo, hi = np.float32(transform.clamp[0]), np.float32(transform.clamp[1])
        if transform.acc_clamp is not None:
            acc_lo, acc_hi = (np.int64(v) for v in transform.acc_clamp)
    elif transform.kind == 2:
        thresholds = transform.thresholds
        flip_bits = np.zeros(_words(out_c), np.uint64)
        if transform.flip is not None:
            bits = np.zeros(_words(out_c) * 64, np.uint8)
            bits[:out_c] = transform.flip & 1
            flip_bits = np.packbits(bits, bitorder="little").view("<u8").astype(np.uint64)
    return int(transform.kind), scale, bias, lo, hi, acc_lo, acc_hi, thresholds, flip_bits


def plan(prepared, geometry, transform):
    """The layer for one input shape, its geometry and transform converted once: a function
    run(x, out, num_threads, residual=None).  residual (float32 output): an array of out's shape added
    to every value before the clamp, in the same pass (xnor_bconv2d_prepared_add)."""
    p = _params(geometry)
    pixels = int(p[_BATCH] * p[_OUT_H] * p[_OUT_W])
    out_c = int(p[_OUT_C])
    kind = int(transform.kind)
    params = _transform_params(transform, out_c)
    tap_sums = prepared.tap_sums if prepared.tap_sums is not None else _EMPTY_I32_2
    work = pixels * out_c * int(p[_KWORDS])
    quads = (pixels + 3) // 4

    def run(x, out, num_threads, residual=None):
        if pixels == 0:
            return out
        out2 = out.reshape(pixels, out.shape[-1])
        if residual is None:
            residual = _EMPTY_F32_2
        else:
            residual = residual.reshape(pixels, out_c)
            if not residual.flags.writeable:  # another Numba type: the kernel would be compiled again
                residual = residual.copy()
        outs = (residual, out2 if kind == 0 else _EMPTY_I32_2, out2 if kind == 1 else _EMPTY_F32_2,
                out2 if kind == 2 else _EMPTY_U64_2)
        threads = threads_for(num_threads, work)
        run_chunks(_conv_chunk, _conv_parallel, (x, p, prepared.panels, prepared.rows, tap_sums, params, outs),
                   threads, min(4 * threads, quads))
        return out
    return run


def bconv2d(x, prepared, geometry, transform, out, num_threads):
    """Binary convolution of packed NHWC x with prepared weights, the output transform fused."""
    return plan(prepared, geometry, transform)(x, out, num_threads)


def bmaxpool2d(x, geometry, out, num_threads):
    """Bit max-pooling of packed NHWC x: AND over each window's real taps, tail bits 0."""
    p = _params(dict(geometry, out_c=geometry["in_c"], groups=1))
    pixels = int(p[_BATCH] * p[_OUT_H] * p[_OUT_W])
    if pixels == 0:
        return out
    words = x.shape[3]
    # an AND of two words is half the work of a word pair of the conv
    threads = threads_for(num_threads, pixels * words * int(p[_KH] * p[_KW]) // 2)
    run_chunks(_pool_chunk, _pool_parallel, (x, p, out.reshape(pixels, words)), threads, min(4 * threads, pixels))
    return out
