"""Plain numpy references, written independently of xnorinfer: the tests compare every path with these."""
import numpy as np


def pack_ref(x):
    """x < 0 -> bit 1; little bit order within each uint64 word; tail bits 0."""
    x = np.asarray(x)
    k = x.shape[-1]
    words = (k + 63) // 64
    bits = np.zeros(x.shape[:-1] + (words * 64,), dtype=np.uint8)
    bits[..., :k] = x < 0
    packed = np.packbits(bits, axis=-1, bitorder="little")
    return np.ascontiguousarray(packed).view("<u8").astype(np.uint64)


def unpack_ref(words, k):
    """uint64 words -> +-1 int64 values, ignoring bits past k."""
    as_bytes = np.ascontiguousarray(words.astype("<u8")).view(np.uint8)
    bits = np.unpackbits(as_bytes, axis=-1, bitorder="little")[..., :k]
    return 1 - 2 * bits.astype(np.int64)


def bgemm_ref(a_words, b_words, k):
    return (unpack_ref(a_words, k) @ unpack_ref(b_words, k).T).astype(np.int32)


def random_words(rng, rows, k, garbage_tail=True):
    """Random packed rows; with garbage_tail the bits past k are random too (kernels must ignore them)."""
    words = rng.integers(0, 2**64, size=(rows, (k + 63) // 64), dtype=np.uint64)
    if not garbage_tail and k % 64:
        words[:, -1] &= np.uint64((1 << (k % 64)) - 1)
    return words


def conv_ref(x_pm1, w_pm1, stride, padding, dilation, groups, pad_value):
    """Direct convolution of +-1 integer arrays: x (N, H, W, C), w (O, KH, KW, C/groups); padding is
    (top, bottom, left, right) filled with pad_value (0 or 1).  Returns int64 (N, OH, OW, O)."""
    n, h, w, c = x_pm1.shape
    o, kh, kw, cg = w_pm1.shape
    (sh, sw), (dh, dw), (top, bottom, left, right) = stride, dilation, padding
    xp = np.pad(x_pm1.astype(np.int64), ((0, 0), (top, bottom), (left, right), (0, 0)),
                constant_values=pad_value)
    oh = (h + top + bottom - dh * (kh - 1) - 1) // sh + 1
    ow = (w + left + right - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, oh, ow, o), np.int64)
    og = o // groups
    for ky in range(kh):
        for kx in range(kw):
            patch = xp[:, ky * dh: ky * dh + sh * (oh - 1) + 1: sh, kx * dw: kx * dw + sw * (ow - 1) + 1: sw, :]
            for g in range(groups):
                out[..., g * og:(g + 1) * og] += np.einsum(
                    "nhwc,oc->nhwo", patch[..., g * cg:(g + 1) * cg], w_pm1[g * og:(g + 1) * og, ky, kx, :].astype(np.int64))
    return out


def maxpool_ref(x_pm1, kernel, stride, padding, dilation):
    """Max-pooling of +-1 values, padded taps ignored (an all-padding window gives -1)."""
    n, h, w, c = x_pm1.shape
    (kh, kw), (sh, sw), (dh, dw), (top, bottom, left, right) = kernel, stride, dilation, padding
    xp = np.pad(x_pm1.astype(np.int64), ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=-1)
    oh = (h + top + bottom - dh * (kh - 1) - 1) // sh + 1
    ow = (w + left + right - dw * (kw - 1) - 1) // sw + 1
    out = np.full((n, oh, ow, c), -1, np.int64)
    for ky in range(kh):
        for kx in range(kw):
            out = np.maximum(out, xp[:, ky * dh: ky * dh + sh * (oh - 1) + 1: sh,
                                     kx * dw: kx * dw + sw * (ow - 1) + 1: sw, :])
    return out


def transform_ref(acc, output, scale=None, bias=None, clamp=None):
    """What the fused output transform must produce from int accumulators, in plain float32 numpy."""
    if output == "int32":
        return acc.astype(np.int32)
    v = acc.astype(np.float32)
    if scale is not None:
        v = v * np.asarray(scale, np.float32)
    if bias is not None:
        v = v + np.asarray(bias, np.float32)
    if output == "float32":
        return np.clip(v, *clamp) if clamp is not None else v
    return pack_ref(np.where(v < 0, -1.0, 1.0))
