"""The binary ops the passes create (passes/binarize.py, fuse_sign.py): their typed attributes, how
the Python executor runs them on the packed kernels, and their C runtime steps.

  XPack(source)           float tensor -> packed bits of its sign tensor
  XBConv(packed[, res])   binary Conv: float y = s * acc + b (+ a fused shortcut), or packed sign bits
  XBDense(packed[, shape])  binary Gemm / MatMul on packed rows (or a whole packed NHWC input, flattened)
  XBMaxPool(packed)       MaxPool of a sign tensor: AND of the bits
  XFloatConvPack(x)       the float first layer in NHWC: conv, its per-channel ops, then the sign bits
  XShape(packed)          ONNX Shape of a sign tensor, from its packed form

Activations between binary layers are Packed values (packed.py); a sign tensor that holds true zeros
keeps its exact float values and the layers reading it run in float, so results stay exact.
"""
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from .. import layers
from ..ir import Attrs, Bools, Floats, Ints, Node, attr
from ..kernels import pack, unpack, words_for
from ..runtime.program import Unsupported, Val
from .nn import ConvAttrs, PoolAttrs, ShapedConv, conv
from .packed import Packed
from .reduce import batchnorm
from .registry import OPS, Context, register
from .tensor import ShapeAttrs


# ---- attributes ---------------------------------------------------------------------------------------

@dataclass
class SignAttrs(Attrs):
    """How a sign tensor's float source packs: `values` are the sign tensor's values where the source is
    < 0, == 0, > 0; `minus` says which of those cases give the negative value (bit 1); a ternary sign
    (-1, 0, +1) keeps exact zeros.  nhwc: the source is NHWC (passes/nhwc.py)."""
    minus: Tuple[bool, bool, bool]
    ternary: bool
    values: Tuple[float, float, float]
    nhwc: bool = False

    @property
    def bit_values(self):
        """The float values of bit 1 and bit 0."""
        bit1 = next(v for v, m in zip(self.values, self.minus) if m) if any(self.minus) else -1.0
        bit0 = next((v for v, m in zip(self.values, self.minus) if not m), 1.0)
        return bit1, bit0


@dataclass
class FusedPool(Attrs):
    """A MaxPool between a binary layer and the sign it feeds, pooling the bits: AND over the window,
    or OR for the channels in or_mask (whose sign falls as the pooled value rises)."""
    pool: PoolAttrs
    or_mask: Optional[np.ndarray] = attr(dtype="uint8")


@dataclass
class PackedOutput(Attrs):
    """A binary layer whose sign is fused into it: bit o = (acc < thresholds[o]) XOR flip[o], then the
    pool if any.  fallback: the float ops the fusion replaced, from the layer's float output
    `float_output` to the sign's source `source`, run for inputs with exact zeros (cases: the sign's
    values for source < 0, == 0, > 0)."""
    thresholds: np.ndarray = attr(dtype="int32")
    flip: np.ndarray = attr(dtype="uint8")
    values: Tuple[float, float] = attr()
    cases: Tuple[float, float, float] = attr()
    fallback: List[Node] = attr()
    float_output: str = attr()
    source: str = attr()
    pool: Optional[FusedPool] = None


@dataclass
class BinaryLayerAttrs(Attrs):
    """The +-1 weights as bits (packed along the last axis: OHWI for a conv, rows for a dense layer),
    the model's weight shape (OIHW / (N, K)) and K = the accumulator's range, the float output
    transform y = acc * scale + bias."""
    weight_bits: np.ndarray = attr(dtype="uint64")
    weight_shape: Ints = attr(lo=0)
    scale: np.ndarray = attr(dtype="float32")
    bias: Optional[np.ndarray] = attr(dtype="float32")
    k: int = attr(lo=1)


@dataclass
class XBConvAttrs(BinaryLayerAttrs):
    conv: ConvAttrs = attr()
    pad_value: int = attr(0, lo=0, hi=1)        # 1: the padded input is +1 (Larq's pad_values=1)
    explicit_pads: Optional[Ints] = None         # the model's own Pad in front (ONNX order), merged into conv.pads
    packed: Optional[PackedOutput] = None
    acc_clamp: Optional[Tuple[int, int]] = None  # an activation on the integer accumulator (LCE's fused ReLU)
    clamp: Tuple[float, float] = (-np.inf, np.inf)  # after a fused shortcut add
    residual: bool = False                       # input 1 is a shortcut added to the float output
    nhwc: bool = False                           # the float output stays NHWC, as the kernel writes it


@dataclass
class XBDenseAttrs(BinaryLayerAttrs):
    packed: Optional[PackedOutput] = None
    acc_clamp: Optional[Tuple[int, int]] = None
    clamp: Tuple[float, float] = (-np.inf, np.inf)


@dataclass
class XFloatConvPackAttrs(Attrs):
    weights: np.ndarray = attr()  # OIHW
    bias: Optional[np.ndarray] = attr()
    conv: ConvAttrs = attr()
    chain: List[Node] = attr()                   # per-channel float ops after the conv (run in NHWC)
    pack: SignAttrs = attr()
    nhwc: bool = False


# ---- shared pieces ------------------------------------------------------------------------------------

def sign_bits_input(x, minus):
    """An array whose x < 0 pattern is the minus-pattern of x over (x<0, x==0, x>0)."""
    if minus == (True, False, False):
        return x
    neg = (x < 0) & minus[0] | (x == 0) & minus[1] | (x > 0) & minus[2]
    return np.where(neg, np.int8(-1), np.int8(1))


def pack_signs(y, sign, nhwc, bit_values, num_threads=None):
    """The Packed sign tensor of float y (NHWC when nhwc, else NCHW / NC) by SignAttrs `sign`, whose
    bit_values the caller worked out once; packed on up to num_threads threads."""
    if sign.ternary and np.any(y == 0):
        dense = np.sign(y).astype(np.float32)
        return Packed(None, y.shape[-1], np.ascontiguousarray(dense.transpose(0, 3, 1, 2))) if nhwc else \
            Packed(None, y.shape[1], dense)
    if nhwc:
        return Packed(pack(sign_bits_input(y, sign.minus), num_threads), y.shape[3], None, bit_values)
    if y.ndim == 4:
        yt = y.transpose(0, 2, 3, 1)
    elif y.ndim == 2:
        yt = y
    else:
        raise ValueError(f"binary activations must be 2-D or 4-D, got shape {y.shape}")
    return Packed(pack(sign_bits_input(yt, sign.minus), num_threads), y.shape[1], None, bit_values)


def output_transform(a, clamp=True):
    """The layer's output transform as BConv2d arguments: packed sign bits, or float scale / bias
    (after an optional clamp of the integer accumulator; then, with a fused shortcut, the clamp that
    followed the Add)."""
    if a.packed is not None:
        return dict(transform=layers.OutputTransform(2, thresholds=a.packed.thresholds, flip=a.packed.flip))
    bounds = tuple(a.clamp) if clamp else (-np.inf, np.inf)
    if a.acc_clamp is not None or bounds != (-np.inf, np.inf):
        bias = a.bias if a.bias is not None else np.zeros(len(a.scale), np.float32)
        return dict(transform=layers.OutputTransform(1, a.scale, bias, bounds, acc_clamp=a.acc_clamp))
    return dict(scale=a.scale, bias=a.bias, output="float32")


def float_transform(a, acc, channel_axis):
    """What the kernel's float output transform does, in numpy, for the exact fallbacks."""
    if a.acc_clamp is not None:
        acc = np.clip(acc, *a.acc_clamp)
    shape = [1] * acc.ndim
    shape[channel_axis] = -1
    y = acc.astype(np.float32) * a.scale.reshape(shape)
    if a.bias is not None:
        y = y + a.bias.reshape(shape)
    return y.astype(np.float32)


def unit_weights(a):
    """The layer's +-1 weights in the model's layout (OIHW, or (N, K) rows)."""
    if len(a.weight_shape) == 2:
        return unpack(a.weight_bits, a.weight_shape[1], np.float32)
    return np.ascontiguousarray(unpack(a.weight_bits, a.weight_shape[1], np.float32).transpose(0, 3, 1, 2))


def fallback_chain(cfg, y, constants):
    """The fused ops run in float on y (inputs with true zeros): the sign tensor's values."""
    env = {cfg.float_output: y}
    for n in cfg.fallback:
        args = [env[i] if i in env else constants.get(i) if i else None for i in n.inputs]
        for name, value in zip(n.outputs, OPS[n.op].run(args, n.attrs, Context())):
            env[name] = value
    z = env[cfg.source]
    neg, zero, pos = (np.float32(v) for v in cfg.cases)
    return np.where(z < 0, neg, np.where(z == 0, zero, pos)).astype(np.float32)


class BitPool:
    """A MaxPool of sign bits (fused into a binary layer, or an XBMaxPool): AND of the bits, or their OR
    for the channels in fused.or_mask -- for those the layer already emitted inverted bits, so AND then
    invert is the OR (De Morgan).  One layers.BMaxPool2d per input shape: the window depends on it."""

    def __init__(self, fused):
        self.fused, self.by_shape = fused, {}
        mask = fused.or_mask
        self.or_words = pack(np.where(mask.astype(bool), -1.0, 1.0).astype(np.float32)) \
            if mask is not None and mask.any() else None

    def __call__(self, words, channels, num_threads):
        pool = self.by_shape.get(words.shape)
        if pool is None:
            n, h, w, nwords = words.shape
            g = self.fused.pool.window((h, w))
            pool = self.by_shape[words.shape] = (n,) + g.out_hw + (nwords,) if not g.fits else layers.BMaxPool2d(
                channels, g.kernel, stride=g.stride, padding=g.all_pads, dilation=g.dilation)
        if isinstance(pool, tuple):  # no window fits: an empty output, as in float
            return np.zeros(pool, np.uint64)
        pooled = pool(words, num_threads)
        return pooled ^ self.or_words if self.or_words is not None else pooled


def as_prepared(prepare):
    """run() of an op that only exists prepared: prepare a node of these attributes, run it once."""
    return lambda inputs, attrs, ctx: prepare(Node("", [], [], attrs), ctx)(*inputs)


# ---- XPack ----------------------------------------------------------------------------------------------

def prepare_xpack(node, ctx):
    bit_values = node.attrs.bit_values

    def run(x):
        return [pack_signs(np.asarray(x), node.attrs, node.attrs.nhwc, bit_values, ctx.num_threads)]
    return run


def lower_xpack(lw, node, vals, out):
    x = lw.float_of(vals[0], f"{node.name}: input")
    dims = lw.dims(x)
    if len(dims) == 4 and not node.attrs.nhwc:
        x = lw.transpose(x, (0, 2, 3, 1))
    elif len(dims) not in (2, 4):
        raise Unsupported(f"{node.name}: binary activations of rank {len(dims)}")
    return Val(lw.pack(x, node.attrs.minus, node.attrs.ternary), channels=lw.dims(x)[-1])


register("XPack", attrs=SignAttrs, prepare=prepare_xpack, lower=lower_xpack,
         packed_output=lambda attrs: True)(as_prepared(prepare_xpack))


# ---- XBConv ---------------------------------------------------------------------------------------------

class BinaryConv:
    """An XBConv node's kernels: one layers.BConv2d per input shape (auto_pad depends on it), and the
    exact float path for inputs with true zeros."""

    def __init__(self, node, ctx):
        a = self.a = node.attrs
        self.node, self.ctx, self.layers, self.windows, self.unit = node, ctx, {}, {}, None
        self.out_c, self.kernel = a.weight_shape[0], tuple(a.weight_shape[2:])
        self.pool = BitPool(a.packed.pool) if a.packed is not None and a.packed.pool is not None else None
        if a.residual and (a.packed is not None or not a.nhwc or len(node.inputs) != 2):
            raise ValueError(f"{node.name}: a fused shortcut needs float NHWC output and one shortcut input")

    def layer_for(self, x_words_shape, channels, clamp=True):
        a = self.a
        if x_words_shape not in self.windows:  # auto_pad depends on the input size
            self.windows[x_words_shape] = a.conv.window(x_words_shape[1:3], self.kernel)
        g = self.windows[x_words_shape]
        key = (channels, g.pads, clamp)
        if key not in self.layers:
            self.layers[key] = layers.BConv2d(a.weight_bits, channels, stride=g.stride, padding=g.pads,
                                              dilation=g.dilation, groups=a.conv.group, pad_value=a.pad_value,
                                              **output_transform(a, clamp))
        return self.layers[key]

    def __call__(self, p, shortcut=None):
        if not self.a.residual:
            return [self.compute(p)]
        if p.dense is None:
            layer = self.layer_for(p.words.shape, p.channels)
            if isinstance(shortcut, np.ndarray) and shortcut.shape == layer.output_shape(p.words.shape):
                return [layer(p.words, self.ctx.num_threads, residual=shortcut)]  # the add and clamp in the kernel
        y = np.add(self.compute(p, clamp=False), shortcut, dtype=np.float32)  # a shortcut that broadcasts
        lo, hi = self.a.clamp
        return [np.clip(y, lo, hi).astype(np.float32, copy=False) if lo > -np.inf or hi < np.inf else y]

    def compute(self, p, clamp=True):
        a = self.a
        if p.dense is not None:
            return self.exact(p)
        y = self.layer_for(p.words.shape, p.channels, clamp)(p.words, self.ctx.num_threads)
        if a.packed is None:
            return y if a.nhwc else np.ascontiguousarray(y.transpose(0, 3, 1, 2))
        if self.pool is not None:
            y = self.pool(y, self.out_c, self.ctx.num_threads)
        return Packed(y, self.out_c, None, a.packed.values)

    def exact(self, p):
        """True zeros in the input: the float convolution of the +-1/0 values is exact."""
        a = self.a
        if self.unit is None:
            self.unit = unit_weights(a)
        dense, attrs = p.dense, a.conv
        if a.explicit_pads is not None:  # the model's own Pad, then its Conv
            t, l, b, r = a.explicit_pads
            dense = np.pad(dense, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=p.values[1] if a.pad_value else 0.0)
            attrs = attrs.replace(pads=tuple(own - extra for own, extra in zip(attrs.begin_end_pads(), a.explicit_pads)))
        acc = conv([dense, self.unit], attrs, Context())[0]  # integers (the input is +-1 / 0)
        y = float_transform(a, acc, 1)
        if a.packed is not None:
            return Packed(None, self.out_c, fallback_chain(a.packed, y, self.ctx.constants))
        return np.ascontiguousarray(y.transpose(0, 2, 3, 1)) if a.nhwc else y


def prepare_xbconv(node, ctx):
    return BinaryConv(node, ctx)


def lower_xbconv(lw, node, vals, out):
    a = node.attrs
    x, channels = lw.bits_of(vals[0], f"{node.name}: input")
    n, h, w, _ = lw.dims(x)
    g = a.conv.window((h, w), tuple(a.weight_shape[2:]))
    layer = layers.BConv2d(a.weight_bits, channels, stride=g.stride, padding=g.pads, dilation=g.dilation,
                           groups=a.conv.group, pad_value=a.pad_value, **output_transform(a))
    residual = None
    if a.residual:
        residual = lw.float_of(vals[1], f"{node.name}: shortcut")
        if lw.dims(residual) != layer.output_shape((n, h, w, 0)):
            raise Unsupported(f"{node.name}: a shortcut that broadcasts")
    y = lw.bconv(x, layer, residual)
    out_c = a.weight_shape[0]
    if a.packed is not None:
        if a.packed.pool is not None:
            ydims = lw.dims(y)
            y = lw.bmaxpool(y, out_c, a.packed.pool.pool.window(ydims[1:3]), a.packed.pool.or_mask)
        return Val(y, channels=out_c)
    return Val(y if a.nhwc else lw.transpose(y, (0, 3, 1, 2)))


register("XBConv", attrs=XBConvAttrs, inputs=(1, 2), prepare=prepare_xbconv, lower=lower_xbconv, packed_inputs=(0,),
         packed_output=lambda attrs: attrs.packed is not None)(as_prepared(prepare_xbconv))


# ---- XBDense --------------------------------------------------------------------------------------------

def dense_as_conv(a, c, h, w):
    """A dense layer reading a whole packed NHWC (c, h, w) input, as a conv whose kernel covers it."""
    n_out, k = a.weight_shape
    if c * h * w != k:
        raise ValueError(f"flattened input has {c}x{h}x{w} values, the weights expect {k}")
    wf = unpack(a.weight_bits, k, np.float32)  # +-1 in NCHW-flattened order
    w_ohwi = np.ascontiguousarray(wf.reshape(n_out, c, h, w).transpose(0, 2, 3, 1))
    return layers.BConv2d(pack(w_ohwi), c, **output_transform(a))


def is_flatten(target, batch, k):
    """Whether a Reshape target (None: no Reshape) takes (batch, ...) to (batch, k)."""
    if target is None:
        return True
    d = [int(v) for v in target]
    return len(d) == 2 and d[0] in (0, -1, batch) and d[1] in (-1, k) and (d[0] != -1 or d[1] != -1)


def prepare_xbdense(node, ctx):
    a = node.attrs
    n_out, k = a.weight_shape
    rows = layers.BConv2d(a.weight_bits.reshape(n_out, 1, 1, -1), k, **output_transform(a))
    spatial, lazy = {}, {}  # (C, H, W) -> dense_as_conv; the +-1 weights for the exact path

    def run(p, target=None):
        n = p.words.shape[0] if p.words is not None else p.dense.shape[0]
        if p.dense is None and not is_flatten(target, n, k):  # not a flatten after all: the float path
            p = Packed(None, p.channels, p.to_float() / np.float32(abs(p.values[1])), p.values)  # unit signs
        if p.dense is not None:
            dense = OPS["Reshape"].run([p.dense, target], OPS["Reshape"].attrs(), ctx)[0] if target is not None \
                else p.dense.reshape(p.dense.shape[0], -1)
            if "w" not in lazy:
                lazy["w"] = unit_weights(a)
            y = float_transform(a, dense.astype(np.float32) @ lazy["w"].T, 1)
            return [Packed(None, n_out, fallback_chain(a.packed, y, ctx.constants)) if a.packed is not None else y]
        if p.words.ndim == 4:
            _, h, w, _ = p.words.shape
            if (p.channels, h, w) not in spatial:
                spatial[(p.channels, h, w)] = dense_as_conv(a, p.channels, h, w)
            y = spatial[(p.channels, h, w)](p.words, ctx.num_threads).reshape(n, -1)
        elif p.channels != k:
            raise ValueError(f"{node.name}: expected packed rows of {k} values, got {p.channels}")
        else:
            y = rows(p.words.reshape(n, 1, 1, -1), ctx.num_threads).reshape(n, -1)
        return [Packed(y, n_out, None, a.packed.values) if a.packed is not None else y]
    return run


def lower_xbdense(lw, node, vals, out):
    a = node.attrs
    n_out, k = a.weight_shape
    x, channels = lw.bits_of(vals[0], f"{node.name}: input")
    dims = lw.dims(x)
    target = vals[1] if len(vals) > 1 else None
    if target is not None and target.static is None:
        raise Unsupported(f"{node.name}: a reshape target computed at run time")
    if target is not None and not is_flatten(target.static, dims[0], k):
        raise Unsupported(f"{node.name}: a reshape that is not a flatten")
    if len(dims) == 4:
        n, h, w, _ = dims
        try:
            layer = dense_as_conv(a, channels, h, w)
        except ValueError:
            raise Unsupported(f"{node.name}: flattened input does not match the weights") from None
        y = lw.bconv(x, layer)
        y = lw.copy(y, (n, lw.dims(y)[-1]))
    else:
        if channels != k:
            raise Unsupported(f"{node.name}: packed rows of {channels} values, weights of {k}")
        y = lw.bconv(x, layers.BConv2d(a.weight_bits.reshape(n_out, 1, 1, -1), k, **output_transform(a)))
    return Val(y, channels=n_out) if a.packed is not None else Val(y)


register("XBDense", attrs=XBDenseAttrs, inputs=(1, 2), prepare=prepare_xbdense, lower=lower_xbdense, packed_inputs=(0,),
         packed_output=lambda attrs: attrs.packed is not None)(as_prepared(prepare_xbdense))


# ---- XBMaxPool ------------------------------------------------------------------------------------------

def prepare_xbmaxpool(node, ctx):
    """MaxPool of a packed sign tensor (bit 1 = the negative value): AND of the bits."""
    pool = BitPool(FusedPool(node.attrs, None))

    def run(p):
        if p.dense is not None:
            return [Packed(None, p.channels, OPS["MaxPool"].run([p.dense], node.attrs, ctx)[0], p.values)]
        return [Packed(pool(p.words, p.channels, ctx.num_threads), p.channels, None, p.values)]
    return run


def lower_xbmaxpool(lw, node, vals, out):
    x, channels = lw.bits_of(vals[0], f"{node.name}: input")
    return Val(lw.bmaxpool(x, channels, node.attrs.window(lw.dims(x)[1:3])), channels=channels)


register("XBMaxPool", attrs=PoolAttrs, prepare=prepare_xbmaxpool, lower=lower_xbmaxpool, packed_inputs=(0,),
         packed_output=lambda attrs: True)(as_prepared(prepare_xbmaxpool))


# ---- XFloatConvPack -------------------------------------------------------------------------------------

def nhwc_args(node, args):
    """Constants of a per-channel op rearranged for an NHWC operand ((C,1,1) -> (C,))."""
    if node.op in ("Mul", "Add", "Sub", "Div") and args[1] is not None and np.size(args[1]) > 1:
        args[1] = np.asarray(args[1]).reshape(-1)
    return args


def prepare_xfloatconvpack(node, ctx):
    """Conv, its per-channel ops and the sign bits in NHWC, no transposes of the large activations."""
    a = node.attrs
    float_conv = ShapedConv(np.ascontiguousarray(a.weights.transpose(0, 2, 3, 1)), a.bias, a.conv)
    bit_values = a.pack.bit_values

    def run(x):
        y = float_conv(x if a.nhwc else np.ascontiguousarray(x.transpose(0, 2, 3, 1)), ctx.num_threads)
        for n in a.chain:
            if n.op == "BatchNormalization":
                scale, bias, mean, var = (ctx.constants[i] for i in n.inputs[1:5])
                y = batchnorm(y, scale, bias, mean, var, n.attrs.epsilon, axis=3)
            else:
                y = OPS[n.op].run(nhwc_args(n, [y] + [ctx.constants[i] if i else None for i in n.inputs[1:]]),
                                  n.attrs, ctx)[0]
        return [pack_signs(y, a.pack, True, bit_values, ctx.num_threads)]
    run.uses_blas = float_conv.uses_blas
    return run


def lower_xfloatconvpack(lw, node, vals, out):
    a = node.attrs
    x = lw.float_of(vals[0], f"{node.name}: input")
    if not a.nhwc:
        x = lw.transpose(x, (0, 2, 3, 1))
    conv = ShapedConv(np.ascontiguousarray(a.weights.transpose(0, 2, 3, 1)), a.bias, a.conv)
    y = lw.fconv(x, conv.layer_for(lw.dims(x)), node.name)
    for n in a.chain:
        if n.op == "BatchNormalization":
            scale, bias, mean, var = (lw.graph.constants[i] for i in n.inputs[1:5])
            y = lw.batchnorm(y, scale, bias, mean, var, n.attrs.epsilon, 3)
            continue
        args = nhwc_args(n, [None] + [lw.graph.constants[i] if i else None for i in n.inputs[1:]])[1:]
        opdef = OPS[n.op]
        if opdef.lower is None:
            raise Unsupported(f"{n.op} ({n.name}): the C runtime has no {n.op}")
        y = opdef.lower(lw, n, [Val(y)] + [Val(static=v) if v is not None else None for v in args], None).tensor
    return Val(lw.pack(y, a.pack.minus, a.pack.ternary), channels=lw.dims(y)[-1])


register("XFloatConvPack", attrs=XFloatConvPackAttrs, prepare=prepare_xfloatconvpack, lower=lower_xfloatconvpack,
         uses_blas=True, packed_output=lambda attrs: True)(as_prepared(prepare_xfloatconvpack))


# ---- XShape ---------------------------------------------------------------------------------------------

def prepare_xshape(node, ctx):
    """ONNX Shape of a packed tensor, in the model's layout (NCHW / NC)."""
    def run(p):
        return [np.array(p.shape, np.int64)[node.attrs.start:node.attrs.end]]
    return run


def lower_xshape(lw, node, vals, out):
    return lw.traced_static(out)


register("XShape", attrs=ShapeAttrs, prepare=prepare_xshape, lower=lower_xshape,
         packed_inputs=(0,))(as_prepared(prepare_xshape))
