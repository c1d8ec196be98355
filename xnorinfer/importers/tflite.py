"""TFLite flatbuffers (read with the `tflite` schema package; Larq Compute Engine's custom-op options
with flatbuffers.flexbuffers) -> the same IR the ONNX importer produces, so every pass applies.

Layout: TFLite is NHWC; the IR's 4-D tensors are NCHW as in ONNX.  A 4-D graph input is fed NHWC and
transposed once; 4-D outputs are transposed back; per-channel constants, axes and pads are mapped.
LCE ops become ordinary IR:
  LceQuantize(x)        -> Where(x >= 0, +1, -1)          (bit 1 = -1; 0 -> +1)
  LceDequantize(s)      -> s                               (the IR keeps signs as +-1 floats)
  LceBconv2d            -> [Pad(+1)] Conv(+-1 weights) -> [clamp] -> * multiplier + bias  (float output)
                           or -> sign by the op's thresholds (bit-packed output)
  LceBMaxPool2d(s)      -> MaxPool(s)
"""
import numpy as np

from ..errors import ModelError
from ..ir import Graph, Node, ValueInfo

_NP = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 6: np.bool_, 7: np.int16,
       9: np.int8, 10: np.float64}
_NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1, -1: 1, -2: 3, -3: 2, -4: 0}


def is_tflite(source):
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source[4:8]) == b"TFL3"
    try:
        with open(source, "rb") as f:
            return f.read(8)[4:8] == b"TFL3"
    except OSError:
        return False


class _Builder:
    def __init__(self, model, buf):
        import tflite
        self.tfl, self.model, self.buf = tflite, model, buf
        self.g = model.Subgraphs(0)
        self.nodes, self.constants, self.count = [], {}, 0
        self.names = {}
        self.rank = {}

    # ---- tensors ----
    def tensor(self, i):
        t = self.g.Tensors(i)
        shape = [int(d) for d in (t.ShapeSignatureAsNumpy() if t.ShapeSignatureLength() else t.ShapeAsNumpy())] \
            if t.ShapeLength() else []
        if t.Type() not in _NP and t.Type() != 2:
            raise ModelError(f"tensor {t.Name().decode(errors='replace')!r}: element type {t.Type()} is not supported")
        return t, shape

    def data(self, i):
        """The constant behind tensor i, or None."""
        t, shape = self.tensor(i)
        b = self.model.Buffers(t.Buffer())
        if b is None or b.DataLength() == 0:
            return None
        dtype = np.dtype(_NP.get(t.Type(), np.int32))
        raw = b.DataAsNumpy()
        count = int(np.prod(t.ShapeAsNumpy(), dtype=np.int64)) if t.ShapeLength() else 1
        if count < 0 or count * dtype.itemsize != raw.size:
            raise ModelError(f"tensor {t.Name().decode(errors='replace')!r}: {raw.size} bytes for shape "
                             f"{list(t.ShapeAsNumpy())} of {dtype}")
        return np.frombuffer(raw.tobytes(), dtype).reshape([int(d) for d in t.ShapeAsNumpy()])

    def value(self, i):
        """IR name of tensor i (constants: in IR layout)."""
        if i in self.names:
            return self.names[i]
        t, shape = self.tensor(i)
        name = f"t{i}:{t.Name().decode(errors='replace')}"
        arr = self.data(i)
        if arr is not None:
            self.constants[name] = arr
        self.names[i] = name
        self.rank[name] = len(shape)
        return name

    def fresh(self, base):
        self.count += 1
        return f"{base}#{self.count}"

    def const(self, arr, base="c"):
        name = self.fresh(base)
        self.constants[name] = np.asarray(arr)
        return name

    def emit(self, op, inputs, outputs, name, **attrs):
        self.nodes.append(Node(op, list(inputs), list(outputs), dict(attrs, _opset=13), name))

    def channel_const(self, arr, rank):
        """A constant broadcast along NHWC's last axis, as the IR's NCHW needs it."""
        arr = np.asarray(arr)
        if rank == 4 and arr.ndim >= 1 and arr.size > 1:
            return arr.reshape(-1)[:, None, None] if arr.ndim <= 4 else arr
        return arr

    def activation(self, x, code, name):
        if code == 0:
            return x
        out = self.fresh(name + "_act")
        if code == 1:
            self.emit("Relu", [x], [out], name + "_relu")
        elif code == 3:
            self.emit("Clip", [x, self.const(np.float32(0)), self.const(np.float32(6))], [out], name + "_relu6")
        elif code == 2:
            self.emit("Clip", [x, self.const(np.float32(-1)), self.const(np.float32(1))], [out], name + "_relu1")
        else:
            raise ModelError(f"{name}: fused activation {code} is not supported")
        return out


def _padding_pads(in_hw, kernel, strides, dilations, padding):
    """Explicit (top, left, bottom, right) of TF SAME / VALID for a static input size."""
    if padding == 1:  # VALID
        return [0, 0, 0, 0]
    pads = []
    for size, k, s, d in zip(in_hw, kernel, strides, dilations):
        out = -(-size // s)
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
        pads.append((total // 2, total - total // 2))
    return [pads[0][0], pads[1][0], pads[0][1], pads[1][1]]


def _flex(op):
    from flatbuffers import flexbuffers
    if op.CustomOptionsLength() == 0:
        return {}
    try:
        value = flexbuffers.Loads(op.CustomOptionsAsNumpy().tobytes())
    except Exception as exc:
        raise ModelError(f"custom options are not readable FlexBuffers: {exc}") from None
    if not isinstance(value, dict):
        raise ModelError("custom options are not a map")
    return value


def _unpack_lce_filter(words, channels_in):
    """LCE's bit-packed filter: int32 words of 32 channels along the last axis (OHWI), bit 1 = -1
    -> +-1 float32 OIHW."""
    w = np.ascontiguousarray(words.astype(np.int32)).view(np.uint32)
    bits = ((w[..., None] >> np.arange(32, dtype=np.uint32)) & 1).reshape(w.shape[:-1] + (-1,))[..., :channels_in]
    return np.ascontiguousarray((1.0 - 2.0 * bits).astype(np.float32).transpose(0, 3, 1, 2))


def import_tflite(source, supported_ops):
    import tflite
    buf = bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else open(source, "rb").read()
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise ModelError("not a TFLite model (no TFL3 identifier)")
    try:
        model = tflite.Model.GetRootAs(buf, 0)
        if model.SubgraphsLength() != 1:
            raise ModelError(f"{model.SubgraphsLength()} subgraphs: only single-subgraph models are supported")
        return _convert(_Builder(model, buf))
    except ModelError:
        raise
    except Exception as exc:  # flatbuffers raises assorted errors on a malformed buffer
        raise ModelError(f"not a readable TFLite model: {type(exc).__name__}: {exc}") from None


def _convert(b):
    tfl, g = b.tfl, b.g
    B = tfl.BuiltinOperator
    codes = []
    for i in range(b.model.OperatorCodesLength()):
        oc = b.model.OperatorCodes(i)
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        codes.append(oc.CustomCode().decode() if code == B.CUSTOM else code)
    names = {v: k for k, v in vars(B).items() if k.isupper()}
    inputs, outputs = [], []
    for i in g.InputsAsNumpy():
        t, shape = b.tensor(int(i))
        name = t.Name().decode(errors="replace")
        dims = tuple(None if d < 0 else d for d in shape)
        inputs.append(ValueInfo(name, dims, np.dtype(_NP[t.Type()])))
        if len(shape) == 4:
            b.emit("Transpose", [name], [b.value(int(i))], f"{name}_to_nchw", perm=[0, 3, 1, 2])
        else:
            b.emit("Identity", [name], [b.value(int(i))], f"{name}_in")
    unsupported = []
    for k in range(g.OperatorsLength()):
        op = g.Operators(k)
        code = codes[op.OpcodeIndex()]
        ins = [int(v) for v in op.InputsAsNumpy()] if op.InputsLength() else []
        outs = [int(v) for v in op.OutputsAsNumpy()]
        label = code if isinstance(code, str) else names.get(code, str(code))
        name = f"{label}_{k}"
        try:
            handled = _op(b, code, op, ins, outs, name)
        except (ValueError, IndexError, KeyError, TypeError) as exc:
            raise ModelError(f"operator {name}: {exc}") from None
        if not handled:
            unsupported.append(f"{label} ({name})")
    if unsupported:
        raise ModelError(f"unsupported operators: {', '.join(unsupported)}")
    for i in g.OutputsAsNumpy():
        t, shape = b.tensor(int(i))
        name = t.Name().decode(errors="replace")
        if len(shape) == 4:
            b.emit("Transpose", [b.value(int(i))], [name], f"{name}_to_nhwc", perm=[0, 2, 3, 1])
        else:
            b.emit("Identity", [b.value(int(i))], [name], f"{name}_out")
        outputs.append(ValueInfo(name, tuple(None if d < 0 else d for d in shape), np.dtype(_NP.get(t.Type(), np.float32))))
    graph = Graph(b.nodes, inputs, outputs, b.constants, "tflite")
    from .onnx import _check_references
    _check_references(graph)
    return graph


def _options(op, cls):
    table = op.BuiltinOptions()
    if table is None:
        raise ValueError("missing builtin options")
    opts = cls()
    opts.Init(table.Bytes, table.Pos)
    return opts


def _op(b, code, op, ins, outs, name):  # noqa: C901 - one branch per operator, as the schema lists them
    tfl = b.tfl
    B = tfl.BuiltinOperator
    x = b.value(ins[0]) if ins else None
    out = b.value(outs[0])
    rank = b.rank.get(x, 0)
    if code in (B.CONV_2D, B.DEPTHWISE_CONV_2D):
        depthwise = code == B.DEPTHWISE_CONV_2D
        o = _options(op, tfl.DepthwiseConv2DOptions if depthwise else tfl.Conv2DOptions)
        w = b.data(ins[1])
        bias = b.data(ins[2]) if len(ins) > 2 and ins[2] >= 0 else None
        _, xshape = b.tensor(ins[0])
        if w is None:
            raise ValueError("weights must be constant")
        if depthwise:  # (1, KH, KW, C*M) -> (C*M, 1, KH, KW), one group per input channel
            groups = xshape[3]
            w = np.ascontiguousarray(w.reshape(w.shape[1], w.shape[2], -1).transpose(2, 0, 1)[:, None])
        else:
            groups = 1
            w = np.ascontiguousarray(w.transpose(0, 3, 1, 2))
        strides, dil = [o.StrideH(), o.StrideW()], [o.DilationHFactor(), o.DilationWFactor()]
        pads = _padding_pads(xshape[1:3], w.shape[2:], strides, dil, o.Padding())
        args = [x, b.const(w.astype(np.float32), "w")] + ([b.const(bias.astype(np.float32), "b")] if bias is not None else [])
        y = b.fresh(name)
        b.emit("Conv", args, [y], name, strides=strides, dilations=dil, pads=pads, group=groups,
               kernel_shape=list(w.shape[2:]))
        b.emit("Identity", [b.activation(y, o.FusedActivationFunction(), name)], [out], name + "_out")
    elif code in (B.MAX_POOL_2D, B.AVERAGE_POOL_2D):
        o = _options(op, tfl.Pool2DOptions)
        _, xshape = b.tensor(ins[0])
        kernel, strides = [o.FilterHeight(), o.FilterWidth()], [o.StrideH(), o.StrideW()]
        pads = _padding_pads(xshape[1:3], kernel, strides, [1, 1], o.Padding())
        y = b.fresh(name)
        b.emit("MaxPool" if code == B.MAX_POOL_2D else "AveragePool", [x], [y], name, kernel_shape=kernel,
               strides=strides, pads=pads, count_include_pad=0)
        b.emit("Identity", [b.activation(y, o.FusedActivationFunction(), name)], [out], name + "_out")
    elif code in (B.ADD, B.MUL, B.SUB):
        cls = {B.ADD: tfl.AddOptions, B.MUL: tfl.MulOptions, B.SUB: tfl.SubOptions}[code]
        o = _options(op, cls) if op.BuiltinOptions() is not None else None
        other = b.value(ins[1])
        r = max(rank, b.rank.get(other, 0))
        args = []
        for v in (x, other):
            if v in b.constants:
                v = b.const(b.channel_const(b.constants[v], r).astype(np.float32), "k")
            args.append(v)
        y = b.fresh(name)
        b.emit({B.ADD: "Add", B.MUL: "Mul", B.SUB: "Sub"}[code], args, [y], name)
        act = o.FusedActivationFunction() if o is not None else 0
        b.emit("Identity", [b.activation(y, act, name)], [out], name + "_out")
    elif code == B.MEAN:
        axes = [int(a) for a in b.data(ins[1]).reshape(-1)]
        keep = _options(op, tfl.ReducerOptions).KeepDims()
        if rank == 4:
            axes = [_NHWC_TO_NCHW_AXIS[a] for a in axes]
        b.emit("ReduceMean", [x], [out], name, axes=axes, keepdims=int(keep))
    elif code == B.PAD or code == B.PADV2:
        pads = b.data(ins[1]).astype(np.int64).reshape(-1, 2)
        if rank == 4:
            pads = pads[[0, 3, 1, 2]]
        value = b.data(ins[2]).reshape(-1)[0] if len(ins) > 2 else 0.0
        b.emit("Pad", [x, b.const(np.concatenate([pads[:, 0], pads[:, 1]]), "pads"), b.const(np.float32(value), "v")],
               [out], name, mode="constant")
    elif code == B.RESHAPE:
        _, oshape = b.tensor(outs[0])
        src = x
        if rank == 4:  # TFLite flattens NHWC
            src = b.fresh(name + "_nhwc")
            b.emit("Transpose", [x], [src], name + "_to_nhwc", perm=[0, 2, 3, 1])
        target = [0 if i == 0 else d for i, d in enumerate(oshape)]
        if len(oshape) == 4:
            y = b.fresh(name)
            b.emit("Reshape", [src, b.const(np.array(target, np.int64), "shape")], [y], name)
            b.emit("Transpose", [y], [out], name + "_to_nchw", perm=[0, 3, 1, 2])
        else:
            b.emit("Reshape", [src, b.const(np.array(target, np.int64), "shape")], [out], name)
    elif code == B.CONCATENATION:
        o = _options(op, tfl.ConcatenationOptions)
        axis = _NHWC_TO_NCHW_AXIS[o.Axis()] if rank == 4 else o.Axis()
        y = b.fresh(name)
        b.emit("Concat", [b.value(i) for i in ins], [y], name, axis=axis)
        b.emit("Identity", [b.activation(y, o.FusedActivationFunction(), name)], [out], name + "_out")
    elif code == B.FULLY_CONNECTED:
        o = _options(op, tfl.FullyConnectedOptions)
        w = b.data(ins[1])
        if w is None:
            raise ValueError("weights must be constant")
        src = x
        if rank != 2:
            src = b.fresh(name + "_flat")
            if rank == 4:
                nhwc = b.fresh(name + "_nhwc")
                b.emit("Transpose", [x], [nhwc], name + "_to_nhwc", perm=[0, 2, 3, 1])
                x = nhwc
            b.emit("Reshape", [x, b.const(np.array([-1, w.shape[1]], np.int64), "shape")], [src], name + "_flatten")
        args = [src, b.const(w.astype(np.float32), "w")]
        if len(ins) > 2 and ins[2] >= 0 and b.data(ins[2]) is not None:
            args.append(b.const(b.data(ins[2]).astype(np.float32), "b"))
        y = b.fresh(name)
        b.emit("Gemm", args, [y], name, transB=1)
        b.emit("Identity", [b.activation(y, o.FusedActivationFunction(), name)], [out], name + "_out")
    elif code == B.SOFTMAX:
        beta = _options(op, tfl.SoftmaxOptions).Beta()
        src = x
        if beta != 1.0:
            src = b.fresh(name + "_scaled")
            b.emit("Mul", [x, b.const(np.float32(beta), "beta")], [src], name + "_beta")
        b.emit("Softmax", [src], [out], name, axis=-1)
    elif code in (B.RELU, B.RELU6, B.LOGISTIC, B.TANH):
        if code == B.RELU6:
            b.emit("Clip", [x, b.const(np.float32(0)), b.const(np.float32(6))], [out], name)
        else:
            b.emit({B.RELU: "Relu", B.LOGISTIC: "Sigmoid", B.TANH: "Tanh"}[code], [x], [out], name)
    elif code == "LceQuantize":
        ge = b.fresh(name + "_ge")
        b.emit("GreaterOrEqual", [x, b.const(np.float32(0), "zero")], [ge], name + "_ge")
        b.emit("Where", [ge, b.const(np.float32(1), "one"), b.const(np.float32(-1), "mone")], [out], name)
        b.rank[out] = rank
    elif code == "LceDequantize":
        b.emit("Identity", [x], [out], name)
    elif code == "LceBMaxPool2d":
        o = _flex(op)
        _, xshape = b.tensor(ins[0])
        kernel = [int(o["filter_height"]), int(o["filter_width"])]
        strides = [int(o["stride_height"]), int(o["stride_width"])]
        pads = _padding_pads(xshape[1:3], kernel, strides, [1, 1], int(o.get("padding", 1)) if not isinstance(o.get("padding"), str) else (0 if o["padding"] == "SAME" else 1))
        b.emit("MaxPool", [x], [out], name, kernel_shape=kernel, strides=strides, pads=pads)
    elif code == "LceBconv2d":
        _lce_bconv(b, op, ins, outs, name, x, out)
    else:
        return False
    return True


def _lce_bconv(b, op, ins, outs, name, x, out):
    o = _flex(op)
    channels_in = int(o["channels_in"])
    words = b.data(ins[1])
    if words is None:
        raise ValueError("the filter must be constant")
    w = _unpack_lce_filter(words, channels_in)  # (O, C, KH, KW), +-1
    groups = int(o.get("groups", 1) or 1)
    if groups != 1:
        raise ValueError("grouped LceBconv2d is not supported yet")
    _, xshape = b.tensor(ins[0])
    strides = [int(o.get("stride_height", 1)), int(o.get("stride_width", 1))]
    dil = [int(o.get("dilation_height_factor", 1)), int(o.get("dilation_width_factor", 1))]
    padding = o.get("padding", 1)
    padding = (0 if padding == "SAME" else 1) if isinstance(padding, str) else int(padding)
    pads = _padding_pads(xshape[1:3], w.shape[2:], strides, dil, padding)
    src = x
    conv_pads = pads
    if any(pads) and int(o.get("pad_values", 0)) == 1:  # Larq's pad_values=1: the padded input is +1
        src = b.fresh(name + "_padded")
        onnx_pads = [0, 0, pads[0], pads[1], 0, 0, pads[2], pads[3]]
        b.emit("Pad", [x, b.const(np.array(onnx_pads, np.int64), "pads"), b.const(np.float32(1), "one")], [src],
               name + "_pad", mode="constant")
        conv_pads = [0, 0, 0, 0]
    acc = b.fresh(name + "_acc")
    b.emit("Conv", [src, b.const(w, "w")], [acc], name, strides=strides, dilations=dil, pads=conv_pads,
           group=1, kernel_shape=list(w.shape[2:]))
    k = channels_in * w.shape[2] * w.shape[3]
    out_tensor, _ = b.tensor(outs[0])
    act = int(o.get("fused_activation_function", 0))
    if out_tensor.Type() == 0:  # float output: clamp(acc) * multiplier + bias
        y = b.activation(acc, act, name)
        mult, bias = b.data(ins[2]), b.data(ins[3])
        scaled = b.fresh(name + "_mul")
        b.emit("Mul", [y, b.const(mult.astype(np.float32).reshape(-1, 1, 1), "mult")], [scaled], name + "_mul")
        b.emit("Add", [scaled, b.const(bias.astype(np.float32).reshape(-1, 1, 1), "bias")], [out], name + "_bias")
    else:  # bit-packed output: -1 where the XOR-popcount count exceeds the threshold
        thresholds = b.data(ins[4]).astype(np.int64).reshape(-1)
        # popcount > t  <=>  acc = k - 2 popcount < k - 2 t
        z = b.fresh(name + "_z")
        b.emit("Sub", [acc, b.const((k - 2 * thresholds).astype(np.float32).reshape(-1, 1, 1), "thr")], [z], name + "_thr")
        lt = b.fresh(name + "_lt")
        b.emit("Less", [z, b.const(np.float32(0), "zero")], [lt], name + "_lt")
        b.emit("Where", [lt, b.const(np.float32(-1), "mone"), b.const(np.float32(1), "one")], [out], name + "_sign")
    b.rank[out] = 4
