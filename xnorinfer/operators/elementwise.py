"""Elementwise ONNX ops: numpy semantics for the Python executor, and their C runtime steps.

Float32 results of the C kernels equal numpy's float32 ufuncs bit for bit (one IEEE operation per
element, in the order written), so the two executors agree exactly.
"""
import functools
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..ir import Attrs, attr
from ..kernels import get_backend
from ..runtime.program import F32, U8, Unsupported, Val
from .registry import register

# ONNX op -> the runtime's two-operand float op (schema.ARITH)
ARITH_OPS = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Max": "max", "Min": "min", "PRelu": "prelu",
             "Greater": "greater", "GreaterOrEqual": "greater_equal", "Less": "less", "LessOrEqual": "less_equal",
             "Equal": "equal"}
# ONNX op -> the runtime's one-operand float op (schema.UNARY)
UNARY_OPS = {"Relu": "relu", "Neg": "neg", "Abs": "abs", "Round": "round", "Floor": "floor", "Ceil": "ceil",
             "Sigmoid": "sigmoid"}


def c_kernel(x, name):
    """The active backend if it has the C kernel `name` and x is a non-empty float32 array, else None.
    Ops whose numpy and C results differ in the last bits (exp, float sums) run the C kernel when there
    is one, so the Python executor gives the C runtime's bits."""
    if not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.ndim == 0 or x.size == 0:
        return None
    backend = get_backend()
    return backend if hasattr(backend, name) else None


def operand(lw, node, vals, i):
    """Operand i of a float op as a float32 tensor (a static one becomes a constant)."""
    return lw.float_of(vals[i], f"{node.op} ({node.name}): operand {i}")


def lower_arith(lw, node, vals, out):
    if len(vals) != 2:
        raise Unsupported(f"{node.op} ({node.name}): {len(vals)} operands")
    return Val(lw.arith(ARITH_OPS[node.op], operand(lw, node, vals, 0), operand(lw, node, vals, 1)))


def lower_unary(lw, node, vals, out):
    return Val(lw.unary(UNARY_OPS[node.op], operand(lw, node, vals, 0)))


def lower_copy(lw, node, vals, out):
    """Ops that only rename or reshape a float or boolean tensor: a copy into the traced shape (out None:
    a node inside a fused op, which keeps its input's shape)."""
    x = vals[0]
    if x.tensor is None or x.channels is not None:
        raise Unsupported(f"{node.op} ({node.name}): not a float tensor")
    return Val(lw.copy(x.tensor, None if out is None else np.shape(lw.traced(out))))


def _numpy_binary(fn):
    return lambda inputs, attrs, ctx: [np.asarray(fn(inputs[0], inputs[1]))]


def _numpy_unary(fn):
    return lambda inputs, attrs, ctx: [np.asarray(fn(inputs[0]))]


for _name, _fn in {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Greater": np.greater,
                   "GreaterOrEqual": np.greater_equal, "Less": np.less, "LessOrEqual": np.less_equal,
                   "Equal": np.equal}.items():
    register(_name, inputs=(2, 2), lower=lower_arith)(_numpy_binary(_fn))
for _name, _fn in {"Pow": np.power, "And": np.logical_and, "Or": np.logical_or, "Xor": np.logical_xor}.items():
    register(_name, inputs=(2, 2))(_numpy_binary(_fn))
for _name, _fn in {"Max": np.maximum, "Min": np.minimum}.items():  # ONNX's are variadic
    register(_name, inputs=(1, None), lower=lower_arith)(lambda inputs, attrs, ctx, fn=_fn: [np.asarray(functools.reduce(fn, inputs))])
for _name, _fn in {"Neg": np.negative, "Abs": np.abs, "Floor": np.floor, "Ceil": np.ceil, "Round": np.round}.items():
    register(_name, lower=lower_unary)(_numpy_unary(_fn))
for _name, _fn in {"Sign": np.sign, "Sqrt": np.sqrt, "Exp": np.exp, "Log": np.log, "Not": np.logical_not,
                   "Reciprocal": np.reciprocal, "Tanh": np.tanh}.items():
    register(_name)(_numpy_unary(_fn))


@register("Div", inputs=(2, 2), lower=lower_arith)
def div(inputs, attrs, ctx):
    a, b = inputs
    if np.asarray(a).dtype.kind in "iu" and np.asarray(b).dtype.kind in "iu":
        return [np.asarray(np.trunc(np.divide(a, b))).astype(np.result_type(a, b))]
    return [np.asarray(np.divide(a, b))]


@register("Identity", "Dropout", inputs=(1, 3), lower=lower_copy)
def identity(inputs, attrs, ctx):
    return [inputs[0]]


@register("Relu", lower=lower_unary)
def relu(inputs, attrs, ctx):
    x = inputs[0]
    return [np.maximum(x, np.zeros((), x.dtype))]


def lower_prelu(lw, node, vals, out):
    slope = vals[1]
    if slope.tensor is None:  # a constant slope of any dtype, as float32
        slope = Val(static=np.asarray(slope.static).astype(np.float32))
    return Val(lw.arith("prelu", operand(lw, node, vals, 0), lw.float_of(slope, f"PRelu ({node.name}): slope")))


@register("PRelu", inputs=(2, 2), lower=lower_prelu)
def prelu(inputs, attrs, ctx):
    x, slope = inputs
    return [np.where(x < 0, x * slope.astype(x.dtype), x)]


@dataclass
class LeakyReluAttrs(Attrs):
    alpha: float = 0.01


def lower_leaky_relu(lw, node, vals, out):
    y = operand(lw, node, vals, 0)
    negative = lw.arith("less", y, lw.scalar(0.0))
    scaled = lw.arith("mul", y, lw.scalar(node.attrs.alpha))
    return Val(lw.emit("where", {"cond": negative, "a": scaled, "b": y}, lw.act(F32, lw.dims(y))))


@register("LeakyRelu", attrs=LeakyReluAttrs, lower=lower_leaky_relu)
def leaky_relu(inputs, attrs, ctx):
    x = inputs[0]
    return [np.where(x < 0, x * np.asarray(attrs.alpha, x.dtype), x)]


@register("Sigmoid", lower=lower_unary)
def sigmoid(inputs, attrs, ctx):
    """In C where there is the kernel (exp in double, one rounding: the C runtime's bits), else numpy."""
    x = inputs[0]
    backend = c_kernel(x, "unary_f32")
    if backend is None:
        return [(1 / (1 + np.exp(-x))).astype(x.dtype)]
    out = np.empty(x.shape, np.float32)
    backend.unary_f32("sigmoid", np.ascontiguousarray(x), out)
    return [out]


@dataclass
class HardSigmoidAttrs(Attrs):
    alpha: float = 0.2
    beta: float = 0.5


@register("HardSigmoid", attrs=HardSigmoidAttrs)
def hard_sigmoid(inputs, attrs, ctx):
    x = inputs[0]
    alpha, beta = np.asarray(attrs.alpha, x.dtype), np.asarray(attrs.beta, x.dtype)
    return [np.clip(x * alpha + beta, 0, 1).astype(x.dtype)]


@dataclass
class ClipAttrs(Attrs):
    """Clip before opset 11 states its bounds as attributes; later, as inputs 1 and 2."""
    min: Optional[float] = None
    max: Optional[float] = None


def clip_bounds(graph, node):
    """(lo, hi) of a Relu or of a Clip whose bounds are constants (missing bounds are infinite)."""
    if node.op == "Relu":
        return 0.0, np.inf
    lo, hi = graph.scalar(node.input(1)), graph.scalar(node.input(2))
    lo = lo if lo is not None else node.attrs.min if node.attrs.min is not None else -np.inf
    hi = hi if hi is not None else node.attrs.max if node.attrs.max is not None else np.inf
    return float(lo), float(hi)


def lower_clip(lw, node, vals, out):
    bounds = []
    for i, default in ((1, node.attrs.min), (2, node.attrs.max)):
        v = vals[i] if i < len(vals) else None
        if v is not None and v.tensor is not None:
            raise Unsupported(f"Clip ({node.name}): bounds computed at run time")
        bounds.append(v.static if v is not None else default)
    y = operand(lw, node, vals, 0)
    lo, hi = bounds
    if lo is not None:
        y = lw.arith("max", y, lw.scalar(lo))
    if hi is not None:
        y = lw.arith("min", y, lw.scalar(hi))
    return Val(y if (lo is not None or hi is not None) else lw.copy(y))


@register("Clip", attrs=ClipAttrs, inputs=(1, 3), lower=lower_clip)
def clip(inputs, attrs, ctx):
    x = inputs[0]
    lo = inputs[1] if len(inputs) > 1 and inputs[1] is not None else attrs.min
    hi = inputs[2] if len(inputs) > 2 and inputs[2] is not None else attrs.max
    if lo is not None:
        x = np.maximum(x, np.asarray(lo, x.dtype))
    if hi is not None:
        x = np.minimum(x, np.asarray(hi, x.dtype))
    return [x]


def lower_where(lw, node, vals, out):
    cond = vals[0]
    if cond.tensor is None:
        c = lw.const(np.asarray(cond.static).astype(np.uint8), U8)
    elif lw.type(cond.tensor) == U8:
        c = cond.tensor
    else:
        raise Unsupported(f"Where ({node.name}): the condition is not boolean")
    a, b = operand(lw, node, vals, 1), operand(lw, node, vals, 2)
    shape = np.broadcast_shapes(lw.dims(c), lw.dims(a), lw.dims(b)) or (1,)
    return Val(lw.emit("where", {"cond": c, "a": a, "b": b}, lw.act(F32, shape)))


@register("Where", inputs=(3, 3), lower=lower_where)
def where(inputs, attrs, ctx):
    cond, a, b = inputs
    return [np.where(cond, a, b)]


ONNX_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 9: "bool",
               10: "float16", 11: "float64", 12: "uint32", 13: "uint64"}


@dataclass
class CastAttrs(Attrs):
    to: str = attr(choices=tuple(ONNX_DTYPES.values()))

    @classmethod
    def from_onnx(cls, raw, where, opset):
        code = raw.get("to")
        return cls.parse(dict(raw, to=ONNX_DTYPES.get(code, f"ONNX element type {code}")), where)


@register("Cast", attrs=CastAttrs)
def cast(inputs, attrs, ctx):
    return [inputs[0].astype(attrs.to)]
