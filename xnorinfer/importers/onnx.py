"""ONNX (read with the `onnx` package) -> IR.

What real exporters do that this sees through:
- initializers also listed as graph inputs (Brevitas, keep_initializers_as_inputs): they are constants;
- Constant nodes: constants;
- custom domains (QONNX / FINN ops) keep their op type; anything the executor cannot run is reported
  once, at load time, with every unsupported op type and node name.
"""
import numpy as np

from ..errors import ModelError
from ..ir import Graph, ModelMeta, Node, ValueInfo
from ..operators import OPS, parse_attrs
from ..operators.elementwise import ONNX_DTYPES

MAX_CONSTANT_BYTES = 1 << 31  # a single initializer larger than this is refused


def _load_proto(source):
    import onnx
    from google.protobuf.message import DecodeError
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            return onnx.load_model_from_string(bytes(source))
        return onnx.load(str(source))
    except FileNotFoundError:
        raise
    except (DecodeError, ValueError, RuntimeError, TypeError, UnicodeDecodeError) as exc:
        raise ModelError(f"not a readable ONNX model: {exc}") from None


def _value_info(vi):
    t = vi.type.tensor_type
    dims = None
    if t.HasField("shape"):
        dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim)
    if t.elem_type and t.elem_type not in ONNX_DTYPES:
        raise ModelError(f"value {vi.name!r}: unsupported ONNX tensor element type {t.elem_type}")
    return ValueInfo(vi.name, dims, np.dtype(ONNX_DTYPES[t.elem_type]) if t.elem_type else np.dtype(np.float32))


def _to_array(tensor, where):
    from onnx import numpy_helper
    dims = list(tensor.dims)
    if any(d < 0 for d in dims):
        raise ModelError(f"{where}: negative dimension in {dims}")
    count = int(np.prod(dims, dtype=object)) if dims else 1
    if count * 8 > MAX_CONSTANT_BYTES:
        raise ModelError(f"{where}: tensor of shape {dims} is larger than {MAX_CONSTANT_BYTES} bytes")
    if tensor.data_location == 1:  # EXTERNAL
        raise ModelError(f"{where}: external tensor data is not supported (save the model with the data inside)")
    try:
        arr = numpy_helper.to_array(tensor)
    except Exception as exc:  # onnx raises assorted errors on inconsistent tensors
        raise ModelError(f"{where}: cannot read tensor: {exc}") from None
    if arr.size != count:
        raise ModelError(f"{where}: tensor holds {arr.size} values but its dims {dims} say {count}")
    return np.array(arr)  # own, writeable copy


def _attr(attr, where):
    from onnx import AttributeProto
    t = attr.type
    if t == AttributeProto.FLOAT:
        return float(attr.f)
    if t == AttributeProto.INT:
        return int(attr.i)
    if t == AttributeProto.STRING:
        return attr.s.decode("utf-8", "replace")
    if t == AttributeProto.TENSOR:
        return _to_array(attr.t, where)
    if t == AttributeProto.FLOATS:
        return [float(v) for v in attr.floats]
    if t == AttributeProto.INTS:
        return [int(v) for v in attr.ints]
    if t == AttributeProto.STRINGS:
        return [s.decode("utf-8", "replace") for s in attr.strings]
    raise ModelError(f"{where}: attribute {attr.name!r} of type {t} (graphs, sparse tensors) is not supported")


def import_onnx(source):
    """Read an ONNX model (path or bytes) into a Graph.  Every op type the executor cannot run is
    reported in one ModelError."""
    model = _load_proto(source)
    opset = 13
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            opset = imp.version
    g = model.graph
    constants = {}
    for t in g.initializer:
        constants[t.name] = _to_array(t, f"initializer {t.name!r}")
    nodes, unsupported = [], []
    for i, n in enumerate(g.node):
        where = f"node {n.name or i!r} ({n.op_type})"
        attrs = {a.name: _attr(a, where) for a in n.attribute}
        if n.op_type == "Constant" and n.domain in ("", "ai.onnx"):
            if len(n.output) != 1:
                raise ModelError(f"{where}: a Constant has one output")
            value = attrs.get("value")
            for key in ("value_float", "value_int", "value_floats", "value_ints"):
                if key in attrs:
                    value = np.array(attrs[key], np.float32 if "float" in key else np.int64)
            if value is None:
                raise ModelError(f"{where}: unsupported Constant form {sorted(attrs)}")
            constants[n.output[0]] = np.asarray(value)
            continue
        if n.op_type not in OPS:
            unsupported.append(f"{n.op_type} ({n.name or f'node {i}'})")
            continue
        nodes.append(Node(n.op_type, list(n.input), list(n.output), parse_attrs(n.op_type, attrs, where, opset),
                          n.name or f"{n.op_type}_{i}"))
    if unsupported:
        raise ModelError(f"unsupported operators: {', '.join(unsupported)}")
    inputs = [_value_info(vi) for vi in g.input if vi.name not in constants]
    outputs = [_value_info(vi) for vi in g.output]
    if not outputs:
        raise ModelError("the model has no outputs")
    graph = Graph(nodes, inputs, outputs, constants, g.name or "graph", _meta(model))
    graph.check_references()
    return graph


def _meta(model):
    """onnxruntime's ModelMetadata fields, from the ModelProto."""
    return ModelMeta(producer_name=model.producer_name, producer_version=model.producer_version,
                     graph_name=model.graph.name, domain=model.domain, description=model.doc_string,
                     graph_description=model.graph.doc_string, version=int(model.model_version),
                     custom_metadata_map={p.key: p.value for p in model.metadata_props})
