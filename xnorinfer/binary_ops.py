"""Executors of the binary IR ops (XPack, XBConv, XBDense) on numpy arrays, built once per node.

Activations between binary layers are packed NHWC (Packed objects); float tensors stay NCHW as in the
model, so layouts change only at the edges of binary regions.  A ternary sign tensor (ONNX Sign, whose
value is 0 where its input is exactly 0) is packed only when no element is 0; otherwise it keeps its
exact float values and the consumers run in float, so results stay exact either way.
"""
from dataclasses import dataclass

import numpy as np

from . import kernels, layers as ops
from .float_ops import OPS, ShapedConv, batchnorm, conv_pads


@dataclass
class Packed:
    words: np.ndarray        # (N, H, W, words) or (N, words); None when `dense` must be used
    channels: int
    dense: np.ndarray = None  # exact float values (NCHW / NC) when the tensor holds true zeros
    values: tuple = (-1.0, 1.0)  # the float values of bit 1 and bit 0

    @property
    def shape(self):
        """The tensor's shape in the model's layout (NCHW / NC)."""
        if self.dense is not None:
            return self.dense.shape
        if self.words.ndim == 4:
            n, h, w, _ = self.words.shape
            return (n, self.channels, h, w)
        return (self.words.shape[0], self.channels)

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


def make_xpack(node, num_threads=None, constants=None):
    minus, ternary, cases = node.attrs["minus"], node.attrs["ternary"], node.attrs["values"]
    bit1 = next(v for v, m in zip(cases, minus) if m) if any(minus) else -1.0
    bit0 = next((v for v, m in zip(cases, minus) if not m), 1.0)

    nhwc = node.attrs.get("_nhwc")  # x is 4-D NHWC (passes/nhwc.py)

    def run(x):
        x = np.asarray(x)
        if ternary and np.any(x == 0):
            dense = np.sign(x).astype(np.float32)
            return Packed(None, x.shape[-1], np.ascontiguousarray(dense.transpose(0, 3, 1, 2))) if nhwc else \
                Packed(None, x.shape[1], dense)
        if nhwc:
            return Packed(kernels.pack(_sign_bits_input(x, minus)), x.shape[3], None, (bit1, bit0))
        if x.ndim == 4:
            xt = x.transpose(0, 2, 3, 1)
        elif x.ndim == 2:
            xt = x
        else:
            raise ValueError(f"{node.name}: binary activations must be 2-D or 4-D, got shape {x.shape}")
        return Packed(kernels.pack(_sign_bits_input(xt, minus)), x.shape[1], None, (bit1, bit0))
    return run


def _apply_float_transform(a, acc, channel_axis):
    """What the kernel's float output transform does, in numpy, for the exact fallbacks."""
    if a.get("acc_clamp") is not None:
        acc = np.clip(acc, *a["acc_clamp"])
    shape = [1] * acc.ndim
    shape[channel_axis] = -1
    y = acc.astype(np.float32) * a["scale"].reshape(shape)
    if a["bias"] is not None:
        y = y + a["bias"].reshape(shape)
    return y.astype(np.float32)


def unit_weights(a):
    """The layer's +-1 weights in the model's layout (OIHW, or (N, K) rows)."""
    bits, shape = a["weight_bits"], a["weight_shape"]
    if len(shape) == 2:
        return kernels.unpack(bits, shape[1], np.float32)
    return np.ascontiguousarray(kernels.unpack(bits, shape[1], np.float32).transpose(0, 3, 1, 2))


def _float_chain(cfg, y, constants):
    """The fused ops run in float on y (inputs with true zeros): returns the sign tensor's values."""
    env = {cfg["float_output"]: y}
    for n in cfg["fallback"]:
        args = [env[i] if i in env else constants.get(i) if i else None for i in n.inputs]
        for name, value in zip(n.outputs, OPS[n.op](args, n.attrs)):
            env[name] = value
    z = env[cfg["source"]]
    neg, zero, pos = (np.float32(v) for v in cfg["cases"])
    return np.where(z < 0, neg, np.where(z == 0, zero, pos)).astype(np.float32)


def _packed_transform(cfg):
    return ops.OutputTransform(2, thresholds=cfg["thresholds"], flip=cfg["flip"])


def _out_kw(a, cfg, clamp=True):
    """The layer's output transform: packed sign bits, or float scale/bias (after an optional clamp of
    the integer accumulator; then, with a fused shortcut, the clamp that followed the Add)."""
    if cfg:
        return dict(transform=_packed_transform(cfg))
    bounds = tuple(a["clamp"]) if clamp and a.get("clamp") is not None else (-np.inf, np.inf)
    if a.get("acc_clamp") is not None or bounds != (-np.inf, np.inf):
        channels = len(a["scale"])
        return dict(transform=ops.OutputTransform(1, a["scale"], a["bias"] if a["bias"] is not None else
                                                  np.zeros(channels, np.float32), bounds,
                                                  acc_clamp=None if a.get("acc_clamp") is None else
                                                  tuple(a["acc_clamp"])))
    return dict(scale=a["scale"], bias=a["bias"], output="float32")


def _add_shortcut(y, residual, a):
    """What a fused shortcut does, in numpy (shapes that broadcast, the exact fallbacks)."""
    y = np.add(y, residual, dtype=np.float32)
    lo, hi = a.get("clamp") or (-np.inf, np.inf)
    return np.clip(y, lo, hi).astype(np.float32, copy=False) if lo > -np.inf or hi < np.inf else y


def _or_mask_words(or_mask):
    bits = np.where(or_mask.astype(bool), -1.0, 1.0).astype(np.float32)
    return kernels.pack(bits) if or_mask.any() else None


def make_xbconv(node, num_threads=None, constants=None):
    a = node.attrs
    out_c, kernel = a["weight_shape"][0], tuple(a["weight_shape"][2:])
    conv, cfg = a["conv"], a.get("packed")
    groups = conv.get("group", 1)
    w_bits = a["weight_bits"]              # packed OHWI
    lazy = {}
    strides, dilations = tuple(conv.get("strides", [1, 1])), tuple(conv.get("dilations", [1, 1]))
    out_kw = _out_kw(a, cfg)
    pool = cfg and cfg["pool"]
    or_words = _or_mask_words(pool["or_mask"]) if pool else None
    nhwc_out = a.get("_nhwc")  # float output left NHWC, as the kernel writes it (passes/nhwc.py)
    residual = a.get("residual")  # a fused shortcut Add: the second input (passes/residual.py)
    if residual and (cfg or not nhwc_out or len(node.inputs) != 2):
        raise ValueError(f"{node.name}: a fused shortcut needs float NHWC output and one shortcut input")
    layers = {}

    def layer_for(shape, clamp=True):
        pads = conv_pads(shape, conv, kernel, strides, dilations)
        key = (shape[1], pads, clamp)
        if key not in layers:
            layers[key] = ops.BConv2d(w_bits, shape[1], stride=strides, padding=pads, dilation=dilations,
                                      groups=groups, pad_value=a.get("pad_value", 0),
                                      **(out_kw if clamp else _out_kw(a, cfg, clamp=False)))
        return layers[key]

    def run(p, shortcut=None):
        if not residual:
            return compute(p)
        if p.dense is None:
            n, h, wd, _ = p.words.shape
            layer = layer_for((n, p.channels, h, wd))
            if isinstance(shortcut, np.ndarray) and shortcut.shape == layer.output_shape(p.words.shape):
                return layer(p.words, num_threads, residual=shortcut)  # the add and clamp in the kernel
        return _add_shortcut(compute(p, clamp=False), shortcut, a)  # a broadcasting shortcut

    def compute(p, clamp=True):
        if p.dense is not None:  # true zeros in the input: the float convolution is exact
            w = lazy.get("w")
            if w is None:
                w = lazy["w"] = unit_weights(a)
            dense, float_conv = p.dense, conv
            if "_explicit_pad" in conv:  # the model's own Pad, then its Conv
                (t, l, b, r), value = conv["_explicit_pad"]
                plus = p.values[1]
                dense = np.pad(dense, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=plus if value else 0.0)
                own = [conv["pads"][0] - t, conv["pads"][1] - l, conv["pads"][2] - b, conv["pads"][3] - r]
                float_conv = dict(conv, pads=own)
            acc = OPS["Conv"]([dense, w], float_conv)[0]  # integers (the input is +-1 / 0)
            y = _apply_float_transform(a, acc, 1)
            if cfg:
                return Packed(None, out_c, _float_chain(cfg, y, constants))
            return np.ascontiguousarray(y.transpose(0, 2, 3, 1)) if nhwc_out else y
        n, h, wd, _ = p.words.shape
        y = layer_for((n, p.channels, h, wd), clamp)(p.words, num_threads)
        if not cfg:
            return y if nhwc_out else np.ascontiguousarray(y.transpose(0, 3, 1, 2))
        if pool:
            y = _pool_bits(y, out_c, pool, or_words, num_threads)
        return Packed(y, out_c, None, cfg["values"])
    return run


def pool_geometry(words_shape, channels, pool):
    """(kernel, strides, (top, bottom, left, right), dilations) of a bit max-pool on packed NHWC words
    of words_shape, ceil mode turned into extra bottom/right padding, and whether any window fits."""
    n, h, w, _ = words_shape
    kernel = tuple(pool["kernel_shape"])
    strides, dilations = tuple(pool.get("strides", [1, 1])), tuple(pool.get("dilations", [1, 1]))
    top, bottom, left, right = conv_pads((n, channels, h, w), pool, kernel, strides, dilations)
    if pool.get("ceil_mode", 0):  # the extra windows of ceil mode see only padding at the far end
        for axis, size, lo, hi in ((0, h, top, bottom), (1, w, left, right)):
            span = dilations[axis] * (kernel[axis] - 1) + 1
            out = -(-(size + lo + hi - span) // strides[axis]) + 1
            if (out - 1) * strides[axis] >= size + lo:
                out -= 1
            extra = max(0, (out - 1) * strides[axis] + span - (size + lo + hi))
            if axis == 0:
                bottom += extra
            else:
                right += extra
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilations)]
    fits = h + top + bottom >= spans[0] and w + left + right >= spans[1]
    return kernel, strides, (top, bottom, left, right), dilations, fits


def _pool_bits(words, channels, pool, or_words, num_threads):
    """MaxPool of a fused sign: AND of the bits, or their OR for the channels in or_words.  For those
    channels the layer already emitted inverted bits, so AND then invert is the OR (De Morgan)."""
    kernel, strides, pads, dilations, fits = pool_geometry(words.shape, channels, pool)
    if not fits:  # no window fits: an empty output, as in float
        n, h, w, _ = words.shape
        top, bottom, left, right = pads
        spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilations)]
        return np.zeros((n, max(0, (h + top + bottom - spans[0]) // strides[0] + 1),
                         max(0, (w + left + right - spans[1]) // strides[1] + 1), words.shape[3]), np.uint64)
    pooled = ops.bmaxpool2d(words, channels, kernel, stride=strides, padding=pads, dilation=dilations,
                            num_threads=num_threads)
    return pooled ^ or_words if or_words is not None else pooled


def make_xbdense(node, num_threads=None, constants=None):
    a = node.attrs
    n_out, k = a["weight_shape"]
    cfg = a.get("packed")
    w_bits = a["weight_bits"]              # (N, ceil(K/64)) packed rows
    out_kw = _out_kw(a, cfg)
    layer = ops.BConv2d(w_bits.reshape(n_out, 1, 1, -1), k, **out_kw)
    lazy = {}
    spatial = {}  # (C, H, W) -> the dense layer as a convolution over a whole packed NHWC input

    def conv_layer(c, h, wd):
        if (c, h, wd) not in spatial:
            if c * h * wd != k:
                raise ValueError(f"{node.name}: flattened input has {c}x{h}x{wd} values, the weights expect {k}")
            w = kernels.unpack(w_bits, k, np.float32)  # +-1 in NCHW-flattened order
            w_ohwi = np.ascontiguousarray(w.reshape(n_out, c, h, wd).transpose(0, 2, 3, 1))
            spatial[(c, h, wd)] = ops.BConv2d(kernels.pack(w_ohwi), c, **out_kw)
        return spatial[(c, h, wd)]

    def flatten_ok(p, shape):
        """A run-time Reshape target must be (batch, k), i.e. a flatten, for the packed path."""
        if shape is None:
            return True
        n = p.words.shape[0] if p.words is not None else p.dense.shape[0]
        dims = [int(v) for v in shape]
        return len(dims) == 2 and dims[0] in (0, -1, n) and dims[1] in (-1, k) and (dims[0] != -1 or dims[1] != -1)

    def run(p, shape=None):
        if p.dense is None and not flatten_ok(p, shape):  # not a flatten after all: the float path
            p = Packed(None, p.channels, p.to_float() / np.float32(abs(p.values[1])), p.values)  # unit signs
        if p.dense is not None:
            dense = OPS["Reshape"]([p.dense, shape], {})[0] if shape is not None else p.dense.reshape(p.dense.shape[0], -1)
            w = lazy.get("w")
            if w is None:
                w = lazy["w"] = unit_weights(a)
            y = _apply_float_transform(a, dense.astype(np.float32) @ w.T, 1)
            return Packed(None, n_out, _float_chain(cfg, y, constants)) if cfg else y
        if p.words.ndim == 4:
            n, h, wd, _ = p.words.shape
            y = conv_layer(p.channels, h, wd)(p.words, num_threads).reshape(n, -1)
        elif p.channels != k:
            raise ValueError(f"{node.name}: expected packed rows of {k} values, got {p.channels}")
        else:
            y = layer(p.words.reshape(p.words.shape[0], 1, 1, -1), num_threads).reshape(p.words.shape[0], -1)
        return Packed(y, n_out, None, cfg["values"]) if cfg else y
    return run


def make_xbmaxpool(node, num_threads=None, constants=None):
    """MaxPool of a packed sign tensor (bit 1 = the negative value): AND of the bits."""
    attrs = node.attrs

    def run(p):
        if p.dense is not None:
            return Packed(None, p.channels, OPS["MaxPool"]([p.dense], attrs)[0], p.values)
        return Packed(_pool_bits(p.words, p.channels, attrs, None, num_threads), p.channels, None, p.values)
    return run


def _nhwc_args(node, args):
    """Constants of a per-channel op rearranged for an NHWC operand ((C,1,1) -> (C,))."""
    if node.op in ("Mul", "Add", "Sub", "Div") and args[1] is not None and np.size(args[1]) > 1:
        args[1] = np.asarray(args[1]).reshape(-1)
    return args


def make_xfloatconvpack(node, num_threads=None, constants=None):
    """The float first layer in NHWC: conv, its per-channel ops, then the sign bits, no transposes
    of the large activations."""
    a = node.attrs
    conv, w = a["conv"], a["weights"]
    w_ohwi = np.ascontiguousarray(w.transpose(0, 2, 3, 1))
    pack_attrs = a["pack"]
    minus, ternary, cases = pack_attrs["minus"], pack_attrs["ternary"], pack_attrs["values"]
    bit1 = next(v for v, m in zip(cases, minus) if m) if any(minus) else -1.0
    bit0 = next((v for v, m in zip(cases, minus) if not m), 1.0)

    float_conv = ShapedConv(w_ohwi, a["bias"], conv)
    nhwc = a.get("_nhwc")  # the input is NHWC already (passes/nhwc.py)

    def run(x):
        y = float_conv(x if nhwc else np.ascontiguousarray(x.transpose(0, 2, 3, 1)), num_threads)
        for n in a["chain"]:
            if n.op == "BatchNormalization":
                scale, bias, mean, var = (constants[i] for i in n.inputs[1:5])
                y = batchnorm(y, scale, bias, mean, var, n.attrs.get("epsilon", 1e-5), axis=3)
            else:
                args = _nhwc_args(n, [y] + [constants[i] if i else None for i in n.inputs[1:]])
                y = OPS[n.op](args, n.attrs)[0]
        if ternary and np.any(y == 0):
            return Packed(None, y.shape[3], np.ascontiguousarray(np.sign(y).transpose(0, 3, 1, 2)).astype(np.float32))
        return Packed(kernels.pack(_sign_bits_input(y, minus)), y.shape[3], None, (bit1, bit0))
    run.uses_blas = float_conv.uses_blas
    return run


def make_xshape(node, num_threads=None, constants=None):
    """ONNX Shape of a packed tensor, in the model's layout (NCHW / NC)."""
    start, end = node.attrs.get("start", 0), node.attrs.get("end", None)

    def run(p):
        return np.array(p.shape, np.int64)[start:end]
    return run


MAKERS = {"XFloatConvPack": make_xfloatconvpack, "XShape": make_xshape, "XBMaxPool": make_xbmaxpool,
          "XPack": make_xpack, "XBConv": make_xbconv, "XBDense": make_xbdense}
