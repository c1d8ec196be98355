"""Lowering: a planned graph, at fixed input shapes, -> the C runtime's program.

The program is a list of steps over tensors whose shapes are all known: the kernels of the C library
composed exactly as the Python executor composes them, so a run in C gives the same bits as a run in
Python.  Shapes come from one traced run of the Python executor; values that depend only on constants
and shapes (ONNX shape arithmetic) are folded into constants.  Each op lowers itself (its `lower` in
xnorinfer/operators/), through the primitives of `Lowerer` below; an op, or a form of one, that the C
side does not have raises Unsupported naming it, and the model then runs on the Python executor.
"""
import numpy as np

from ..kernels import pack, words_for
from ..operators import OPS, Packed
from . import schema
from .program import ACT, BITS, CONST, F32, I32, NUMPY, U8, Program, Tensor, Unsupported, Val

__all__ = ["Lowerer", "lower", "Unsupported", "Val"]


class Lowerer:
    """The program under construction, and the graph values known so far (`vals`: name -> Val)."""

    def __init__(self, graph, env):
        self.graph, self.env = graph, env
        self.tensors, self.steps, self.vals, self._consts = [], [], {}, {}
        self.node = None        # the graph node being lowered: its steps and tensors carry its name
        self.step_nodes = []    # (node name, node op) of each step, for profiles

    # ---- tensors and steps ----------------------------------------------------------------------
    def act(self, type_, dims, name=""):
        dims = tuple(int(d) for d in dims)
        if len(dims) > schema.MAX_RANK:
            raise Unsupported(f"a tensor of rank {len(dims)} (the runtime has at most {schema.MAX_RANK})")
        if any(d < 1 for d in dims):
            raise Unsupported(f"an empty tensor {dims}")
        self.tensors.append(Tensor(type_, dims, ACT, name=name or (self.node.name if self.node else "")))
        return len(self.tensors) - 1

    def const(self, arr, type_):
        arr = np.ascontiguousarray(arr, NUMPY[type_])
        key = (id(arr), type_)
        if key in self._consts and self._consts[key][1] is arr:
            return self._consts[key][0]
        if arr.ndim > schema.MAX_RANK or arr.size == 0:
            raise Unsupported(f"a constant of shape {arr.shape}")
        self.tensors.append(Tensor(type_, arr.shape, CONST, arr))
        self._consts[key] = (len(self.tensors) - 1, arr)
        return len(self.tensors) - 1

    def emit(self, op, inputs, out, **params):
        """A step of runtime op `op` (schema.py): operands and parameters by name; returns `out`."""
        try:
            self.steps.append(schema.encode_step(op, inputs, out, params))
        except schema.ParamError as exc:
            raise Unsupported(str(exc)) from None
        self.step_nodes.append((self.node.name, self.node.op) if self.node else ("", ""))
        return out

    def dims(self, t):
        return self.tensors[t].dims

    def type(self, t):
        return self.tensors[t].type

    # ---- values ---------------------------------------------------------------------------------
    def float_of(self, v, what):
        """The float32 tensor of a Val (a static one becomes a constant)."""
        if v is None:
            raise Unsupported(f"{what} is not available to the runtime")
        if v.tensor is not None:
            if v.channels is not None or self.tensors[v.tensor].type != F32:
                raise Unsupported(f"{what} is not float32")
            return v.tensor
        arr = np.asarray(v.static)
        if arr.dtype != np.float32:
            raise Unsupported(f"{what} is a constant of {arr.dtype}, not float32")
        return self.const(arr, F32)

    def bits_of(self, v, what):
        """(tensor, channels) of a packed Val."""
        if v is None or v.channels is None:
            raise Unsupported(f"{what} is not packed bits")
        return v.tensor, v.channels

    def static(self, name):
        v = self.vals.get(name)
        return None if v is None else v.static

    def traced(self, name):
        """The value the traced run gave `name`."""
        return self.env[name]

    def traced_static(self, name):
        """`name`'s traced value as a static Val (ops whose output depends on shapes only)."""
        value = self.env[name]
        if isinstance(value, Packed):
            raise Unsupported(f"{name}: a constant packed value")
        return Val(static=np.asarray(value))

    # ---- the pieces ops share -------------------------------------------------------------------
    def copy(self, x, dims=None):
        return self.emit("copy", {"x": x}, self.act(self.type(x), self.dims(x) if dims is None else dims))

    def transpose(self, t, perm):
        dims = self.dims(t)
        out = self.act(self.type(t), [dims[p] for p in perm])
        return self.emit("transpose", {"x": t}, out, perm=[int(p) for p in perm])

    def arith(self, fn, a, b):
        """a <fn> b (schema.ARITH's names), numpy broadcasting."""
        shape = np.broadcast_shapes(self.dims(a), self.dims(b))
        out = self.act(U8 if fn in schema.COMPARISONS else F32, shape or (1,))
        return self.emit("arith", {"a": a, "b": b}, out, fn=fn)

    def unary(self, fn, x):
        return self.emit("unary", {"x": x}, self.act(F32, self.dims(x)), fn=fn)

    @staticmethod
    def axes_range(axes, rank, what):
        """[begin, end) of a set of axes that is one contiguous run, else Unsupported."""
        axes = sorted({a + rank if a < 0 else a for a in axes})
        if not axes or axes != list(range(axes[0], axes[-1] + 1)) or axes[0] < 0 or axes[-1] >= rank:
            raise Unsupported(f"{what}: reduced axes {axes} are not one contiguous run")
        return axes[0], axes[-1] + 1

    def scalar(self, value):
        return self.const(np.asarray(value, np.float32), F32)

    def batchnorm(self, x, scale, bias, mean, var, epsilon, axis):
        scale, bias, mean, var = (np.asarray(p).astype(np.float32).reshape(-1) for p in (scale, bias, mean, var))
        denom = np.sqrt(var + np.float32(epsilon))  # what the executor's batchnorm divides by, in float32
        out = self.act(F32, self.dims(x))
        return self.emit("batchnorm", {"x": x, "mean": self.const(mean, F32), "denom": self.const(denom, F32),
                                       "scale": self.const(scale, F32), "bias": self.const(bias, F32)},
                         out, axis=axis)

    def fconv(self, x, layer, what):
        """A float layers.Conv2d (prepared weights) on an NHWC (or (N, C)) tensor."""
        if layer.direct_weights is None:
            raise Unsupported(f"{what}: a float conv the C kernels do not run (grouped, or not float32)")
        dims = self.dims(x)
        n, h, w, c = dims if len(dims) == 4 else (dims[0], 1, 1, dims[1])
        p, (oh, ow) = layer.conv_params((n, h, w, c))
        o = layer.w.shape[0]
        bias = None if layer.direct_bias is None else self.const(layer.direct_bias, F32)
        out = self.act(F32, (n, oh, ow, o) if len(dims) == 4 else (n, o))
        return self.emit("fconv", {"x": x, "w": self.const(layer.direct_weights, F32), "bias": bias}, out,
                         groups=layer.groups, **window_params(p))

    def pack(self, x, minus, ternary):
        dims = self.dims(x)
        out = self.act(BITS, dims[:-1] + (words_for(dims[-1]),))
        return self.emit("pack", {"x": x}, out, minus_mask=sum(1 << i for i, m in enumerate(minus) if m),
                         ternary=int(bool(ternary)))

    def bconv(self, x, layer, residual=None):
        """A layers.BConv2d on packed bits (N, H, W, words) or (N, words)."""
        dims = self.dims(x)
        n, h, w = (dims[0], dims[1], dims[2]) if len(dims) == 4 else (dims[0], 1, 1)
        p, (oh, ow) = layer.conv_params((n, h, w, dims[-1]))
        t, oc = layer.transform, layer.out_channels
        if len(dims) == 2 and (oh, ow) != (1, 1):
            raise Unsupported("a dense layer whose output is not 1x1")
        kind = schema.OUTPUT_KIND.names[t.kind]
        out_dims = ((n, oh, ow) if len(dims) == 4 else (n,)) + ((words_for(oc),) if kind == "packed" else (oc,))
        out = self.act({"int32": I32, "float32": F32, "packed": BITS}[kind], out_dims)
        arrays = {"scale": (t.scale, F32), "bias": (t.bias, F32), "thresholds": (t.thresholds, I32),
                  "flip": (t.flip, U8)}
        ins = {name: None if a is None else self.const(a, type_) for name, (a, type_) in arrays.items()}
        lo, hi = t.acc_clamp if t.acc_clamp is not None else (0, 0)
        return self.emit("bconv", dict(ins, x=x, w=self.const(layer.w, BITS), residual=residual), out,
                         in_c=p["in_c"], groups=p["groups"], pad_value=p["pad_value"], kind=kind,
                         clamp_min=t.clamp[0], clamp_max=t.clamp[1], acc_clamp=int(t.acc_clamp is not None),
                         acc_min=lo, acc_max=hi, **window_params(p))

    def bmaxpool(self, x, channels, geometry, or_mask=None):
        """Bit max-pool of packed NHWC x over a ConvGeometry; or_mask: uint8 per channel pooled by OR."""
        dims = self.dims(x)
        if not geometry.fits:
            raise Unsupported("a bit max-pool with an empty output")
        p = geometry.c_params(dims[0], channels, channels)
        oh, ow = conv_out_hw(p)
        out = self.act(BITS, (dims[0], oh, ow, dims[3]))
        mask = None
        if or_mask is not None and or_mask.any():
            mask = self.const(pack(np.where(or_mask.astype(bool), -1.0, 1.0).astype(np.float32)), BITS)
        return self.emit("bmaxpool", {"x": x, "or_mask": mask}, out, channels=channels, kernel_h=p["kernel_h"],
                         kernel_w=p["kernel_w"], **window_params(p))

    def pool(self, x, kind, geometry):
        """Float max / average pool of NHWC x over a ConvGeometry (schema.POOL_KIND's names)."""
        dims = self.dims(x)
        p = geometry.c_params(dims[0], dims[3], dims[3])
        oh, ow = conv_out_hw(p)
        out = self.act(F32, (dims[0], oh, ow, dims[3]))
        return self.emit("pool", {"x": x}, out, kind=kind, kernel_h=p["kernel_h"], kernel_w=p["kernel_w"],
                         **window_params(p))


def window_params(p):
    """The window parameters the schema's spatial ops share, from xnor_conv_params fields."""
    return {k: p[k] for k in ("stride_h", "stride_w", "dilation_h", "dilation_w", "pad_top", "pad_bottom",
                              "pad_left", "pad_right")}


def conv_out_hw(p):
    """Output height and width of xnor_conv_params fields (as xnor_conv_output_size computes them)."""
    return tuple((size + lo + hi - (d * (k - 1) + 1)) // s + 1 for size, lo, hi, k, d, s in (
        (p["in_h"], p["pad_top"], p["pad_bottom"], p["kernel_h"], p["dilation_h"], p["stride_h"]),
        (p["in_w"], p["pad_left"], p["pad_right"], p["kernel_w"], p["dilation_w"], p["stride_w"])))


def _fold(lw, node):
    """A node whose outputs follow from constants and shapes alone: their traced values."""
    for o in node.outputs:
        if o:
            lw.vals[o] = lw.traced_static(o)


def _lower_node(lw, node):
    what = f"{node.op} ({node.name})"
    opdef = OPS.get(node.op)
    if opdef is None or opdef.lower is None:
        raise Unsupported(f"{what}: the C runtime has no {node.op}")
    if len([o for o in node.outputs if o]) != 1:
        raise Unsupported(f"{what}: more than one output")
    vals = [lw.vals.get(i) if i else None for i in node.inputs]
    if any(i and v is None for i, v in zip(node.inputs, vals)):
        raise Unsupported(f"{what}: an input the runtime does not have")
    val = opdef.lower(lw, node, vals, node.outputs[0])
    if val.tensor is not None and val.channels is None:
        traced = lw.traced(node.outputs[0])
        if isinstance(traced, Packed) or tuple(np.shape(traced)) != lw.dims(val.tensor) and \
                not (np.shape(traced) == () and lw.dims(val.tensor) == (1,)):
            raise Unsupported(f"{what}: the runtime's shape {lw.dims(val.tensor)} is not the traced {np.shape(traced)}")
    lw.vals[node.outputs[0]] = val


def _output(lw, v, inputs, outputs):
    val = lw.vals.get(v.name)
    if val is None or val.channels is not None:
        raise Unsupported(f"output {v.name!r} is not a float or boolean tensor")
    if val.tensor is None:
        arr = np.asarray(val.static)
        if arr.dtype not in (np.float32, np.bool_):
            raise Unsupported(f"output {v.name!r} is a constant of dtype {arr.dtype}")
        c = lw.const(arr, F32 if arr.dtype == np.float32 else U8)
        val = Val(lw.copy(c, arr.shape or (1,)))
    t = val.tensor
    if t in inputs or t in outputs:  # an output the program must still write: a copy
        t = lw.copy(t)
    lw.tensors[t].name = v.name
    return t


def lower(graph, env, input_shapes):
    """The Program for `graph` run on inputs of `input_shapes` ({name: shape}); env holds every value of
    one Python run on such inputs (executor.run_steps)."""
    lw = Lowerer(graph, env)
    for name, value in graph.constants.items():
        lw.vals[name] = Val(static=value)
    inputs = []
    for v in graph.inputs:
        if np.dtype(v.dtype) != np.float32:
            raise Unsupported(f"input {v.name!r} is {np.dtype(v.dtype)}, not float32")
        t = lw.act(F32, input_shapes[v.name] or (1,), v.name)
        lw.vals[v.name] = Val(t)
        inputs.append(t)
    for node in graph.nodes:
        present = [i for i in node.inputs if i]
        if all(lw.static(i) is not None for i in present) and (present or not node.op.startswith("X")):
            _fold(lw, node)
        else:
            lw.node = node
            _lower_node(lw, node)
    lw.node = None
    outputs, dtypes = [], []
    for v in graph.outputs:
        t = _output(lw, v, inputs, outputs)
        outputs.append(t)
        traced = np.asarray(env[v.name])
        dtypes.append((np.dtype(np.bool_) if lw.tensors[t].type == U8 else np.dtype(np.float32), traced.shape))
    if not lw.steps:
        raise Unsupported("the graph has no steps")
    return Program(lw.tensors, lw.steps, inputs, outputs, dtypes, lw.step_nodes)
