"""ONNX ops that move, reshape or make tensors: Shape, Reshape, Transpose, Concat, Gather, Slice, ...

Most of them only ever run on shapes and constants, and the lowering folds them (runtime/lower.py);
those that can see activations (Reshape and friends, Transpose, Concat) lower to copies, transposes
and concatenations.
"""
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..ir import MAX_AXES, Attrs, Ints, attr
from ..runtime.program import F32, U8, Unsupported, Val
from .elementwise import lower_copy
from .registry import register


@dataclass
class ShapeAttrs(Attrs):
    start: int = attr(0, lo=-MAX_AXES, hi=MAX_AXES)
    end: Optional[int] = attr(None, lo=-MAX_AXES, hi=MAX_AXES)


def lower_static(lw, node, vals, out):
    """Ops whose output depends on the input's shape only: the traced value, as a constant."""
    return lw.traced_static(out)


@register("Shape", attrs=ShapeAttrs, lower=lower_static)
def shape(inputs, attrs, ctx):
    return [np.array(inputs[0].shape, np.int64)[attrs.start:attrs.end]]


@register("Size", lower=lower_static)
def size(inputs, attrs, ctx):
    return [np.array(inputs[0].size, np.int64)]


@dataclass
class FlattenAttrs(Attrs):
    axis: int = attr(1, lo=-MAX_AXES, hi=MAX_AXES)


@register("Flatten", attrs=FlattenAttrs, lower=lower_copy)
def flatten(inputs, attrs, ctx):
    x = inputs[0]
    axis = attrs.axis + x.ndim if attrs.axis < 0 else attrs.axis
    return [x.reshape(int(np.prod(x.shape[:axis], dtype=np.int64)), -1)]


@dataclass
class ReshapeAttrs(Attrs):
    allowzero: int = attr(0, lo=0, hi=1)


@register("Reshape", attrs=ReshapeAttrs, inputs=(2, 2), lower=lower_copy)
def reshape(inputs, attrs, ctx):
    x, target = inputs[0], [int(v) for v in inputs[1]]
    if not attrs.allowzero:
        target = [x.shape[i] if v == 0 else v for i, v in enumerate(target)]
    return [x.reshape(target)]


@dataclass
class TransposeAttrs(Attrs):
    perm: Optional[Ints] = attr(None, lo=0, hi=MAX_AXES - 1)


def lower_transpose(lw, node, vals, out):
    x = vals[0]
    if x.tensor is None or x.channels is not None:
        raise Unsupported(f"Transpose ({node.name}): not a tensor")
    perm = node.attrs.perm or list(range(len(lw.dims(x.tensor))))[::-1]
    return Val(lw.transpose(x.tensor, [int(p) for p in perm]))


@register("Transpose", attrs=TransposeAttrs, lower=lower_transpose)
def transpose(inputs, attrs, ctx):
    return [np.ascontiguousarray(np.transpose(inputs[0], attrs.perm))]


@dataclass
class AxesAttrs(Attrs):
    """Squeeze / Unsqueeze / the reductions before opsets 13 / 18 state their axes as an attribute;
    later, as input 1."""
    axes: Optional[Ints] = attr(None, lo=-MAX_AXES, hi=MAX_AXES - 1)


def axes_of(inputs, attrs, index=1):
    if len(inputs) > index and inputs[index] is not None:
        return [int(a) for a in inputs[index]]
    return None if attrs.axes is None else list(attrs.axes)


@register("Squeeze", attrs=AxesAttrs, inputs=(1, 2), lower=lower_copy)
def squeeze(inputs, attrs, ctx):
    axes = axes_of(inputs, attrs)
    return [np.squeeze(inputs[0], axis=tuple(axes) if axes is not None else None)]


@register("Unsqueeze", attrs=AxesAttrs, inputs=(1, 2), lower=lower_copy)
def unsqueeze(inputs, attrs, ctx):
    x, axes = inputs[0], axes_of(inputs, attrs)
    for a in sorted(a + x.ndim + len(axes) if a < 0 else a for a in axes):
        x = np.expand_dims(x, a)
    return [x]


@dataclass
class ConcatAttrs(Attrs):
    axis: int = attr(lo=-MAX_AXES, hi=MAX_AXES - 1)


def lower_concat(lw, node, vals, out):
    what = f"Concat ({node.name})"
    parts = []
    for v in vals:
        if v is None:
            continue
        if v.tensor is None:
            arr = np.asarray(v.static)
            parts.append(lw.const(arr, F32 if arr.dtype == np.float32 else U8))
        elif v.channels is not None:
            raise Unsupported(f"{what}: packed operands")
        else:
            parts.append(v.tensor)
    if len({lw.type(t) for t in parts}) != 1:
        raise Unsupported(f"{what}: operands of different types")
    dims = np.shape(lw.traced(out))
    axis = node.attrs.axis + len(dims) if node.attrs.axis < 0 else node.attrs.axis
    return Val(lw.emit("concat", {"x": parts}, lw.act(lw.type(parts[0]), dims), axis=axis))


@register("Concat", attrs=ConcatAttrs, inputs=(1, None), lower=lower_concat)
def concat(inputs, attrs, ctx):
    return [np.concatenate([i for i in inputs if i is not None], axis=attrs.axis)]


@dataclass
class GatherAttrs(Attrs):
    axis: int = attr(0, lo=-MAX_AXES, hi=MAX_AXES - 1)


@register("Gather", attrs=GatherAttrs, inputs=(2, 2))
def gather(inputs, attrs, ctx):
    return [np.take(inputs[0], inputs[1].astype(np.int64), axis=attrs.axis)]


@register("Slice", inputs=(3, 5))
def slice_(inputs, attrs, ctx):
    x = inputs[0]
    starts, ends = inputs[1], inputs[2]
    axes = inputs[3] if len(inputs) > 3 and inputs[3] is not None else range(len(starts))
    steps = inputs[4] if len(inputs) > 4 and inputs[4] is not None else [1] * len(starts)
    index = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        index[int(a)] = slice(int(s), int(e), int(st))
    return [x[tuple(index)]]


@register("Expand", inputs=(2, 2))
def expand(inputs, attrs, ctx):
    x, target = inputs
    return [x * np.ones([int(v) for v in target], x.dtype)]


@dataclass
class ConstantAttrs(Attrs):
    value: np.ndarray = attr()


@register("Constant", attrs=ConstantAttrs, inputs=(0, 0))
def constant(inputs, attrs, ctx):
    return [attrs.value]


@dataclass
class ConstantOfShapeAttrs(Attrs):
    value: Optional[np.ndarray] = None


@register("ConstantOfShape", attrs=ConstantOfShapeAttrs)
def constant_of_shape(inputs, attrs, ctx):
    value = attrs.value if attrs.value is not None else np.zeros(1, np.float32)
    return [np.full([int(v) for v in inputs[0]], value.reshape(-1)[0], value.dtype)]
