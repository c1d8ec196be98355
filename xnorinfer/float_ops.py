"""ONNX operators on numpy arrays: the float executor, and the evaluator constant folding uses.

Each implementation takes (inputs, attrs) — inputs a list of arrays, None for an omitted optional
input — and returns a list of outputs.  Semantics follow the ONNX operator specification; float
tensors stay float32 (numpy does the arithmetic, BLAS the matrix products).
"""
import math

import numpy as np

from . import layers as ops
from .kernels import get_backend

OPS = {}


def op(*names):
    def register(fn):
        for name in names:
            OPS[name] = fn
        return fn
    return register


# ---- elementwise ------------------------------------------------------------------------------------

def _binary(fn):
    return lambda inputs, attrs: [np.asarray(fn(inputs[0], inputs[1]))]


for _name, _fn in {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Pow": np.power,
                   "Greater": np.greater, "GreaterOrEqual": np.greater_equal, "Less": np.less,
                   "LessOrEqual": np.less_equal, "Equal": np.equal, "And": np.logical_and,
                   "Or": np.logical_or, "Xor": np.logical_xor, "Max": np.maximum, "Min": np.minimum}.items():
    OPS[_name] = _binary(_fn)


@op("Div")
def _div(inputs, attrs):
    a, b = inputs
    if np.asarray(a).dtype.kind in "iu" and np.asarray(b).dtype.kind in "iu":
        return [np.asarray(np.trunc(np.divide(a, b))).astype(np.result_type(a, b))]
    return [np.asarray(np.divide(a, b))]


for _name, _fn in {"Neg": np.negative, "Abs": np.abs, "Sign": np.sign, "Sqrt": np.sqrt, "Exp": np.exp,
                   "Log": np.log, "Floor": np.floor, "Ceil": np.ceil, "Not": np.logical_not,
                   "Reciprocal": np.reciprocal, "Tanh": np.tanh, "Round": np.round}.items():
    OPS[_name] = (lambda fn: lambda inputs, attrs: [np.asarray(fn(inputs[0]))])(_fn)


@op("Identity", "Dropout")
def _identity(inputs, attrs):
    return [inputs[0]]


@op("Relu")
def _relu(inputs, attrs):
    x = inputs[0]
    return [np.maximum(x, np.zeros((), x.dtype))]


@op("LeakyRelu")
def _leaky(inputs, attrs):
    x = inputs[0]
    return [np.where(x < 0, x * np.asarray(attrs.get("alpha", 0.01), x.dtype), x)]


@op("PRelu")
def _prelu(inputs, attrs):
    x, slope = inputs
    return [np.where(x < 0, x * slope.astype(x.dtype), x)]


@op("Sigmoid")
def _sigmoid(inputs, attrs):
    x = inputs[0]
    return [(1 / (1 + np.exp(-x))).astype(x.dtype)]


@op("HardSigmoid")
def _hardsigmoid(inputs, attrs):
    x = inputs[0]
    alpha, beta = np.asarray(attrs.get("alpha", 0.2), x.dtype), np.asarray(attrs.get("beta", 0.5), x.dtype)
    return [np.clip(x * alpha + beta, 0, 1).astype(x.dtype)]


@op("Clip")
def _clip(inputs, attrs):
    x = inputs[0]
    lo = inputs[1] if len(inputs) > 1 and inputs[1] is not None else attrs.get("min")
    hi = inputs[2] if len(inputs) > 2 and inputs[2] is not None else attrs.get("max")
    if lo is not None:
        x = np.maximum(x, np.asarray(lo, x.dtype))
    if hi is not None:
        x = np.minimum(x, np.asarray(hi, x.dtype))
    return [x]


@op("Where")
def _where(inputs, attrs):
    cond, a, b = inputs
    return [np.where(cond, a, b)]


_ONNX_DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32, 7: np.int64,
                9: np.bool_, 10: np.float16, 11: np.float64, 12: np.uint32, 13: np.uint64}


def onnx_dtype(code):
    if code not in _ONNX_DTYPES:
        raise ValueError(f"unsupported ONNX tensor element type {code}")
    return np.dtype(_ONNX_DTYPES[code])


@op("Cast")
def _cast(inputs, attrs):
    return [inputs[0].astype(onnx_dtype(attrs["to"]))]


# ---- shapes -----------------------------------------------------------------------------------------

@op("Shape")
def _shape(inputs, attrs):
    shape = np.array(inputs[0].shape, np.int64)
    start, end = attrs.get("start", 0), attrs.get("end", None)
    return [shape[start:end]]


@op("Size")
def _size(inputs, attrs):
    return [np.array(inputs[0].size, np.int64)]


@op("Flatten")
def _flatten(inputs, attrs):
    x = inputs[0]
    axis = attrs.get("axis", 1)
    axis = axis + x.ndim if axis < 0 else axis
    return [x.reshape(int(np.prod(x.shape[:axis], dtype=np.int64)), -1)]


@op("Reshape")
def _reshape(inputs, attrs):
    x, shape = inputs[0], [int(v) for v in inputs[1]]
    if not attrs.get("allowzero", 0):
        shape = [x.shape[i] if v == 0 else v for i, v in enumerate(shape)]
    return [x.reshape(shape)]


@op("Transpose")
def _transpose(inputs, attrs):
    perm = attrs.get("perm")
    return [np.ascontiguousarray(np.transpose(inputs[0], perm))]


def _axes(inputs, attrs, index=1):
    if len(inputs) > index and inputs[index] is not None:
        return [int(a) for a in inputs[index]]
    return attrs.get("axes")


@op("Squeeze")
def _squeeze(inputs, attrs):
    axes = _axes(inputs, attrs)
    return [np.squeeze(inputs[0], axis=tuple(axes) if axes is not None else None)]


@op("Unsqueeze")
def _unsqueeze(inputs, attrs):
    x = inputs[0]
    axes = sorted(a + x.ndim + len(_axes(inputs, attrs)) if a < 0 else a for a in _axes(inputs, attrs))
    for a in axes:
        x = np.expand_dims(x, a)
    return [x]


@op("Concat")
def _concat(inputs, attrs):
    return [np.concatenate([i for i in inputs if i is not None], axis=attrs["axis"])]


@op("Gather")
def _gather(inputs, attrs):
    return [np.take(inputs[0], inputs[1].astype(np.int64), axis=attrs.get("axis", 0))]


@op("Slice")
def _slice(inputs, attrs):
    x = inputs[0]
    starts, ends = inputs[1], inputs[2]
    axes = inputs[3] if len(inputs) > 3 and inputs[3] is not None else range(len(starts))
    steps = inputs[4] if len(inputs) > 4 and inputs[4] is not None else [1] * len(starts)
    index = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        index[int(a)] = slice(int(s), int(e), int(st))
    return [x[tuple(index)]]


@op("Expand")
def _expand(inputs, attrs):
    x, shape = inputs
    return [x * np.ones([int(v) for v in shape], x.dtype)]


@op("Constant")
def _constant(inputs, attrs):
    return [attrs["value"]]


@op("ConstantOfShape")
def _constant_of_shape(inputs, attrs):
    value = attrs.get("value", np.zeros(1, np.float32))
    return [np.full([int(v) for v in inputs[0]], value.reshape(-1)[0], value.dtype)]


# ---- reductions and normalisation -----------------------------------------------------------------

def _reduce(fn):
    def run(inputs, attrs):
        axes = _axes(inputs, attrs)
        keep = bool(attrs.get("keepdims", 1))
        if axes is None or len(axes) == 0:
            if attrs.get("noop_with_empty_axes", 0) and axes is not None:
                return [inputs[0]]
            axes = None
        x = inputs[0]
        return [np.asarray(fn(x, axis=tuple(axes) if axes is not None else None, keepdims=keep)).astype(x.dtype)]
    return run


# Softmax and the means run in the C kernels when they can (float32; the means over one contiguous run
# of axes): the C runtime calls the same kernels, and numpy's exp and pairwise float32 sums give other
# last bits, so the two executors agree bit for bit only if both use them.  numpy is the fallback.

def _c_kernel(x, name):
    """The active backend if it has the C kernel `name` and x is a non-empty float32 array, else None."""
    if not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.ndim == 0 or x.size == 0:
        return None
    backend = get_backend()
    return backend if hasattr(backend, name) else None


def _c_mean(x, axes, keepdims):
    """x.mean(axis=axes, keepdims=keepdims) through xnor_mean_f32 (a double sum, one rounding), or None
    when there is no C kernel or the axes (ONNX's: negative from the end) are not distinct and valid.
    Axes that are one contiguous run reduce in place, in index order (the C runtime's MEAN gives the
    same bits); any other set is first transposed to the end, so the sum is still exact in double."""
    backend = _c_kernel(x, "mean_f32")
    if backend is None:
        return None
    axes = [int(a) + x.ndim if int(a) < 0 else int(a) for a in axes]
    if not axes or len(set(axes)) != len(axes) or not all(0 <= a < x.ndim for a in axes) or not x.size:
        return None
    axes.sort()
    shape = x.shape
    out_shape = tuple(1 if i in axes else d for i, d in enumerate(shape) if keepdims or i not in axes)
    begin, end = axes[0], axes[-1] + 1
    if end - begin == len(axes):
        dims = math.prod(shape[:begin]), math.prod(shape[begin:end]), math.prod(shape[end:])
    else:
        x = np.transpose(x, [i for i in range(x.ndim) if i not in axes] + axes)
        kept = [d for i, d in enumerate(shape) if i not in axes]
        dims = math.prod(kept), math.prod(shape[a] for a in axes), 1
    out = np.empty(out_shape, np.float32)
    backend.mean_f32(np.ascontiguousarray(x), *dims, out)
    return out


_reduce_mean_numpy = _reduce(np.mean)


@op("ReduceMean")
def _reduce_mean(inputs, attrs):
    axes = _axes(inputs, attrs)
    if axes is None or len(axes) == 0:
        if attrs.get("noop_with_empty_axes", 0) and axes is not None:
            return _reduce_mean_numpy(inputs, attrs)
        axes = range(np.ndim(inputs[0]))
    out = _c_mean(inputs[0], axes, bool(attrs.get("keepdims", 1)))
    return [out] if out is not None else _reduce_mean_numpy(inputs, attrs)


OPS["ReduceSum"] = _reduce(np.sum)
OPS["ReduceMax"] = _reduce(np.max)
OPS["ReduceMin"] = _reduce(np.min)


@op("Softmax")
def _softmax(inputs, attrs):
    x = inputs[0]
    axis = attrs.get("axis", -1)
    backend = _c_kernel(x, "softmax_f32")
    if backend is not None and -x.ndim <= axis < x.ndim:
        a = axis + x.ndim if axis < 0 else axis
        end = x.ndim if attrs.get("_opset", 13) < 13 else a + 1  # before 13: the trailing axes as one
        out = np.empty(x.shape, np.float32)
        backend.softmax_f32(np.ascontiguousarray(x), math.prod(x.shape[:a]), math.prod(x.shape[a:end]),
                            math.prod(x.shape[end:]), out)
        return [out]
    if attrs.get("_opset", 13) < 13:  # before opset 13: softmax over the flattened trailing axes
        axis = axis + x.ndim if axis < 0 else axis
        flat = x.reshape(int(np.prod(x.shape[:axis], dtype=np.int64)), -1)
        e = np.exp(flat - flat.max(axis=1, keepdims=True))
        return [(e / e.sum(axis=1, keepdims=True)).reshape(x.shape).astype(x.dtype)]
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return [(e / e.sum(axis=axis, keepdims=True)).astype(x.dtype)]


@op("BatchNormalization")
def _batchnorm(inputs, attrs):
    x, scale, bias, mean, var = inputs[:5]
    return [batchnorm(x, scale, bias, mean, var, attrs.get("epsilon", 1e-5), axis=1)]


def batchnorm(x, scale, bias, mean, var, epsilon, axis=1):
    """Inference BatchNormalization as ONNX defines it, in float32: (x - mean) / sqrt(var + eps) * scale + B."""
    shape = [1] * x.ndim
    shape[axis] = -1
    f = x.dtype.type
    mean, var = mean.astype(x.dtype).reshape(shape), var.astype(x.dtype).reshape(shape)
    scale, bias = scale.astype(x.dtype).reshape(shape), bias.astype(x.dtype).reshape(shape)
    y = np.subtract(x, mean, dtype=x.dtype)  # then in place: one allocation, the same roundings
    y /= np.sqrt(var + f(epsilon))
    y *= scale
    y += bias
    return y


# ---- matrix products and convolutions ----------------------------------------------------------------

@op("MatMul")
def _matmul(inputs, attrs):
    return [np.matmul(inputs[0], inputs[1])]


@op("Gemm")
def _gemm(inputs, attrs):
    a, b = inputs[0], inputs[1]
    c = inputs[2] if len(inputs) > 2 else None
    if attrs.get("transA", 0):
        a = a.T
    if attrs.get("transB", 0):
        b = b.T
    y = a @ b
    alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
    if alpha != 1.0:
        y = y * np.asarray(alpha, y.dtype)
    if c is not None:
        y = y + (c * np.asarray(beta, y.dtype) if beta != 1.0 else c)
    return [y.astype(a.dtype)]


def conv_pads(x_shape, attrs, kernel, strides, dilations):
    """Explicit (top, bottom, left, right) pads for a 2-D Conv/Pool, from pads or auto_pad."""
    auto_pad = attrs.get("auto_pad", "NOTSET")
    if isinstance(auto_pad, bytes):
        auto_pad = auto_pad.decode()
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for size, k, s, d in zip(x_shape[2:], kernel, strides, dilations):
            out = -(-size // s)
            total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
            small, large = total // 2, total - total // 2
            pads.append((large, small) if auto_pad == "SAME_LOWER" else (small, large))
        return pads[0][0], pads[0][1], pads[1][0], pads[1][1]
    p = attrs.get("pads", [0, 0, 0, 0])
    return p[0], p[2], p[1], p[3]


def _spatial(attrs, w_shape=None):
    kernel = attrs.get("kernel_shape") or (w_shape[2:] if w_shape is not None else None)
    return (tuple(kernel), tuple(attrs.get("strides", [1, 1])), tuple(attrs.get("dilations", [1, 1])))


def _require_2d(x, name):
    if x.ndim != 4:
        raise ValueError(f"{name}: only 2-D (NCHW) inputs are supported, got shape {x.shape}")


def _nchw_shape(x, attrs):
    """The NCHW shape of a 4-D operand, whichever layout it is in (see passes/nhwc.py)."""
    return (x.shape[0], x.shape[3], x.shape[1], x.shape[2]) if attrs.get("_nhwc") else x.shape


@op("Conv")
def _conv(inputs, attrs):
    x, w = inputs[0], inputs[1]
    b = inputs[2] if len(inputs) > 2 else None
    _require_2d(x, "Conv")
    nhwc = attrs.get("_nhwc")  # then w is OHWI
    kernel, strides, dilations = _spatial(attrs, w.shape)
    pads = conv_pads(_nchw_shape(x, attrs), attrs, kernel, strides, dilations)
    y = ops.conv2d(x if nhwc else np.ascontiguousarray(x.transpose(0, 2, 3, 1)), w if nhwc else w.transpose(0, 2, 3, 1),
                   b, stride=strides, padding=pads, dilation=dilations, groups=attrs.get("group", 1),
                   num_threads=attrs.get("_threads"))
    return [(y if nhwc else np.ascontiguousarray(y.transpose(0, 3, 1, 2))).astype(x.dtype, copy=False)]


# ---- prepared float layers: weights laid out once per plan, not once per call ----------------------

class ShapedConv:
    """A Conv node's ops.Conv2d (OHWI weights prepared once) for NHWC inputs, its pads worked out per
    input shape: auto_pad depends on the shape."""

    def __init__(self, w_ohwi, bias, attrs):
        self.attrs = attrs
        self.kernel, self.strides, self.dilations = _spatial(attrs, (0, 0) + tuple(w_ohwi.shape[1:3]))
        self.base = ops.Conv2d(w_ohwi, bias, stride=self.strides, dilation=self.dilations,
                               groups=attrs.get("group", 1))
        self.layers = {}
        self.uses_blas = self.base.uses_blas

    def __call__(self, x_nhwc, num_threads):
        layer = self.layers.get(x_nhwc.shape)
        if layer is None:
            _require_2d(x_nhwc, "Conv")
            n, h, w, c = x_nhwc.shape
            pads = conv_pads((n, c, h, w), self.attrs, self.kernel, self.strides, self.dilations)
            layer = self.layers[x_nhwc.shape] = self.base.with_padding(pads)
        return layer(x_nhwc, num_threads).astype(x_nhwc.dtype, copy=False)


def prepare_conv(node, constants, num_threads):
    """An NHWC Conv with constant weights (OHWI, passes/nhwc.py) as a ShapedConv."""
    attrs = node.attrs
    if not attrs.get("_nhwc") or any(i and i not in constants for i in node.inputs[1:]):
        return None
    bias = constants[node.inputs[2]] if len(node.inputs) > 2 and node.inputs[2] else None
    conv = ShapedConv(constants[node.inputs[1]], bias, attrs)

    def run(x, *constant_inputs):
        return [conv(x, num_threads)]
    run.uses_blas = conv.uses_blas
    return run


def prepare_gemm(node, constants, num_threads):
    """Gemm(x, constant B[, constant C]) with alpha = beta = 1 and a per-column C: an ops.Dense."""
    attrs = node.attrs
    if len(node.inputs) < 2 or node.inputs[1] not in constants or attrs.get("transA", 0) or \
            attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
        return None
    b = constants[node.inputs[1]]
    c = constants.get(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
    if b.ndim != 2 or (len(node.inputs) > 2 and node.inputs[2] and c is None):
        return None
    w = b if attrs.get("transB", 0) else b.T
    if c is not None and not (c.size in (1, w.shape[0]) and (c.ndim <= 1 or c.ndim == 2 and c.shape[0] == 1)):
        return None  # only a C that is one value per output column (a (M, 1) C adds per row)
    bias = None if c is None else np.broadcast_to(np.asarray(c, np.float32).reshape(-1), (w.shape[0],))
    layer = ops.Dense(np.ascontiguousarray(w), bias)

    def run(x, *constant_inputs):
        return [np.asarray(layer(x, num_threads)).astype(x.dtype, copy=False)]
    run.uses_blas = layer.uses_blas
    run.layer = layer
    return run


def prepare_matmul(node, constants, num_threads):
    """MatMul(x, constant 2-D B) for 2-D float32 x: an ops.Dense, like a Gemm (its own kernel, not BLAS)."""
    b = constants.get(node.inputs[1]) if len(node.inputs) > 1 else None
    if b is None or b.ndim != 2 or b.dtype != np.float32:
        return None
    layer = ops.Dense(np.ascontiguousarray(b.T))

    def run(x, *constant_inputs):
        if x.ndim != 2 or x.dtype != np.float32:  # other ranks: numpy's matmul semantics
            return [np.matmul(x, b)]
        return [np.asarray(layer(x, num_threads)).astype(x.dtype, copy=False)]
    run.uses_blas = layer.uses_blas
    run.layer = layer
    return run


PREPARED = {"Conv": prepare_conv, "Gemm": prepare_gemm, "MatMul": prepare_matmul}


def _pool_windows(x, attrs, fill):
    """Every tap of a 2-D pooling window as a strided view of the padded input (NCHW, or NHWC when
    attrs["_nhwc"]), with the mask of the taps that read real input."""
    nhwc = attrs.get("_nhwc")
    kernel, strides, dilations = _spatial(attrs)
    n, c, h, w = _nchw_shape(x, attrs)
    top, bottom, left, right = conv_pads((n, c, h, w), attrs, kernel, strides, dilations)
    span_h, span_w = dilations[0] * (kernel[0] - 1) + 1, dilations[1] * (kernel[1] - 1) + 1
    if attrs.get("ceil_mode", 0):
        oh = -(-(h + top + bottom - span_h) // strides[0]) + 1
        ow = -(-(w + left + right - span_w) // strides[1]) + 1
        # a window may not start in the bottom/right padding
        if (oh - 1) * strides[0] >= h + top:
            oh -= 1
        if (ow - 1) * strides[1] >= w + left:
            ow -= 1
    else:
        oh = (h + top + bottom - span_h) // strides[0] + 1
        ow = (w + left + right - span_w) // strides[1] + 1
    extra_h = max(0, (oh - 1) * strides[0] + span_h - (h + top + bottom))
    extra_w = max(0, (ow - 1) * strides[1] + span_w - (w + left + right))
    ph, pw = h + top + bottom + extra_h, w + left + right + extra_w
    if top or bottom or left or right or extra_h or extra_w:
        xp = np.full((n, ph, pw, c) if nhwc else (n, c, ph, pw), fill, x.dtype)
        xp[(slice(None),) + ((slice(top, top + h), slice(left, left + w)) if nhwc else
                             (slice(None), slice(top, top + h), slice(left, left + w)))] = x
    else:
        xp = x
    valid = np.zeros((ph, pw), bool)
    valid[top:top + h, left:left + w] = True
    lead = (slice(None),) if nhwc else (slice(None), slice(None))
    for ky in range(kernel[0]):
        for kx in range(kernel[1]):
            ys, xs = ky * dilations[0], kx * dilations[1]
            sl = (slice(ys, ys + strides[0] * (oh - 1) + 1, strides[0]), slice(xs, xs + strides[1] * (ow - 1) + 1, strides[1]))
            yield xp[lead + sl], valid[sl]


def _pool_c(x, attrs, kind):
    """An NHWC float32 pool through the C kernel, or None (NCHW, ceil mode, no C library)."""
    if not attrs.get("_nhwc") or attrs.get("ceil_mode", 0) or x.dtype != np.float32:
        return None
    kernel, strides, dilations = _spatial(attrs)
    pads = conv_pads(_nchw_shape(x, attrs), attrs, kernel, strides, dilations)
    return ops.pool2d_nhwc(x, kind, kernel, stride=strides, padding=pads, dilation=dilations,
                           num_threads=attrs.get("_threads"))


@op("MaxPool")
def _maxpool(inputs, attrs):
    x = inputs[0]
    _require_2d(x, "MaxPool")
    out = _pool_c(x, attrs, "max")
    if out is not None:
        return [out]
    for window, _ in _pool_windows(x, attrs, -np.inf):
        if out is None:
            out = window.copy()
        else:
            np.maximum(out, window, out=out)
    return [out.astype(x.dtype, copy=False)]


@op("AveragePool")
def _avgpool(inputs, attrs):
    x = inputs[0]
    _require_2d(x, "AveragePool")
    include_pad = attrs.get("count_include_pad", 0)
    out = _pool_c(x, attrs, "avg_include_pad" if include_pad else "avg")
    if out is not None:
        return [out]
    total, count = None, None
    for window, valid in _pool_windows(x, attrs, 0.0):
        total = window.astype(np.float64) if total is None else total + window
        v = np.ones_like(valid, np.float64) if include_pad else valid.astype(np.float64)
        count = v if count is None else count + v
    if attrs.get("_nhwc"):
        count = count[:, :, None]
    return [(total / count).astype(x.dtype)]


def _spatial_axes(x, attrs):
    return (1, 2) if attrs.get("_nhwc") else tuple(range(2, x.ndim))


@op("GlobalAveragePool")
def _gap(inputs, attrs):
    x = inputs[0]
    out = _c_mean(x, _spatial_axes(x, attrs), True)
    if out is not None:
        return [out]
    return [x.mean(axis=_spatial_axes(x, attrs), keepdims=True).astype(x.dtype)]


@op("GlobalMaxPool")
def _gmp(inputs, attrs):
    x = inputs[0]
    return [x.max(axis=_spatial_axes(x, attrs), keepdims=True)]


@op("Pad")
def _pad(inputs, attrs):
    x = inputs[0]
    pads = [int(p) for p in (inputs[1] if len(inputs) > 1 and inputs[1] is not None else attrs["pads"])]
    value = inputs[2] if len(inputs) > 2 and inputs[2] is not None else attrs.get("value", 0.0)
    mode = attrs.get("mode", "constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    axes = list(range(x.ndim))
    if len(inputs) > 3 and inputs[3] is not None:
        axes = [int(a) % x.ndim for a in inputs[3]]
    width = [(0, 0)] * x.ndim
    for i, a in enumerate(axes):
        width[a] = (pads[i], pads[i + len(axes)])
    if mode != "constant":
        return [np.pad(x, width, mode={"reflect": "reflect", "edge": "edge"}[mode])]
    return [np.pad(x, width, constant_values=np.asarray(value).reshape(-1)[0] if np.size(value) else 0)]


# ---- QONNX / FINN custom ops (Brevitas export_qonnx) --------------------------------------------------

def _rounding(mode):
    mode = (mode or "ROUND").upper()
    table = {"ROUND": np.round, "HALF_EVEN": np.round, "CEIL": np.ceil, "FLOOR": np.floor,
             "UP": lambda v: np.sign(v) * np.ceil(np.abs(v)), "DOWN": np.trunc,
             "HALF_UP": lambda v: np.sign(v) * np.floor(np.abs(v) + 0.5),
             "HALF_DOWN": lambda v: np.sign(v) * np.ceil(np.abs(v) - 0.5)}
    if mode not in table:
        raise ValueError(f"unknown rounding_mode {mode!r}")
    return table[mode]


def _int_range(signed, narrow, bits):
    if signed:
        return -(2.0 ** (bits - 1)) + (1 if narrow else 0), 2.0 ** (bits - 1) - 1
    return 0.0, 2.0 ** bits - 1 - (1 if narrow else 0)


@op("Quant", "IntQuant")
def _quant(inputs, attrs):
    """QONNX IntQuant: clamp(x / scale + zeropt) to the integer range, round, then rescale."""
    x, scale, zeropt, bits = inputs[:4]
    bits = float(np.asarray(bits).reshape(-1)[0])
    if bits < 2 or bits != int(bits):
        raise ValueError(f"Quant: bit width must be an integer >= 2 (1-bit is BipolarQuant), got {bits}")
    lo, hi = _int_range(attrs.get("signed", 1), attrs.get("narrow", 0), int(bits))
    y = x / scale + zeropt
    y = np.clip(y, lo, hi)
    y = _rounding(attrs.get("rounding_mode", "ROUND"))(y)
    return [((y - zeropt) * scale).astype(x.dtype)]


@op("BipolarQuant")
def _bipolar_quant(inputs, attrs):
    """QONNX BipolarQuant: where(x >= 0, 1, -1) * scale."""
    x, scale = inputs[:2]
    return [(np.where(x >= 0, np.ones((), x.dtype), -np.ones((), x.dtype)) * scale).astype(x.dtype)]


@op("Trunc")
def _trunc(inputs, attrs):
    """QONNX Trunc (v1: x, scale, zeropt, in_bits, out_bits; v2 adds out_scale before out_bits)."""
    x, scale, zeropt = inputs[:3]
    if len(inputs) >= 6 and inputs[5] is not None:
        out_scale, out_bits = inputs[4], float(np.asarray(inputs[5]).reshape(-1)[0])
    else:
        in_bits, out_bits = float(np.asarray(inputs[3]).reshape(-1)[0]), float(np.asarray(inputs[4]).reshape(-1)[0])
        out_scale = scale * 2.0 ** (in_bits - out_bits)
    y = np.round(x / scale + zeropt)
    trunc_scale = 2.0 ** np.round(np.log2(out_scale / scale))
    y = y / trunc_scale
    lo, hi = _int_range(attrs.get("signed", 1), attrs.get("narrow", 0), int(out_bits))
    y = np.clip(y, lo, hi)
    y = _rounding(attrs.get("rounding_mode", "FLOOR"))(y)
    return [((y - zeropt / trunc_scale) * out_scale).astype(x.dtype)]


@op("MultiThreshold")
def _multithreshold(inputs, attrs):
    """FINN MultiThreshold: per channel, the number of thresholds x reaches (x >= t), then
    out_scale * count + out_bias.  Channels are axis 1 (NCHW) or the last axis (NHWC)."""
    x, thresholds = inputs[:2]
    layout = attrs.get("data_layout", "NCHW")
    axis = x.ndim - 1 if layout in ("NHWC", "NC") and x.ndim > 2 or layout == "NHWC" else 1
    xm = np.moveaxis(x, axis, -1) if x.ndim > 1 else x[..., None]
    t = np.asarray(thresholds)
    count = (xm[..., None] >= t.reshape((1,) * (xm.ndim - 1) + t.shape)).sum(axis=-1).astype(np.float32)
    out = count * np.float32(attrs.get("out_scale", 1.0)) + np.float32(attrs.get("out_bias", 0.0))
    out = np.moveaxis(out, -1, axis) if x.ndim > 1 else out[..., 0]
    return [out.astype(np.float32)]
