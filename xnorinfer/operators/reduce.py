"""Reductions and normalisations: ReduceMean/Sum/Max/Min, the global pools, Softmax, BatchNormalization.

Softmax and the means run in the C kernels when they can (float32; the means over one contiguous run
of axes): the C runtime calls the same kernels, and numpy's exp and pairwise float32 sums give other
last bits, so the two executors agree bit for bit only if both use them.  numpy is the fallback.
"""
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..ir import MAX_AXES, Attrs, Ints, attr
from ..runtime.program import F32, Unsupported, Val
from .elementwise import c_kernel
from .registry import register
from .tensor import axes_of


def c_mean(x, axes, keepdims):
    """x.mean(axis=axes, keepdims=keepdims) through xnor_mean_f32 (a double sum, one rounding), or None
    when there is no C kernel or the axes (ONNX's: negative from the end) are not distinct and valid.
    Axes that are one contiguous run reduce in place, in index order (the C runtime's mean gives the
    same bits); any other set is first transposed to the end, so the sum is still exact in double."""
    backend = c_kernel(x, "mean_f32")
    if backend is None:
        return None
    axes = [int(a) + x.ndim if int(a) < 0 else int(a) for a in axes]
    if not axes or len(set(axes)) != len(axes) or not all(0 <= a < x.ndim for a in axes):
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


@dataclass
class ReduceAttrs(Attrs):
    axes: Optional[Ints] = attr(None, lo=-MAX_AXES, hi=MAX_AXES - 1)
    keepdims: int = attr(1, lo=0, hi=1)
    noop_with_empty_axes: int = attr(0, lo=0, hi=1)


def _numpy_reduce(fn):
    def run(inputs, attrs, ctx):
        axes = axes_of(inputs, attrs)
        if axes is None or len(axes) == 0:
            if attrs.noop_with_empty_axes and axes is not None:
                return [inputs[0]]
            axes = None
        x = inputs[0]
        return [np.asarray(fn(x, axis=tuple(axes) if axes is not None else None,
                              keepdims=bool(attrs.keepdims))).astype(x.dtype)]
    return run


_numpy_mean = _numpy_reduce(np.mean)


def lower_reduce_mean(lw, node, vals, out):
    what = f"ReduceMean ({node.name})"
    x = lw.float_of(vals[0], f"{what}: operand 0")
    rank = len(lw.dims(x))
    axes = node.attrs.axes
    if len(vals) > 1 and vals[1] is not None:
        if vals[1].tensor is not None:
            raise Unsupported(f"{what}: axes computed at run time")
        axes = vals[1].static
    if axes is None or len(axes) == 0:
        if node.attrs.noop_with_empty_axes and axes is not None:
            return Val(lw.copy(x))
        axes = range(rank)
    begin, end = lw.axes_range([int(v) for v in axes], rank, what)
    return Val(lw.emit("mean", {"x": x}, lw.act(F32, np.shape(lw.traced(out))), begin=begin, end=end))


@register("ReduceMean", attrs=ReduceAttrs, inputs=(1, 2), lower=lower_reduce_mean)
def reduce_mean(inputs, attrs, ctx):
    axes = axes_of(inputs, attrs)
    if axes is None or len(axes) == 0:
        if attrs.noop_with_empty_axes and axes is not None:
            return _numpy_mean(inputs, attrs, ctx)
        axes = range(np.ndim(inputs[0]))
    result = c_mean(inputs[0], axes, bool(attrs.keepdims))
    return [result] if result is not None else _numpy_mean(inputs, attrs, ctx)


for _name, _fn in {"ReduceSum": np.sum, "ReduceMax": np.max, "ReduceMin": np.min}.items():
    register(_name, attrs=ReduceAttrs, inputs=(1, 2))(_numpy_reduce(_fn))


@dataclass
class GlobalPoolAttrs(Attrs):
    nhwc: bool = False  # the input is NHWC (passes/nhwc.py)


def spatial_axes(x, attrs):
    return (1, 2) if attrs.nhwc else tuple(range(2, x.ndim))


def lower_global_average_pool(lw, node, vals, out):
    x = lw.float_of(vals[0], f"GlobalAveragePool ({node.name}): operand 0")
    rank = len(lw.dims(x))
    begin, end = lw.axes_range((1, 2) if node.attrs.nhwc else tuple(range(2, rank)), rank, node.name)
    return Val(lw.emit("mean", {"x": x}, lw.act(F32, np.shape(lw.traced(out))), begin=begin, end=end))


@register("GlobalAveragePool", attrs=GlobalPoolAttrs, lower=lower_global_average_pool)
def global_average_pool(inputs, attrs, ctx):
    x = inputs[0]
    result = c_mean(x, spatial_axes(x, attrs), True)
    if result is not None:
        return [result]
    return [x.mean(axis=spatial_axes(x, attrs), keepdims=True).astype(x.dtype)]


@register("GlobalMaxPool", attrs=GlobalPoolAttrs)
def global_max_pool(inputs, attrs, ctx):
    x = inputs[0]
    return [x.max(axis=spatial_axes(x, attrs), keepdims=True)]


@dataclass
class SoftmaxAttrs(Attrs):
    axis: int = attr(-1, lo=-MAX_AXES, hi=MAX_AXES - 1)
    flatten_trailing: bool = False  # before opset 13: softmax over the axes from `axis` on, taken as one

    @classmethod
    def from_onnx(cls, raw, where, opset):
        """Before opset 13 the input is coerced to 2-D at `axis` (default 1); from 13, one axis (default -1)."""
        legacy = opset < 13
        return cls.parse({"axis": raw.get("axis", 1 if legacy else -1), "flatten_trailing": legacy}, where)


def softmax_axes(rank, attrs):
    axis = attrs.axis + rank if attrs.axis < 0 else attrs.axis
    return axis, rank if attrs.flatten_trailing else axis + 1


def lower_softmax(lw, node, vals, out):
    y = lw.float_of(vals[0], f"Softmax ({node.name}): operand 0")
    begin, end = softmax_axes(len(lw.dims(y)), node.attrs)
    return Val(lw.emit("softmax", {"x": y}, lw.act(F32, lw.dims(y)), begin=begin, end=end))


@register("Softmax", attrs=SoftmaxAttrs, lower=lower_softmax)
def softmax(inputs, attrs, ctx):
    x = inputs[0]
    backend = c_kernel(x, "softmax_f32")
    if -x.ndim <= attrs.axis < x.ndim:
        begin, end = softmax_axes(x.ndim, attrs)
        if backend is not None:
            out = np.empty(x.shape, np.float32)
            backend.softmax_f32(np.ascontiguousarray(x), math.prod(x.shape[:begin]), math.prod(x.shape[begin:end]),
                                math.prod(x.shape[end:]), out)
            return [out]
        if attrs.flatten_trailing:
            flat = x.reshape(int(np.prod(x.shape[:begin], dtype=np.int64)), -1)
            e = np.exp(flat - flat.max(axis=1, keepdims=True))
            return [(e / e.sum(axis=1, keepdims=True)).reshape(x.shape).astype(x.dtype)]
    e = np.exp(x - x.max(axis=attrs.axis, keepdims=True))
    return [(e / e.sum(axis=attrs.axis, keepdims=True)).astype(x.dtype)]


@dataclass
class BatchNormAttrs(Attrs):
    epsilon: float = 1e-5


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


def lower_batchnorm(lw, node, vals, out, axis=1):
    if any(v.tensor is not None for v in vals[1:5]):
        raise Unsupported(f"BatchNormalization ({node.name}): statistics computed at run time")
    scale, bias, mean, var = (v.static for v in vals[1:5])
    x = lw.float_of(vals[0], f"BatchNormalization ({node.name}): operand 0")
    return Val(lw.batchnorm(x, scale, bias, mean, var, node.attrs.epsilon, axis))


@register("BatchNormalization", attrs=BatchNormAttrs, inputs=(5, 5), lower=lower_batchnorm)
def batch_normalization(inputs, attrs, ctx):
    x, scale, bias, mean, var = inputs[:5]
    return [batchnorm(x, scale, bias, mean, var, attrs.epsilon, axis=1)]
