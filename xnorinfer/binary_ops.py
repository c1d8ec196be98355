"""Executors of the binary IR ops (XPack, XBConv, XBDense) on numpy arrays, built once per node.

Activations between binary layers are packed NHWC (Packed objects); float tensors stay NCHW as in the
model, so layouts change only at the edges of binary regions.  A ternary sign tensor (ONNX Sign, whose
value is 0 where its input is exactly 0) is packed only when no element is 0; otherwise it keeps its
exact float values and the consumers run in float, so results stay exact either way.
"""
from dataclasses import dataclass

import numpy as np

from . import kernels, ops
from .float_ops import OPS, conv_pads


@dataclass
class Packed:
    words: np.ndarray        # (N, H, W, words) or (N, words); None when `dense` must be used
    channels: int
    dense: np.ndarray = None  # exact float values (NCHW / NC) when the tensor holds true zeros
    values: tuple = (-1.0, 1.0)  # the float values of bit 1 and bit 0

    def to_float(self, dtype=np.float32):
        if self.dense is not None:
            return self.dense
        v = kernels.unpack(self.words, self.channels, np.float32)  # +-1: bit 1 -> -1
        minus, plus = self.values
        if (minus, plus) != (-1.0, 1.0):
            v = np.where(v < 0, np.float32(minus), np.float32(plus))
        if v.ndim == 4:
            v = np.ascontiguousarray(v.transpose(0, 3, 1, 2))
        return v.astype(dtype, copy=False)


def _sign_bits_input(x, minus):
    """An array whose x < 0 pattern is the minus-pattern of x over (x<0, x==0, x>0)."""
    if minus == (True, False, False):
        return x
    neg = (x < 0) & minus[0] | (x == 0) & minus[1] | (x > 0) & minus[2]
    return np.where(neg, np.int8(-1), np.int8(1))


def make_xpack(node, num_threads=None):
    minus, ternary, cases = node.attrs["minus"], node.attrs["ternary"], node.attrs["values"]
    bit1 = next(v for v, m in zip(cases, minus) if m) if any(minus) else -1.0
    bit0 = next((v for v, m in zip(cases, minus) if not m), 1.0)

    def run(x):
        x = np.asarray(x)
        if ternary and np.any(x == 0):
            dense = np.sign(x).astype(np.float32)
            return Packed(None, x.shape[1], dense)
        if x.ndim == 4:
            xt = x.transpose(0, 2, 3, 1)
        elif x.ndim == 2:
            xt = x
        else:
            raise ValueError(f"{node.name}: binary activations must be 2-D or 4-D, got shape {x.shape}")
        return Packed(kernels.pack(_sign_bits_input(xt, minus)), x.shape[1], None, (bit1, bit0))
    return run


def make_xbconv(node, num_threads=None):
    a = node.attrs
    w = a["weights"]                       # (O, C/g, KH, KW), +-s per output channel
    conv = a["conv"]
    groups = conv.get("group", 1)
    w_bits = kernels.pack(np.ascontiguousarray(w.transpose(0, 2, 3, 1)))
    kernel = w.shape[2:]
    strides, dilations = tuple(conv.get("strides", [1, 1])), tuple(conv.get("dilations", [1, 1]))
    layers = {}

    def layer_for(shape):
        pads = conv_pads(shape, conv, kernel, strides, dilations)
        key = (shape[1], pads)
        if key not in layers:
            layers[key] = ops.BConv2d(w_bits, shape[1], stride=strides, padding=pads, dilation=dilations,
                                      groups=groups, pad_value=0, scale=a["scale"], bias=a["bias"], output="float32")
        return layers[key]

    def run(p):
        if p.dense is not None:  # true zeros in the input: the float convolution is exact
            args = [p.dense, w] + ([a["bias"]] if a["bias"] is not None else [])
            return OPS["Conv"](args, conv)[0].astype(np.float32)
        n, h, wd, _ = p.words.shape
        y = layer_for((n, p.channels, h, wd))(p.words, num_threads)
        return np.ascontiguousarray(y.transpose(0, 3, 1, 2))
    return run


def make_xbdense(node, num_threads=None):
    a = node.attrs
    w = a["weights"]                       # (N, K), +-s per row
    k = w.shape[1]
    w_bits = kernels.pack(w)
    transform = ops.make_transform("float32", w.shape[0], k, a["scale"], a["bias"])

    def run(p):
        if p.dense is not None:
            y = p.dense.astype(np.float32) @ w.T.astype(np.float32)
            y = y * 1 if a["bias"] is None else y + a["bias"]
            return y.astype(np.float32)
        if p.words.ndim != 2 or p.channels != k:
            raise ValueError(f"{node.name}: expected packed rows of {k} values, got {p.channels}")
        return ops.bdense(p.words, w_bits, k, scale=transform.scale, bias=transform.bias, output="float32",
                          num_threads=num_threads)
    return run


MAKERS = {"XPack": make_xpack, "XBConv": make_xbconv, "XBDense": make_xbdense}
