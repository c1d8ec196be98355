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

from ..conv_geometry import same_pads, to_onnx_pads
from ..errors import MissingDependency, ModelError, import_optional
from ..ir import Graph, ModelMeta, Node, ValueInfo
from ..operators import parse_attrs

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
        self.nodes.append(Node(op, list(inputs), list(outputs), parse_attrs(op, attrs, f"operator {name}"), name))

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
    """ONNX `pads` of TFLite's Padding (0 SAME, 1 VALID) for a static input size."""
    if padding == 1:  # VALID
        return [0, 0, 0, 0]
    return list(to_onnx_pads(same_pads(in_hw, kernel, strides, dilations)))


def _flex(op):
    flexbuffers = _require("flatbuffers.flexbuffers")
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


def _require(module):
    return import_optional(module, "reading .tflite files", "tflite", also=("tflite", "flatbuffers"))


def import_tflite(source):
    tflite = _require("tflite")
    _require("flatbuffers.flexbuffers")  # LCE's op options; missing, it would surface as a ModelError below
    buf = bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else open(source, "rb").read()
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise ModelError("not a TFLite model (no TFL3 identifier)")
    try:
        model = tflite.Model.GetRootAs(buf, 0)
        if model.SubgraphsLength() != 1:
            raise ModelError(f"{model.SubgraphsLength()} subgraphs: only single-subgraph models are supported")
        return _convert(_Builder(model, buf))
    except (ModelError, MissingDependency):
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
    handlers = _handlers(B)
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
        handler = handlers.get(code)
        if handler is None:
            unsupported.append(f"{label} ({name})")
            continue
        try:
            handler(_Op(b, code, op, ins, outs, name))
        except (ValueError, IndexError, KeyError, TypeError) as exc:
            raise ModelError(f"operator {name}: {exc}") from None
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
    graph = Graph(b.nodes, inputs, outputs, b.constants, "tflite", _meta(b))
    graph.check_references()
    return graph


def _meta(b):
    """onnxruntime's ModelMetadata fields from the flatbuffer: its description, schema version and
    subgraph name; its metadata buffers (min_runtime_version, ...) as text where they are text."""
    model = b.model
    custom = {}
    for i in range(min(model.MetadataLength(), 4096)):
        entry = model.Metadata(i)
        name = (entry.Name() or b"").decode(errors="replace")
        buf = model.Buffers(entry.Buffer()) if 0 <= entry.Buffer() < model.BuffersLength() else None
        raw = bytes(buf.DataAsNumpy()) if buf is not None and 0 < buf.DataLength() <= ModelMeta.MAX_TEXT else b""
        text = raw.rstrip(b"\0")
        if name and text and all(32 <= c < 127 for c in text):
            custom[name] = text.decode()
        elif name:
            custom[name] = f"<{buf.DataLength() if buf is not None else 0} bytes>"
    graph_name = (b.g.Name() or b"").decode(errors="replace")
    return ModelMeta(producer_name="TensorFlow Lite", graph_name=graph_name,
                     description=(model.Description() or b"").decode(errors="replace"),
                     version=int(model.Version()), custom_metadata_map=custom)


def _options(op, cls):
    table = op.BuiltinOptions()
    if table is None:
        raise ValueError("missing builtin options")
    opts = cls()
    opts.Init(table.Bytes, table.Pos)
    return opts


class _Op:
    """One operator being converted: its builder, code, options and tensors."""

    def __init__(self, b, code, op, ins, outs, name):
        self.b, self.code, self.op, self.ins, self.outs, self.name = b, code, op, ins, outs, name
        self.x = b.value(ins[0]) if ins else None
        self.out = b.value(outs[0])
        self.rank = b.rank.get(self.x, 0)

    def options(self, cls):
        return _options(self.op, getattr(self.b.tfl, cls))

    def input_hw(self):
        return self.b.tensor(self.ins[0])[1][1:3]

    def finish(self, y, activation):
        """out = the fused activation of y."""
        self.b.emit("Identity", [self.b.activation(y, activation, self.name)], [self.out], self.name + "_out")


def _conv(o):
    b, B = o.b, o.b.tfl.BuiltinOperator
    depthwise = o.code == B.DEPTHWISE_CONV_2D
    opts = o.options("DepthwiseConv2DOptions" if depthwise else "Conv2DOptions")
    w = b.data(o.ins[1])
    bias = b.data(o.ins[2]) if len(o.ins) > 2 and o.ins[2] >= 0 else None
    if w is None:
        raise ValueError("weights must be constant")
    if depthwise:  # (1, KH, KW, C*M) -> (C*M, 1, KH, KW), one group per input channel
        groups = b.tensor(o.ins[0])[1][3]
        w = np.ascontiguousarray(w.reshape(w.shape[1], w.shape[2], -1).transpose(2, 0, 1)[:, None])
    else:
        groups = 1
        w = np.ascontiguousarray(w.transpose(0, 3, 1, 2))
    strides, dil = [opts.StrideH(), opts.StrideW()], [opts.DilationHFactor(), opts.DilationWFactor()]
    pads = _padding_pads(o.input_hw(), w.shape[2:], strides, dil, opts.Padding())
    args = [o.x, b.const(w.astype(np.float32), "w")] + ([b.const(bias.astype(np.float32), "b")] if bias is not None else [])
    y = b.fresh(o.name)
    b.emit("Conv", args, [y], o.name, strides=strides, dilations=dil, pads=pads, group=groups,
           kernel_shape=list(w.shape[2:]))
    o.finish(y, opts.FusedActivationFunction())


def _pool(o):
    opts = o.options("Pool2DOptions")
    kernel, strides = [opts.FilterHeight(), opts.FilterWidth()], [opts.StrideH(), opts.StrideW()]
    pads = _padding_pads(o.input_hw(), kernel, strides, [1, 1], opts.Padding())
    y = o.b.fresh(o.name)
    op = "MaxPool" if o.code == o.b.tfl.BuiltinOperator.MAX_POOL_2D else "AveragePool"
    o.b.emit(op, [o.x], [y], o.name, kernel_shape=kernel, strides=strides, pads=pads, count_include_pad=0)
    o.finish(y, opts.FusedActivationFunction())


def _arith(o):
    b, B = o.b, o.b.tfl.BuiltinOperator
    kind = {B.ADD: ("Add", "AddOptions"), B.MUL: ("Mul", "MulOptions"), B.SUB: ("Sub", "SubOptions")}[o.code]
    opts = o.options(kind[1]) if o.op.BuiltinOptions() is not None else None
    other = b.value(o.ins[1])
    r = max(o.rank, b.rank.get(other, 0))
    args = [b.const(b.channel_const(b.constants[v], r).astype(np.float32), "k") if v in b.constants else v
            for v in (o.x, other)]
    y = b.fresh(o.name)
    b.emit(kind[0], args, [y], o.name)
    o.finish(y, opts.FusedActivationFunction() if opts is not None else 0)


def _mean(o):
    axes = [int(a) for a in o.b.data(o.ins[1]).reshape(-1)]
    keep = o.options("ReducerOptions").KeepDims()
    if o.rank == 4:
        axes = [_NHWC_TO_NCHW_AXIS[a] for a in axes]
    o.b.emit("ReduceMean", [o.x], [o.out], o.name, axes=axes, keepdims=int(keep))


def _pad(o):
    b = o.b
    pads = b.data(o.ins[1]).astype(np.int64).reshape(-1, 2)
    if o.rank == 4:
        pads = pads[[0, 3, 1, 2]]
    value = b.data(o.ins[2]).reshape(-1)[0] if len(o.ins) > 2 else 0.0
    b.emit("Pad", [o.x, b.const(np.concatenate([pads[:, 0], pads[:, 1]]), "pads"), b.const(np.float32(value), "v")],
           [o.out], o.name, mode="constant")


def _reshape(o):
    b, oshape = o.b, o.b.tensor(o.outs[0])[1]
    src = o.x
    if o.rank == 4:  # TFLite flattens NHWC
        src = b.fresh(o.name + "_nhwc")
        b.emit("Transpose", [o.x], [src], o.name + "_to_nhwc", perm=[0, 2, 3, 1])
    target = b.const(np.array([0 if i == 0 else d for i, d in enumerate(oshape)], np.int64), "shape")
    if len(oshape) == 4:
        y = b.fresh(o.name)
        b.emit("Reshape", [src, target], [y], o.name)
        b.emit("Transpose", [y], [o.out], o.name + "_to_nchw", perm=[0, 3, 1, 2])
    else:
        b.emit("Reshape", [src, target], [o.out], o.name)


def _concat(o):
    opts = o.options("ConcatenationOptions")
    axis = _NHWC_TO_NCHW_AXIS[opts.Axis()] if o.rank == 4 else opts.Axis()
    y = o.b.fresh(o.name)
    o.b.emit("Concat", [o.b.value(i) for i in o.ins], [y], o.name, axis=axis)
    o.finish(y, opts.FusedActivationFunction())


def _fully_connected(o):
    b = o.b
    opts = o.options("FullyConnectedOptions")
    w = b.data(o.ins[1])
    if w is None:
        raise ValueError("weights must be constant")
    src, x = o.x, o.x
    if o.rank != 2:
        src = b.fresh(o.name + "_flat")
        if o.rank == 4:
            x = b.fresh(o.name + "_nhwc")
            b.emit("Transpose", [o.x], [x], o.name + "_to_nhwc", perm=[0, 2, 3, 1])
        b.emit("Reshape", [x, b.const(np.array([-1, w.shape[1]], np.int64), "shape")], [src], o.name + "_flatten")
    args = [src, b.const(w.astype(np.float32), "w")]
    if len(o.ins) > 2 and o.ins[2] >= 0 and b.data(o.ins[2]) is not None:
        args.append(b.const(b.data(o.ins[2]).astype(np.float32), "b"))
    y = b.fresh(o.name)
    b.emit("Gemm", args, [y], o.name, transB=1)
    o.finish(y, opts.FusedActivationFunction())


def _softmax(o):
    beta = o.options("SoftmaxOptions").Beta()
    src = o.x
    if beta != 1.0:
        src = o.b.fresh(o.name + "_scaled")
        o.b.emit("Mul", [o.x, o.b.const(np.float32(beta), "beta")], [src], o.name + "_beta")
    o.b.emit("Softmax", [src], [o.out], o.name, axis=-1)


def _activation(o):
    B = o.b.tfl.BuiltinOperator
    if o.code == B.RELU6:
        o.b.emit("Clip", [o.x, o.b.const(np.float32(0)), o.b.const(np.float32(6))], [o.out], o.name)
    else:
        o.b.emit({B.RELU: "Relu", B.LOGISTIC: "Sigmoid", B.TANH: "Tanh"}[o.code], [o.x], [o.out], o.name)


def _lce_quantize(o):
    b = o.b
    ge = b.fresh(o.name + "_ge")
    b.emit("GreaterOrEqual", [o.x, b.const(np.float32(0), "zero")], [ge], o.name + "_ge")
    b.emit("Where", [ge, b.const(np.float32(1), "one"), b.const(np.float32(-1), "mone")], [o.out], o.name)
    b.rank[o.out] = o.rank


def _lce_dequantize(o):
    o.b.emit("Identity", [o.x], [o.out], o.name)


def _lce_bmaxpool(o):
    opts = _flex(o.op)
    kernel = [int(opts["filter_height"]), int(opts["filter_width"])]
    strides = [int(opts["stride_height"]), int(opts["stride_width"])]
    pads = _padding_pads(o.input_hw(), kernel, strides, [1, 1], _lce_padding(opts))
    o.b.emit("MaxPool", [o.x], [o.out], o.name, kernel_shape=kernel, strides=strides, pads=pads)


def _lce_padding(opts):
    """LCE's padding option as TFLite's Padding code (0 SAME, 1 VALID): an int or a string."""
    padding = opts.get("padding", 1)
    return (0 if padding == "SAME" else 1) if isinstance(padding, str) else int(padding)


def _handlers(B):
    """Operator code (builtin) or custom name -> its converter."""
    table = {B.CONV_2D: _conv, B.DEPTHWISE_CONV_2D: _conv, B.MAX_POOL_2D: _pool, B.AVERAGE_POOL_2D: _pool,
             B.ADD: _arith, B.MUL: _arith, B.SUB: _arith, B.MEAN: _mean, B.PAD: _pad, B.PADV2: _pad,
             B.RESHAPE: _reshape, B.CONCATENATION: _concat, B.FULLY_CONNECTED: _fully_connected, B.SOFTMAX: _softmax}
    table.update({code: _activation for code in (B.RELU, B.RELU6, B.LOGISTIC, B.TANH)})
    table.update(LceQuantize=_lce_quantize, LceDequantize=_lce_dequantize, LceBMaxPool2d=_lce_bmaxpool,
                 LceBconv2d=_lce_bconv)
    return table


def _lce_bconv(o):
    b, opts, name = o.b, _flex(o.op), o.name
    channels_in = int(opts["channels_in"])
    words = b.data(o.ins[1])
    if words is None:
        raise ValueError("the filter must be constant")
    w = _unpack_lce_filter(words, channels_in)  # (O, C, KH, KW), +-1
    if int(opts.get("groups", 1) or 1) != 1:
        raise ValueError("grouped LceBconv2d is not supported yet")
    strides = [int(opts.get("stride_height", 1)), int(opts.get("stride_width", 1))]
    dil = [int(opts.get("dilation_height_factor", 1)), int(opts.get("dilation_width_factor", 1))]
    pads = _padding_pads(o.input_hw(), w.shape[2:], strides, dil, _lce_padding(opts))
    src, conv_pads = o.x, pads
    if any(pads) and int(opts.get("pad_values", 0)) == 1:  # Larq's pad_values=1: the padded input is +1
        src = b.fresh(name + "_padded")
        top, left, bottom, right = pads
        b.emit("Pad", [o.x, b.const(np.array([0, 0, top, left, 0, 0, bottom, right], np.int64), "pads"),
                       b.const(np.float32(1), "one")], [src], name + "_pad", mode="constant")
        conv_pads = [0, 0, 0, 0]
    acc = b.fresh(name + "_acc")
    b.emit("Conv", [src, b.const(w, "w")], [acc], name, strides=strides, dilations=dil, pads=conv_pads,
           group=1, kernel_shape=list(w.shape[2:]))
    if b.tensor(o.outs[0])[0].Type() == 0:  # float output: clamp(acc) * multiplier + bias
        y = b.activation(acc, int(opts.get("fused_activation_function", 0)), name)
        mult, bias = b.data(o.ins[2]), b.data(o.ins[3])
        scaled = b.fresh(name + "_mul")
        b.emit("Mul", [y, b.const(mult.astype(np.float32).reshape(-1, 1, 1), "mult")], [scaled], name + "_mul")
        b.emit("Add", [scaled, b.const(bias.astype(np.float32).reshape(-1, 1, 1), "bias")], [o.out], name + "_bias")
    else:  # bit-packed output: -1 where the XOR-popcount count exceeds the threshold
        k = channels_in * w.shape[2] * w.shape[3]
        thresholds = b.data(o.ins[4]).astype(np.int64).reshape(-1)
        # popcount > t  <=>  acc = k - 2 popcount < k - 2 t
        z, lt = b.fresh(name + "_z"), b.fresh(name + "_lt")
        b.emit("Sub", [acc, b.const((k - 2 * thresholds).astype(np.float32).reshape(-1, 1, 1), "thr")], [z], name + "_thr")
        b.emit("Less", [z, b.const(np.float32(0), "zero")], [lt], name + "_lt")
        b.emit("Where", [lt, b.const(np.float32(-1), "mone"), b.const(np.float32(1), "one")], [o.out], name + "_sign")
    b.rank[o.out] = 4
