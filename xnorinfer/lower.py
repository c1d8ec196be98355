"""Lowering: a planned graph, at fixed input shapes, -> the C runtime's program.

The program (layout in csrc/runtime/program.h) is a list of steps over tensors whose shapes are all
known: the kernels of the C library composed exactly as the Python executor (binary_ops.py,
float_ops.py) composes them, so a run in C gives the same bits as a run in Python.  Shapes come from one
traced run of the Python steps; values that depend only on constants and shapes (ONNX shape
arithmetic) are folded into constants.  An op, or a form of one, that the C side does not have raises
Unsupported naming it: the model then runs on the Python executor.
"""
import struct
from dataclasses import dataclass

import numpy as np

from . import kernels, layers as ops
from .binary_ops import Packed, _or_mask_words, _out_kw, pool_geometry
from .float_ops import ShapedConv, _spatial, conv_pads

MAGIC = b"XNORPRG1"
T_F32, T_U8, T_I32, T_BITS = 1, 2, 3, 4
CONST, ACT = 0, 1
(OP_COPY, OP_PACK, OP_BCONV, OP_BMAXPOOL, OP_FCONV, OP_POOL, OP_BINARY, OP_WHERE, OP_UNARY, OP_BATCHNORM,
 OP_SOFTMAX, OP_MEAN, OP_TRANSPOSE, OP_CONCAT) = range(1, 15)
BINARY = {"Add": 0, "Sub": 1, "Mul": 2, "Div": 3, "Max": 4, "Min": 5, "PRelu": 6, "Greater": 7,
          "GreaterOrEqual": 8, "Less": 9, "LessOrEqual": 10, "Equal": 11}
UNARY = {"Relu": 0, "Neg": 1, "Abs": 2, "Round": 3, "Floor": 4, "Ceil": 5}
ROUNDING = {"ROUND": 3, "HALF_EVEN": 3, "FLOOR": 4, "CEIL": 5, "DOWN": 6, "UP": 7, "HALF_UP": 8, "HALF_DOWN": 9}
POOL_KINDS = {"max": 0, "avg": 1, "avg_include_pad": 2}
MAX_RANK = 6
_NUMPY = {T_F32: np.float32, T_U8: np.uint8, T_I32: np.int32, T_BITS: np.uint64}


class Unsupported(Exception):
    """The graph holds something the C runtime cannot run (the message says what and where)."""


@dataclass
class Tensor:
    type: int
    dims: tuple
    kind: int
    array: np.ndarray = None   # constants
    name: str = ""


@dataclass
class Val:
    """A value of the graph during lowering: a tensor (float, bool, or packed bits with its channel
    count), or a static numpy value."""
    tensor: int = None
    static: object = None
    channels: int = None       # packed bits only


@dataclass
class Program:
    tensors: list
    steps: list                # (op, inputs, outputs, params)
    inputs: list
    outputs: list
    output_dtypes: list

    def constants(self):
        return [t.array for t in self.tensors if t.kind == CONST]

    def serialize(self, const_offsets):
        """The program's bytes; const_offsets[i] is where constant i (in constants() order) lies in the
        data section."""
        names, strings = {}, bytearray()

        def name_offset(name):
            if not name:
                return -1
            if name not in names:
                names[name] = len(strings)
                strings.extend(name.encode() + b"\0")
            return names[name]

        words, ci = [], 0
        for t in self.tensors:
            dims = list(t.dims) + [0] * (MAX_RANK - len(t.dims))
            nbytes = int(np.prod(t.dims, dtype=np.int64)) * np.dtype(_NUMPY[t.type]).itemsize
            offset = 0
            if t.kind == CONST:
                offset, ci = const_offsets[ci], ci + 1
            words += [t.type, len(t.dims)] + dims + [t.kind, offset, nbytes, name_offset(t.name)]
        step_words = []
        for op, ins, outs, params in self.steps:
            step_words += [op, len(ins), len(outs), len(params)] + list(ins) + list(outs) + list(params)
        strings.extend(b"\0" * ((-len(strings)) % 8))
        head = [struct.unpack("<q", MAGIC)[0], len(self.tensors), len(self.steps), len(self.inputs),
                len(self.outputs), len(strings), len(step_words), 0]
        body = head + words + list(self.inputs) + list(self.outputs) + step_words
        return struct.pack(f"<{len(body)}q", *body) + bytes(strings)


def _f64_bits(v):
    return struct.unpack("<q", struct.pack("<d", float(v)))[0]


def _words_dims(p):
    """Dims of a Packed value's words, whether the trace ran the packed or the exact float path."""
    if p.words is not None:
        return tuple(p.words.shape)
    shape = p.shape  # NCHW / NC
    if len(shape) == 4:
        return (shape[0], shape[2], shape[3], kernels.words_for(shape[1]))
    return (shape[0], kernels.words_for(shape[1]))


class Lowerer:
    def __init__(self, graph, env):
        self.graph, self.env = graph, env
        self.tensors, self.steps, self.vals, self._consts = [], [], {}, {}

    # ---- tensors --------------------------------------------------------------------------------
    def act(self, type_, dims, name=""):
        dims = tuple(int(d) for d in dims)
        if len(dims) > MAX_RANK:
            raise Unsupported(f"a tensor of rank {len(dims)} (the runtime has at most {MAX_RANK})")
        if any(d < 1 for d in dims):
            raise Unsupported(f"an empty tensor {dims}")
        self.tensors.append(Tensor(type_, dims, ACT, name=name))
        return len(self.tensors) - 1

    def const(self, arr, type_):
        arr = np.ascontiguousarray(arr, _NUMPY[type_])
        key = (id(arr), type_)
        if key in self._consts and self._consts[key][1] is arr:
            return self._consts[key][0]
        if arr.ndim > MAX_RANK or arr.size == 0:
            raise Unsupported(f"a constant of shape {arr.shape}")
        self.tensors.append(Tensor(type_, arr.shape, CONST, arr))
        self._consts[key] = (len(self.tensors) - 1, arr)
        return len(self.tensors) - 1

    def emit(self, op, ins, out, params=()):
        self.steps.append((op, [(-1 if i is None else i) for i in ins], [out], [int(p) for p in params]))
        return out

    def dims(self, t):
        return self.tensors[t].dims

    # ---- values ---------------------------------------------------------------------------------
    def float_in(self, name, what):
        """A float32 operand by graph name: a tensor, or a static value stored as a constant."""
        v = self.vals.get(name)
        if v is None:
            raise Unsupported(f"{what}: input {name!r} is not available to the runtime")
        return self.float_of(v, f"{what}: input {name!r}")

    def float_of(self, v, what):
        """The float32 tensor of a Val (a static one becomes a constant)."""
        if v.tensor is not None:
            if v.channels is not None or self.tensors[v.tensor].type != T_F32:
                raise Unsupported(f"{what} is not float32")
            return v.tensor
        arr = np.asarray(v.static)
        if arr.dtype != np.float32:
            raise Unsupported(f"{what} is a constant of {arr.dtype}, not float32")
        return self.const(arr, T_F32)

    def bits_in(self, name, what):
        v = self.vals.get(name)
        if v is None or v.channels is None:
            raise Unsupported(f"{what}: input {name!r} is not packed bits")
        return v.tensor, v.channels

    def static(self, name):
        v = self.vals.get(name)
        return None if v is None else v.static

    def traced(self, name):
        return self.env[name]

    # ---- the pieces ops share -------------------------------------------------------------------
    def transpose(self, t, perm):
        dims = self.dims(t)
        out = self.act(self.tensors[t].type, [dims[p] for p in perm])
        return self.emit(OP_TRANSPOSE, [t], out, perm)

    def binary(self, op, a, b):
        shape = np.broadcast_shapes(self.dims(a), self.dims(b))
        out = self.act(T_U8 if BINARY[op] >= BINARY["Greater"] else T_F32, shape or (1,))
        return self.emit(OP_BINARY, [a, b], out, [BINARY[op]])

    def unary(self, code, x):
        return self.emit(OP_UNARY, [x], self.act(T_F32, self.dims(x)), [code])

    def fconv(self, x, layer, what):
        """A float ops.Conv2d (prepared weights) on an NHWC (or (N, C)) tensor."""
        if layer._direct_weights is None:
            raise Unsupported(f"{what}: a float conv the C kernels do not run (grouped, or not float32)")
        dims = self.dims(x)
        n, h, w, c = dims if len(dims) == 4 else (dims[0], 1, 1, dims[1])
        o, kh, kw, _ = layer.w.shape
        g, (oh, ow) = ops._geometry((n, h, w, c), c, o, (kh, kw), layer.stride, layer.padding, layer.dilation,
                                    layer.groups, 0)
        bias = None if layer._direct_bias is None else self.const(layer._direct_bias, T_F32)
        out = self.act(T_F32, (n, oh, ow, o) if len(dims) == 4 else (n, o))
        return self.emit(OP_FCONV, [x, self.const(layer._direct_weights, T_F32), bias], out,
                         _geometry_params(g) + [layer.groups])

    def pack(self, x, minus, ternary):
        dims = self.dims(x)
        mask = sum(1 << i for i, m in enumerate(minus) if m)
        out = self.act(T_BITS, dims[:-1] + (kernels.words_for(dims[-1]),))
        return self.emit(OP_PACK, [x], out, [mask, int(bool(ternary))])

    def bconv(self, x, layer, residual=None):
        """An ops.BConv2d on packed bits (N, H, W, words) or (N, words)."""
        dims = self.dims(x)
        n, h, w = (dims[0], dims[1], dims[2]) if len(dims) == 4 else (dims[0], 1, 1)
        g, (oh, ow) = layer._geometry((n, h, w, dims[-1]))
        t, oc = layer.transform, layer.out_channels
        out_dims = (n, oh, ow) if len(dims) == 4 else (n,)
        if len(dims) == 2 and (oh, ow) != (1, 1):
            raise Unsupported("a dense layer whose output is not 1x1")
        type_ = (T_I32, T_F32, T_BITS)[t.kind]
        out = self.act(type_, out_dims + ((kernels.words_for(oc),) if t.kind == 2 else (oc,)))
        acc = t.acc_clamp if t.acc_clamp is not None else (0, 0)
        ins = [x, self.const(layer.w, T_BITS),
               None if t.scale is None else self.const(t.scale, T_F32),
               None if t.bias is None else self.const(t.bias, T_F32),
               None if t.thresholds is None else self.const(t.thresholds, T_I32),
               None if t.flip is None else self.const(t.flip, T_U8), residual]
        params = [g["in_c"]] + _geometry_params(g) + [g["groups"], g["pad_value"], t.kind, _f64_bits(t.clamp[0]),
                                                     _f64_bits(t.clamp[1]), int(t.acc_clamp is not None), *acc]
        return self.emit(OP_BCONV, ins, out, params)

    def bmaxpool(self, x, channels, pool, or_words=None):
        dims = self.dims(x)
        kernel, strides, pads, dilations, fits = pool_geometry(dims, channels, pool)
        if not fits:
            raise Unsupported("a bit max-pool with an empty output")
        g, (oh, ow) = ops._geometry(dims, channels, channels, kernel, strides, pads, dilations, 1, 0)
        out = self.act(T_BITS, (dims[0], oh, ow, dims[3]))
        mask = None if or_words is None else self.const(or_words, T_BITS)
        return self.emit(OP_BMAXPOOL, [x, mask], out, [channels, kernel[0], kernel[1]] + _geometry_params(g))


def _geometry_params(g):
    return [g["stride_h"], g["stride_w"], g["dilation_h"], g["dilation_w"], g["pad_top"], g["pad_bottom"],
            g["pad_left"], g["pad_right"]]


# ---- ops ----------------------------------------------------------------------------------------

def _lower_xpack(lw, node):
    x = lw.float_in(node.inputs[0], node.name)
    dims = lw.dims(x)
    if len(dims) == 4 and not node.attrs.get("_nhwc"):
        x = lw.transpose(x, (0, 2, 3, 1))
    elif len(dims) not in (2, 4):
        raise Unsupported(f"{node.name}: binary activations of rank {len(dims)}")
    return Val(lw.pack(x, node.attrs["minus"], node.attrs["ternary"]), channels=lw.dims(x)[-1])


def _lower_xfloatconvpack(lw, node):
    a = node.attrs
    x = lw.float_in(node.inputs[0], node.name)
    if not a.get("_nhwc"):
        x = lw.transpose(x, (0, 2, 3, 1))
    conv = ShapedConv(np.ascontiguousarray(a["weights"].transpose(0, 2, 3, 1)), a["bias"], a["conv"])
    n, h, w, c = lw.dims(x)
    pads = conv_pads((n, c, h, w), conv.attrs, conv.kernel, conv.strides, conv.dilations)
    y = lw.fconv(x, conv.base.with_padding(pads), node.name)
    for n_ in a["chain"]:
        if n_.op == "BatchNormalization":
            y = _batchnorm(lw, y, [lw.graph.constants[i] for i in n_.inputs[1:5]], n_.attrs.get("epsilon", 1e-5), 3)
            continue
        args = [lw.graph.constants[i] if i else None for i in n_.inputs[1:]]
        if n_.op in ("Mul", "Add", "Sub", "Div") and args[0] is not None and np.size(args[0]) > 1:
            args[0] = np.asarray(args[0]).reshape(-1)
        y = _float_op(lw, n_, [Val(y)] + [Val(static=v) for v in args], None)
    pack = a["pack"]
    return Val(lw.pack(y, pack["minus"], pack["ternary"]), channels=lw.dims(y)[-1])


def _lower_xbconv(lw, node):
    a = node.attrs
    conv, cfg = a["conv"], a.get("packed")
    x, channels = lw.bits_in(node.inputs[0], node.name)
    n, h, w, _ = lw.dims(x)
    kernel = tuple(a["weight_shape"][2:])
    strides, dilations = tuple(conv.get("strides", [1, 1])), tuple(conv.get("dilations", [1, 1]))
    pads = conv_pads((n, channels, h, w), conv, kernel, strides, dilations)
    layer = ops.BConv2d(a["weight_bits"], channels, stride=strides, padding=pads, dilation=dilations,
                        groups=conv.get("group", 1), pad_value=a.get("pad_value", 0), **_out_kw(a, cfg))
    residual = None
    if a.get("residual"):
        residual = lw.float_in(node.inputs[1], node.name)
        if lw.dims(residual) != layer.output_shape((n, h, w, 0)):
            raise Unsupported(f"{node.name}: a shortcut that broadcasts")
    y = lw.bconv(x, layer, residual)
    out_c = a["weight_shape"][0]
    if cfg:
        if cfg["pool"]:
            y = lw.bmaxpool(y, out_c, cfg["pool"], _or_mask_words(cfg["pool"]["or_mask"]))
        return Val(y, channels=out_c)
    return Val(y if a.get("_nhwc") else lw.transpose(y, (0, 3, 1, 2)))


def _lower_xbdense(lw, node):
    a = node.attrs
    n_out, k = a["weight_shape"]
    cfg = a.get("packed")
    x, channels = lw.bits_in(node.inputs[0], node.name)
    dims = lw.dims(x)
    shape = lw.static(node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] else None
    if len(node.inputs) > 1 and node.inputs[1] and shape is None:
        raise Unsupported(f"{node.name}: a reshape target computed at run time")
    if shape is not None:
        d = [int(v) for v in shape]
        if not (len(d) == 2 and d[0] in (0, -1, dims[0]) and d[1] in (-1, k) and (d[0] != -1 or d[1] != -1)):
            raise Unsupported(f"{node.name}: a reshape that is not a flatten")
    out_kw = _out_kw(a, cfg)
    if len(dims) == 4:
        n, h, wd, _ = dims
        if channels * h * wd != k:
            raise Unsupported(f"{node.name}: flattened input does not match the weights")
        wf = kernels.unpack(a["weight_bits"], k, np.float32)
        w_ohwi = np.ascontiguousarray(wf.reshape(n_out, channels, h, wd).transpose(0, 2, 3, 1))
        layer = ops.BConv2d(kernels.pack(w_ohwi), channels, **out_kw)
        y = lw.bconv(x, layer)
        ydims = lw.dims(y)
        flat = lw.act(lw.tensors[y].type, (n, ydims[-1]))
        y = lw.emit(OP_COPY, [y], flat)
    else:
        if channels != k:
            raise Unsupported(f"{node.name}: packed rows of {channels} values, weights of {k}")
        y = lw.bconv(x, ops.BConv2d(a["weight_bits"].reshape(n_out, 1, 1, -1), k, **out_kw))
    return Val(y, channels=n_out) if cfg else Val(y)


def _lower_xbmaxpool(lw, node):
    x, channels = lw.bits_in(node.inputs[0], node.name)
    return Val(lw.bmaxpool(x, channels, node.attrs), channels=channels)


def _batchnorm(lw, x, params, epsilon, axis):
    scale, bias, mean, var = (np.asarray(p).astype(np.float32).reshape(-1) for p in params)
    denom = np.sqrt(var + np.float32(epsilon))  # what float_ops.batchnorm divides by, in float32
    out = lw.act(T_F32, lw.dims(x))
    return lw.emit(OP_BATCHNORM, [x, lw.const(mean, T_F32), lw.const(denom, T_F32), lw.const(scale, T_F32),
                                  lw.const(bias, T_F32)], out, [axis])


def _axes_range(axes, rank, what):
    axes = sorted({a + rank if a < 0 else a for a in axes})
    if not axes or axes != list(range(axes[0], axes[-1] + 1)) or axes[0] < 0 or axes[-1] >= rank:
        raise Unsupported(f"{what}: reduced axes {axes} are not one contiguous run")
    return axes[0], axes[-1] + 1


def _float_op(lw, node, vals, out_name):
    """A float op on Val operands (tensors or statics).  out_name: the graph value it produces (its traced
    shape), or None for ops that keep their input's shape."""
    op, attrs, what = node.op, node.attrs, f"{node.op} ({node.name})"

    def f(i):
        return lw.float_of(vals[i], f"{what}: operand {i}")

    def out_dims():
        return tuple(np.shape(lw.traced(out_name))) if out_name else lw.dims(f(0))

    x = vals[0]
    if op in BINARY and len(vals) == 2:
        if op == "PRelu":
            return lw.binary(op, f(0), lw.const(np.asarray(vals[1].static).astype(np.float32), T_F32)
                             if vals[1].tensor is None else f(1))
        return lw.binary(op, f(0), f(1))
    if op in UNARY:
        return lw.unary(UNARY[op], f(0))
    if op in ("Identity", "Dropout", "Reshape", "Flatten", "Squeeze", "Unsqueeze"):
        if x.tensor is None or x.channels is not None:
            raise Unsupported(f"{what}: not a float tensor")
        return lw.emit(OP_COPY, [x.tensor], lw.act(lw.tensors[x.tensor].type, out_dims()))
    if op == "Clip":
        lo = vals[1].static if len(vals) > 1 and vals[1] is not None else attrs.get("min")
        hi = vals[2].static if len(vals) > 2 and vals[2] is not None else attrs.get("max")
        if len(vals) > 1 and vals[1] is not None and vals[1].tensor is not None or \
                len(vals) > 2 and vals[2] is not None and vals[2].tensor is not None:
            raise Unsupported(f"{what}: bounds computed at run time")
        y = f(0)
        if lo is not None:
            y = lw.binary("Max", y, lw.const(np.asarray(lo, np.float32), T_F32))
        if hi is not None:
            y = lw.binary("Min", y, lw.const(np.asarray(hi, np.float32), T_F32))
        return y if (lo is not None or hi is not None) else lw.emit(OP_COPY, [y], lw.act(T_F32, lw.dims(y)))
    if op == "LeakyRelu":
        y = f(0)
        neg = lw.binary("Less", y, lw.const(np.zeros((), np.float32), T_F32))
        scaled = lw.binary("Mul", y, lw.const(np.asarray(attrs.get("alpha", 0.01), np.float32), T_F32))
        out = lw.act(T_F32, lw.dims(y))
        return lw.emit(OP_WHERE, [neg, scaled, y], out)
    if op == "Where":
        cond = vals[0]
        if cond.tensor is None:
            c = lw.const(np.asarray(cond.static).astype(np.uint8), T_U8)
        elif lw.tensors[cond.tensor].type == T_U8:
            c = cond.tensor
        else:
            raise Unsupported(f"{what}: the condition is not boolean")
        a, b = f(1), f(2)
        shape = np.broadcast_shapes(lw.dims(c), lw.dims(a), lw.dims(b)) or (1,)
        return lw.emit(OP_WHERE, [c, a, b], lw.act(T_F32, shape))
    if op == "BatchNormalization":
        if any(v.tensor is not None for v in vals[1:5]):
            raise Unsupported(f"{what}: statistics computed at run time")
        return _batchnorm(lw, f(0), [v.static for v in vals[1:5]], attrs.get("epsilon", 1e-5), 1)
    if op == "Softmax":
        y = f(0)
        rank = len(lw.dims(y))
        axis = attrs.get("axis", -1)
        axis = axis + rank if axis < 0 else axis
        end = rank if attrs.get("_opset", 13) < 13 else axis + 1
        return lw.emit(OP_SOFTMAX, [y], lw.act(T_F32, lw.dims(y)), [axis, end])
    if op in ("ReduceMean", "GlobalAveragePool"):
        y = f(0)
        rank = len(lw.dims(y))
        if op == "GlobalAveragePool":
            axes = (1, 2) if attrs.get("_nhwc") else tuple(range(2, rank))
        else:
            axes = vals[1].static if len(vals) > 1 and vals[1] is not None else attrs.get("axes")
            if len(vals) > 1 and vals[1] is not None and vals[1].tensor is not None:
                raise Unsupported(f"{what}: axes computed at run time")
            if axes is None or len(axes) == 0:
                if attrs.get("noop_with_empty_axes", 0) and axes is not None:
                    return lw.emit(OP_COPY, [y], lw.act(T_F32, lw.dims(y)))
                axes = range(rank)
        begin, end = _axes_range([int(v) for v in axes], rank, what)
        return lw.emit(OP_MEAN, [y], lw.act(T_F32, out_dims()), [begin, end])
    if op in ("MaxPool", "AveragePool"):
        y = f(0)
        if not attrs.get("_nhwc") or attrs.get("ceil_mode", 0) or len(lw.dims(y)) != 4:
            raise Unsupported(f"{what}: only NHWC pools without ceil_mode")
        kernel, strides, dilations = _spatial(attrs)
        dims = lw.dims(y)
        pads = conv_pads((dims[0], dims[3], dims[1], dims[2]), attrs, kernel, strides, dilations)
        kind = "max" if op == "MaxPool" else ("avg_include_pad" if attrs.get("count_include_pad", 0) else "avg")
        g, (oh, ow) = ops._geometry(dims, dims[3], dims[3], kernel, strides, pads, dilations, 1, 0)
        out = lw.act(T_F32, (dims[0], oh, ow, dims[3]))
        return lw.emit(OP_POOL, [y], out, [POOL_KINDS[kind], kernel[0], kernel[1]] + _geometry_params(g))
    if op == "Transpose":
        y = x.tensor
        if y is None or x.channels is not None:
            raise Unsupported(f"{what}: not a tensor")
        perm = attrs.get("perm") or list(range(len(lw.dims(y))))[::-1]
        return lw.transpose(y, [int(p) for p in perm])
    if op == "Concat":
        parts = [v for v in vals if v is not None]
        ts = []
        for v in parts:
            if v.tensor is None:
                arr = np.asarray(v.static)
                ts.append(lw.const(arr, T_F32 if arr.dtype == np.float32 else T_U8))
            elif v.channels is not None:
                raise Unsupported(f"{what}: packed operands")
            else:
                ts.append(v.tensor)
        types = {lw.tensors[t].type for t in ts}
        dims = out_dims()
        if len(types) != 1:
            raise Unsupported(f"{what}: operands of different types")
        axis = attrs["axis"] + len(dims) if attrs["axis"] < 0 else attrs["axis"]
        return lw.emit(OP_CONCAT, ts, lw.act(types.pop(), dims), [axis])
    if op in ("Quant", "IntQuant"):
        if any(v.tensor is not None for v in vals[1:4]):
            raise Unsupported(f"{what}: quantizer parameters computed at run time")
        from .float_ops import _int_range
        bits = float(np.asarray(vals[3].static).reshape(-1)[0])
        if bits < 2 or bits != int(bits):
            raise Unsupported(f"{what}: bit width {bits}")
        mode = (attrs.get("rounding_mode", "ROUND") or "ROUND").upper()
        if mode not in ROUNDING:
            raise Unsupported(f"{what}: rounding mode {mode}")
        lo, hi = _int_range(attrs.get("signed", 1), attrs.get("narrow", 0), int(bits))
        scale, zeropt = f(1), f(2)
        y = lw.binary("Add", lw.binary("Div", f(0), scale), zeropt)
        y = lw.binary("Min", lw.binary("Max", y, lw.const(np.asarray(lo, np.float32), T_F32)),
                      lw.const(np.asarray(hi, np.float32), T_F32))
        y = lw.unary(ROUNDING[mode], y)
        return lw.binary("Mul", lw.binary("Sub", y, zeropt), scale)
    raise Unsupported(f"{what}: the C runtime has no {op}")


def _lower_conv(lw, node):
    attrs = node.attrs
    w = lw.static(node.inputs[1])
    b = lw.static(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
    if w is None or (len(node.inputs) > 2 and node.inputs[2] and b is None):
        raise Unsupported(f"Conv ({node.name}): weights computed at run time")
    x = lw.float_in(node.inputs[0], node.name)
    nhwc = attrs.get("_nhwc")
    if len(lw.dims(x)) != 4:
        raise Unsupported(f"Conv ({node.name}): not 2-D")
    if not nhwc:
        x = lw.transpose(x, (0, 2, 3, 1))
        w = np.ascontiguousarray(np.asarray(w).transpose(0, 2, 3, 1))
    conv = ShapedConv(np.asarray(w), b, attrs)
    n, h, wd, c = lw.dims(x)
    pads = conv_pads((n, c, h, wd), attrs, conv.kernel, conv.strides, conv.dilations)
    y = lw.fconv(x, conv.base.with_padding(pads), node.name)
    return y if nhwc else lw.transpose(y, (0, 3, 1, 2))


def _lower_gemm(lw, node):
    from .float_ops import prepare_gemm, prepare_matmul
    consts = {n: lw.static(n) for n in node.inputs[1:] if n and lw.static(n) is not None}
    run = (prepare_gemm if node.op == "Gemm" else prepare_matmul)(node, consts, None)
    if run is None or run.layer is None:
        raise Unsupported(f"Gemm ({node.name}): not x @ constant B (+ per-column C) with alpha = beta = 1")
    x = lw.float_in(node.inputs[0], node.name)
    if len(lw.dims(x)) != 2 or run.layer._conv is None:
        raise Unsupported(f"Gemm ({node.name}): not a float32 (N, K) input")
    return lw.fconv(x, run.layer._conv, node.name)


_X_OPS = {"XPack": _lower_xpack, "XFloatConvPack": _lower_xfloatconvpack, "XBConv": _lower_xbconv,
          "XBDense": _lower_xbdense, "XBMaxPool": _lower_xbmaxpool}
_STATIC_OPS = {"Shape", "XShape", "Size"}  # outputs known from shapes alone


def lower(graph, env, input_shapes):
    """The Program for `graph` run on inputs of `input_shapes` ({name: shape}); env holds every value of
    one Python run on such inputs (plan.run_steps)."""
    lw = Lowerer(graph, env)
    for name, value in graph.constants.items():
        lw.vals[name] = Val(static=value)
    inputs = []
    for v in graph.inputs:
        if np.dtype(v.dtype) != np.float32:
            raise Unsupported(f"input {v.name!r} is {np.dtype(v.dtype)}, not float32")
        t = lw.act(T_F32, input_shapes[v.name] or (1,), v.name)
        lw.vals[v.name] = Val(t)
        inputs.append(t)
    for node in graph.nodes:
        present = [i for i in node.inputs if i]
        if node.op in _STATIC_OPS or (present and all(lw.static(i) is not None for i in present)) or \
                (not present and node.op not in _X_OPS):
            for o in node.outputs:
                if o:
                    lw.vals[o] = Val(static=np.asarray(env[o]) if not isinstance(env[o], Packed) else None)
            if any(o and lw.vals[o].static is None for o in node.outputs):
                raise Unsupported(f"{node.op} ({node.name}): a constant packed value")
            continue
        if node.op in _X_OPS:
            val = _X_OPS[node.op](lw, node)
        elif node.op == "Conv":
            val = Val(_lower_conv(lw, node))
        elif node.op in ("Gemm", "MatMul"):
            val = Val(_lower_gemm(lw, node))
        else:
            if len([o for o in node.outputs if o]) != 1:
                raise Unsupported(f"{node.op} ({node.name}): more than one output")
            vals = [lw.vals.get(i) if i else None for i in node.inputs]
            if any(i and v is None for i, v in zip(node.inputs, vals)):
                raise Unsupported(f"{node.op} ({node.name}): an input the runtime does not have")
            val = Val(_float_op(lw, node, vals, node.outputs[0]))
        if val.tensor is not None and val.channels is None:
            traced = env[node.outputs[0]]
            if isinstance(traced, Packed) or tuple(np.shape(traced)) != lw.dims(val.tensor) and \
                    not (np.shape(traced) == () and lw.dims(val.tensor) == (1,)):
                raise Unsupported(f"{node.op} ({node.name}): the runtime's shape {lw.dims(val.tensor)} is not "
                                  f"the traced {np.shape(traced)}")
        lw.vals[node.outputs[0]] = val
    outputs, dtypes = [], []
    for v in graph.outputs:
        val = lw.vals.get(v.name)
        if val is None or val.channels is not None:
            raise Unsupported(f"output {v.name!r} is not a float or boolean tensor")
        if val.tensor is None:
            arr = np.asarray(val.static)
            if arr.dtype not in (np.float32, np.bool_):
                raise Unsupported(f"output {v.name!r} is a constant of dtype {arr.dtype}")
            c = lw.const(arr, T_F32 if arr.dtype == np.float32 else T_U8)
            val = Val(lw.emit(OP_COPY, [c], lw.act(lw.tensors[c].type, arr.shape or (1,))))
        t = val.tensor
        if t in inputs or t in outputs:  # an output the program must still write: a copy
            t = lw.emit(OP_COPY, [t], lw.act(lw.tensors[t].type, lw.dims(t)))
        lw.tensors[t].name = v.name
        outputs.append(t)
        traced = np.asarray(env[v.name])
        dtypes.append((np.dtype(np.bool_) if lw.tensors[t].type == T_U8 else np.dtype(np.float32), traced.shape))
    if not lw.steps:
        raise Unsupported("the graph has no steps")
    return Program(lw.tensors, lw.steps, inputs, outputs, dtypes)
