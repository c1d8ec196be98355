"""Convolutions, matrix products, pools and Pad.

Float convolutions and dense layers with constant weights are prepared once per node (layers.Conv2d /
layers.Dense: float32 runs in C, other dtypes through numpy's BLAS); NHWC float32 pools run in C.
A node's window is its attributes as the model states them (ONNX `pads` order); `window()` resolves
them for an input size into the one ConvGeometry every consumer uses.
"""
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .. import layers
from ..conv_geometry import AUTO_PADS, ConvGeometry, onnx_pads
from ..errors import ModelError
from ..ir import Attrs, Ints, attr
from ..runtime.program import F32, Unsupported, Val
from .registry import register

MAX_KERNEL = 4096   # kernel size, stride, dilation: a hostile file could otherwise size arrays through them


@dataclass
class WindowAttrs(Attrs):
    """The spatial attributes of a Conv or a pool, as ONNX states them: `pads` is (begin of each axis,
    then end of each axis), (top, left, bottom, right) in 2-D; `auto_pad` (SAME_UPPER, SAME_LOWER,
    VALID) replaces it; omitted strides, dilations and pads are 1, 1 and 0 along each axis.
    nhwc: the node runs on NHWC activations (passes/nhwc.py); its attributes still name (H, W) as ONNX
    orders them."""
    kernel_shape: Optional[Ints] = attr(None, lo=1, hi=MAX_KERNEL)
    strides: Optional[Ints] = attr(None, lo=1, hi=MAX_KERNEL)
    dilations: Optional[Ints] = attr(None, lo=1, hi=MAX_KERNEL)
    pads: Optional[Ints] = attr(None, lo=0, hi=MAX_KERNEL)
    auto_pad: str = attr("NOTSET", choices=AUTO_PADS)
    nhwc: bool = False

    def __post_init__(self):
        ranks = {len(v) for v in (self.kernel_shape, self.strides, self.dilations) if v is not None}
        ranks |= {len(self.pads) / 2} if self.pads is not None else set()
        if len(ranks) > 1:
            raise ModelError(f"kernel_shape {self.kernel_shape}, strides {self.strides}, dilations {self.dilations} "
                             f"and pads {self.pads} disagree on the number of spatial axes")

    @property
    def rank(self):
        """The number of spatial axes the attributes state (2 when they state none)."""
        for v in (self.kernel_shape, self.strides, self.dilations):
            if v is not None:
                return len(v)
        return len(self.pads) // 2 if self.pads is not None else 2

    def steps(self):
        """(strides, dilations), each 1 along an axis the model leaves out."""
        return self.strides or (1,) * self.rank, self.dilations or (1,) * self.rank

    def begin_end_pads(self):
        """ONNX's pads, zeros when the model leaves them out."""
        return self.pads if self.pads is not None else (0,) * (2 * self.rank)

    def window(self, in_hw, kernel=None, ceil_mode=False):
        """The ConvGeometry for an input of in_hw (kernel: the weights', when the node does not say)."""
        kernel = self.kernel_shape or kernel
        if kernel is None or len(kernel) != 2 or len(in_hw) != 2:
            raise ValueError(f"a {len(in_hw)}-D input and a kernel of {kernel}: only 2-D windows are supported")
        strides, dilations = self.steps()
        return ConvGeometry.resolve(in_hw, kernel, strides, dilations, onnx_pads(self.begin_end_pads()), self.auto_pad,
                                    ceil_mode)


@dataclass
class ConvAttrs(WindowAttrs):
    group: int = attr(1, lo=1, hi=1 << 20)


@dataclass
class PoolAttrs(WindowAttrs):
    ceil_mode: int = attr(0, lo=0, hi=1)
    storage_order: int = attr(0, lo=0, hi=1)
    count_include_pad: int = attr(0, lo=0, hi=1)

    def __post_init__(self):
        super().__post_init__()
        if self.kernel_shape is None:
            raise ModelError("a pool needs kernel_shape")

    def window(self, in_hw, kernel=None, ceil_mode=None):
        return WindowAttrs.window(self, in_hw, kernel, bool(self.ceil_mode) if ceil_mode is None else ceil_mode)


def nchw_shape(x, attrs):
    """The NCHW shape of a 4-D operand, whichever layout it is in (see passes/nhwc.py)."""
    return (x.shape[0], x.shape[3], x.shape[1], x.shape[2]) if attrs.nhwc else x.shape


def require_2d(x, name):
    if x.ndim != 4:
        raise ValueError(f"{name}: only 2-D (NCHW) inputs are supported, got shape {x.shape}")


# ---- convolution --------------------------------------------------------------------------------------

class ShapedConv:
    """A Conv node's layers.Conv2d (OHWI weights prepared once) for NHWC inputs, its pads worked out per
    input shape: auto_pad depends on the shape."""

    def __init__(self, w_ohwi, bias, attrs):
        self.attrs, self.kernel = attrs, tuple(w_ohwi.shape[1:3])
        strides, dilations = attrs.steps()
        self.base = layers.Conv2d(w_ohwi, bias, stride=strides, dilation=dilations, groups=attrs.group)
        self.layers = {}
        self.uses_blas = self.base.uses_blas

    def layer_for(self, nhwc_shape):
        layer = self.layers.get(nhwc_shape)
        if layer is None:
            n, h, w, c = nhwc_shape
            layer = self.layers[nhwc_shape] = self.base.with_padding(self.attrs.window((h, w), self.kernel).pads)
        return layer

    def __call__(self, x_nhwc, num_threads):
        require_2d(x_nhwc, "Conv")
        return self.layer_for(x_nhwc.shape)(x_nhwc, num_threads).astype(x_nhwc.dtype, copy=False)


def prepare_conv(node, ctx):
    """An NHWC Conv with constant weights (OHWI, passes/nhwc.py) as a ShapedConv."""
    if not node.attrs.nhwc or any(i and i not in ctx.constants for i in node.inputs[1:]):
        return None
    conv = ShapedConv(ctx.constants[node.inputs[1]], ctx.constants.get(node.input(2)), node.attrs)

    def run(x, *constant_inputs):
        return [conv(x, ctx.num_threads)]
    run.uses_blas = conv.uses_blas
    return run


def lower_conv(lw, node, vals, out):
    what = f"Conv ({node.name})"
    w = vals[1].static
    b = vals[2].static if len(vals) > 2 and vals[2] is not None else None
    if w is None or (len(vals) > 2 and vals[2] is not None and b is None):
        raise Unsupported(f"{what}: weights computed at run time")
    x = lw.float_of(vals[0], f"{what}: input")
    if len(lw.dims(x)) != 4:
        raise Unsupported(f"{what}: not 2-D")
    if not node.attrs.nhwc:
        x = lw.transpose(x, (0, 2, 3, 1))
        w = np.ascontiguousarray(np.asarray(w).transpose(0, 2, 3, 1))
    conv = ShapedConv(np.asarray(w), b, node.attrs)
    y = lw.fconv(x, conv.layer_for(lw.dims(x)), what)
    return Val(y if node.attrs.nhwc else lw.transpose(y, (0, 3, 1, 2)))


@register("Conv", attrs=ConvAttrs, inputs=(2, 3), prepare=prepare_conv, lower=lower_conv, uses_blas=True)
def conv(inputs, attrs, ctx):
    x, w = inputs[0], inputs[1]
    b = inputs[2] if len(inputs) > 2 else None
    require_2d(x, "Conv")
    kernel = w.shape[1:3] if attrs.nhwc else w.shape[2:]  # OHWI in NHWC (passes/nhwc.py), else OIHW
    g = attrs.window(nchw_shape(x, attrs)[2:], kernel)
    y = layers.conv2d(x if attrs.nhwc else np.ascontiguousarray(x.transpose(0, 2, 3, 1)),
                      w if attrs.nhwc else w.transpose(0, 2, 3, 1), b, stride=g.stride, padding=g.pads,
                      dilation=g.dilation, groups=attrs.group, num_threads=ctx.num_threads)
    return [(y if attrs.nhwc else np.ascontiguousarray(y.transpose(0, 3, 1, 2))).astype(x.dtype, copy=False)]


# ---- matrix products ----------------------------------------------------------------------------------

@dataclass
class GemmAttrs(Attrs):
    alpha: float = 1.0
    beta: float = 1.0
    transA: int = attr(0, lo=0, hi=1)
    transB: int = attr(0, lo=0, hi=1)


def dense_layer(node, constants):
    """A Gemm(x, constant B[, constant per-column C]) with alpha = beta = 1, or a MatMul(x, constant
    2-D float32 B), as a layers.Dense; None for any other form."""
    b = constants.get(node.input(1))
    if node.op == "MatMul":
        return layers.Dense(np.ascontiguousarray(b.T)) if b is not None and b.ndim == 2 and b.dtype == np.float32 \
            else None
    a = node.attrs
    if b is None or b.ndim != 2 or a.transA or a.alpha != 1.0 or a.beta != 1.0:
        return None
    c = constants.get(node.input(2)) if node.input(2) else None
    if node.input(2) and c is None:
        return None
    w = b if a.transB else b.T
    if c is not None and not (c.size in (1, w.shape[0]) and (c.ndim <= 1 or c.ndim == 2 and c.shape[0] == 1)):
        return None  # only a C that is one value per output column (a (M, 1) C adds per row)
    bias = None if c is None else np.broadcast_to(np.asarray(c, np.float32).reshape(-1), (w.shape[0],))
    return layers.Dense(np.ascontiguousarray(w), bias)


def prepare_dense(node, ctx):
    layer = dense_layer(node, ctx.constants)
    if layer is None:
        return None
    b = ctx.constants[node.inputs[1]]

    def run(x, *constant_inputs):
        if node.op == "MatMul" and (x.ndim != 2 or x.dtype != np.float32):  # numpy's matmul semantics
            return [np.matmul(x, b)]
        return [np.asarray(layer(x, ctx.num_threads)).astype(x.dtype, copy=False)]
    run.uses_blas = layer.uses_blas
    return run


def lower_dense(lw, node, vals, out):
    what = f"{node.op} ({node.name})"
    layer = dense_layer(node, {n: v.static for n, v in zip(node.inputs, vals) if v is not None and v.static is not None})
    if layer is None:
        raise Unsupported(f"{what}: not x @ constant B (+ per-column C) with alpha = beta = 1")
    x = lw.float_of(vals[0], f"{what}: input")
    if len(lw.dims(x)) != 2 or layer.conv is None:
        raise Unsupported(f"{what}: not a float32 (N, K) input")
    return Val(lw.fconv(x, layer.conv, what))


@register("MatMul", inputs=(2, 2), prepare=prepare_dense, lower=lower_dense, uses_blas=True)
def matmul(inputs, attrs, ctx):
    return [np.matmul(inputs[0], inputs[1])]


@register("Gemm", attrs=GemmAttrs, inputs=(2, 3), prepare=prepare_dense, lower=lower_dense, uses_blas=True)
def gemm(inputs, attrs, ctx):
    a, b = inputs[0], inputs[1]
    c = inputs[2] if len(inputs) > 2 else None
    if attrs.transA:
        a = a.T
    if attrs.transB:
        b = b.T
    y = a @ b
    if attrs.alpha != 1.0:
        y = y * np.asarray(attrs.alpha, y.dtype)
    if c is not None:
        y = y + (c * np.asarray(attrs.beta, y.dtype) if attrs.beta != 1.0 else c)
    return [y.astype(a.dtype)]


# ---- pools --------------------------------------------------------------------------------------------

def pool_windows(x, attrs, fill):
    """Every tap of a 2-D pooling window as a strided view of the padded input (NCHW, or NHWC when
    attrs.nhwc), with the mask of the taps that read real input."""
    n, c, h, w = nchw_shape(x, attrs)
    g = attrs.window((h, w))
    top, bottom, left, right = g.all_pads
    (oh, ow), (ph, pw) = g.out_hw, g.padded_hw
    if any(g.all_pads):
        xp = np.full((n, ph, pw, c) if attrs.nhwc else (n, c, ph, pw), fill, x.dtype)
        xp[(slice(None),) + ((slice(top, top + h), slice(left, left + w)) if attrs.nhwc else
                             (slice(None), slice(top, top + h), slice(left, left + w)))] = x
    else:
        xp = x
    valid = np.zeros((ph, pw), bool)
    valid[top:top + h, left:left + w] = True
    lead = (slice(None),) if attrs.nhwc else (slice(None), slice(None))
    (sh, sw), (dh, dw) = g.stride, g.dilation
    for ky in range(g.kernel[0]):
        for kx in range(g.kernel[1]):
            ys, xs = ky * dh, kx * dw
            sl = (slice(ys, ys + sh * (oh - 1) + 1, sh), slice(xs, xs + sw * (ow - 1) + 1, sw))
            yield xp[lead + sl], valid[sl]


def pool_c(x, attrs, kind, num_threads):
    """An NHWC float32 pool through the C kernel, or None (NCHW, ceil mode, no C library)."""
    if not attrs.nhwc or attrs.ceil_mode or x.dtype != np.float32:
        return None
    g = attrs.window(nchw_shape(x, attrs)[2:])
    return layers.pool2d_nhwc(x, kind, g.kernel, stride=g.stride, padding=g.pads, dilation=g.dilation,
                              num_threads=num_threads)


def pool_kind(node):
    if node.op == "MaxPool":
        return "max"
    return "avg_include_pad" if node.attrs.count_include_pad else "avg"


def lower_pool(lw, node, vals, out):
    what = f"{node.op} ({node.name})"
    y = lw.float_of(vals[0], f"{what}: input")
    dims = lw.dims(y)
    if not node.attrs.nhwc or node.attrs.ceil_mode or len(dims) != 4:
        raise Unsupported(f"{what}: only NHWC pools without ceil_mode")
    return Val(lw.pool(y, pool_kind(node), node.attrs.window(dims[1:3])))


@register("MaxPool", attrs=PoolAttrs, lower=lower_pool)
def max_pool(inputs, attrs, ctx):
    x = inputs[0]
    require_2d(x, "MaxPool")
    out = pool_c(x, attrs, "max", ctx.num_threads)
    if out is not None:
        return [out]
    for window, _ in pool_windows(x, attrs, -np.inf):
        if out is None:
            out = window.copy()
        else:
            np.maximum(out, window, out=out)
    return [out.astype(x.dtype, copy=False)]


@register("AveragePool", attrs=PoolAttrs, lower=lower_pool)
def average_pool(inputs, attrs, ctx):
    x = inputs[0]
    require_2d(x, "AveragePool")
    out = pool_c(x, attrs, "avg_include_pad" if attrs.count_include_pad else "avg", ctx.num_threads)
    if out is not None:
        return [out]
    total, count = None, None
    for window, valid in pool_windows(x, attrs, 0.0):
        total = window.astype(np.float64) if total is None else total + window
        v = np.ones_like(valid, np.float64) if attrs.count_include_pad else valid.astype(np.float64)
        count = v if count is None else count + v
    if attrs.nhwc:
        count = count[:, :, None]
    with np.errstate(invalid="ignore"):  # a window of padding only: 0 / 0, NaN as in ONNX's reference
        return [(total / count).astype(x.dtype)]


# ---- Pad ----------------------------------------------------------------------------------------------

@dataclass
class PadAttrs(Attrs):
    """Before opset 11 Pad states its pads and value as attributes; later, as inputs."""
    mode: str = attr("constant", choices=("constant", "reflect", "edge", "wrap"))
    pads: Optional[Ints] = None
    value: float = 0.0


@register("Pad", attrs=PadAttrs, inputs=(1, 4))
def pad(inputs, attrs, ctx):
    x = inputs[0]
    pads = [int(p) for p in (inputs[1] if len(inputs) > 1 and inputs[1] is not None else attrs.pads)]
    value = inputs[2] if len(inputs) > 2 and inputs[2] is not None else attrs.value
    axes = list(range(x.ndim))
    if len(inputs) > 3 and inputs[3] is not None:
        axes = [int(a) % x.ndim for a in inputs[3]]
    width = [(0, 0)] * x.ndim
    for i, a in enumerate(axes):
        width[a] = (pads[i], pads[i + len(axes)])
    if attrs.mode != "constant":
        return [np.pad(x, width, mode={"reflect": "reflect", "edge": "edge", "wrap": "wrap"}[attrs.mode])]
    return [np.pad(x, width, constant_values=np.asarray(value).reshape(-1)[0] if np.size(value) else 0)]
