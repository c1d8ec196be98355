"""The `.xnor` model file: the planned graph with packed weights, loaded by mmap without copying.

Layout (little-endian):

    offset  size  field
    0       8     magic b"XNORINF\\0"
    8       4     format version (2)
    12      4     flags (0)
    16      8     offset of the JSON graph description (64)
    24      8     its size in bytes
    32      8     offset of the tensor data (a multiple of 64)
    40      8     its size in bytes
    48      4     CRC-32 of every byte after the 64-byte header
    52      8     offset of the C runtime's program inside the data section (flags bit 0; else 0)
    60      4     its size in bytes (see xnorinfer/lower.py and csrc/runtime/program.h)

The JSON holds the graph (inputs, outputs, nodes with their typed attributes, field by field; see
xnorinfer/operators/) and a table of tensors: each with dtype, shape, and offset/size inside the data
section, 64-byte aligned so a mapped file gives aligned numpy views.  Attribute values are JSON
values, objects (nested attributes), or tagged objects: {"__tensor__": i}, {"__tuple__": [...]},
{"__node__": {...}} (nodes a fused layer carries), {"__float__": "inf"} (JSON has no inf/nan).
Nothing in a file is executed: no pickle, no code; every offset, size, dtype, shape, op and attribute
is checked before use (each attribute against its op's declared type and range), and nothing is
allocated beyond what the file's own size justifies.
"""
import hashlib
import json
import mmap
import os
import struct
import zlib

import numpy as np

from ..errors import ModelError
from ..ir import Attrs, Graph, ModelMeta, Node, ValueInfo
from ..operators import OPS

MAGIC = b"XNORINF\0"
VERSION = 2
HEADER = struct.Struct("<8sIIQQQQIQI")
FLAG_PROGRAM = 1
ALIGN = 64
MAX_JSON_BYTES = 64 << 20
MAX_DEPTH = 32
DTYPES = {"float32", "float64", "float16", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
          "uint64", "bool"}


def is_xnor(source):
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source[:8]) == MAGIC
    try:
        with open(source, "rb") as f:
            return f.read(8) == MAGIC
    except OSError:
        return False


# ---- writing ----------------------------------------------------------------------------------------

class _Writer:
    def __init__(self):
        self.tensors, self.chunks, self.offset = [], [], 0
        self.stored = {}  # content digest -> offset: equal bytes are stored once (the program's copies)

    def tensor(self, arr):
        arr = np.asarray(arr, order="C")  # (np.ascontiguousarray would make a 0-d array 1-d)
        if arr.dtype.name not in DTYPES:
            raise ModelError(f"cannot store a tensor of dtype {arr.dtype}")
        digest = (hashlib.blake2b(memoryview(arr).cast("B"), digest_size=16).digest(), arr.nbytes)
        if digest in self.stored:
            self.tensors.append({"dtype": arr.dtype.name, "shape": list(arr.shape), "offset": self.stored[digest],
                                 "nbytes": arr.nbytes})
            return len(self.tensors) - 1
        pad = (-self.offset) % ALIGN
        if pad:
            self.chunks.append(b"\0" * pad)
            self.offset += pad
        self.tensors.append({"dtype": arr.dtype.name, "shape": list(arr.shape), "offset": self.offset,
                             "nbytes": arr.nbytes})
        self.stored[digest] = self.offset
        self.chunks.append(arr.tobytes())
        self.offset += arr.nbytes
        return len(self.tensors) - 1

    def value(self, v, depth=0):
        if depth > MAX_DEPTH:
            raise ModelError("attributes nested too deeply to store")
        if isinstance(v, np.ndarray):
            return {"__tensor__": self.tensor(v)}
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, Node):
            return {"__node__": self.node(v, depth + 1)}
        if isinstance(v, Attrs):
            return {k: self.value(x, depth + 1) for k, x in v.fields()}
        if isinstance(v, tuple):
            return {"__tuple__": [self.value(x, depth + 1) for x in v]}
        if isinstance(v, list):
            return [self.value(x, depth + 1) for x in v]
        if isinstance(v, dict):
            if any(not isinstance(k, str) or k.startswith("__") for k in v):
                raise ModelError(f"cannot store attribute keys {list(v)}")
            return {k: self.value(x, depth + 1) for k, x in v.items()}
        if isinstance(v, float) and not np.isfinite(v):
            return {"__float__": repr(v)}
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        raise ModelError(f"cannot store an attribute of type {type(v).__name__}")

    def node(self, n, depth=0):
        return {"op": n.op, "name": n.name, "inputs": list(n.inputs), "outputs": list(n.outputs), "why": n.why,
                "attrs": self.value(n.attrs, depth + 1)}


def _value_info(v):
    return {"name": v.name, "shape": list(v.shape) if v.shape is not None else None, "dtype": np.dtype(v.dtype).name}


def dumps(graph, program=None):
    """The bytes of a .xnor file: the graph (None: a file only the C runtime can run) and, optionally,
    the C runtime's program (a lower.Program), whose constants go in the data section too."""
    w = _Writer()
    doc = {"format": "xnorinfer"}
    if graph is not None:
        doc["graph"] = {
            "name": graph.name, "meta": graph.meta.to_dict(), "inputs": [_value_info(v) for v in graph.inputs],
            "outputs": [_value_info(v) for v in graph.outputs],
            "constants": {k: w.tensor(v) for k, v in graph.constants.items()},
            "nodes": [w.node(n) for n in graph.nodes]}
    program_offset = program_size = 0
    if program is not None:
        offsets = [w.tensors[w.tensor(arr)]["offset"] for arr in program.constants()]
        blob = np.frombuffer(program.serialize(offsets), np.uint8)
        index = w.tensor(blob)
        doc["program"] = {"__tensor__": index}
        program_offset, program_size = w.tensors[index]["offset"], blob.nbytes
    doc["tensors"] = w.tensors
    text = json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()
    data_offset = HEADER.size + len(text)
    data_offset += (-data_offset) % ALIGN
    body = text + b"\0" * (data_offset - HEADER.size - len(text)) + b"".join(w.chunks)
    header = HEADER.pack(MAGIC, VERSION, FLAG_PROGRAM if program is not None else 0, HEADER.size, len(text),
                         data_offset, w.offset, zlib.crc32(body), program_offset, program_size)
    return header + body


def save(graph, path, program=None):
    data = dumps(graph, program)
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return len(data)


# ---- reading ----------------------------------------------------------------------------------------

def _check(cond, msg):
    if not cond:
        raise ModelError(f"invalid .xnor file: {msg}")


class _Reader:
    def __init__(self, buf, tensors, data_offset, data_size):
        self.buf, self.data_offset, self.data_size = buf, data_offset, data_size
        _check(isinstance(tensors, list), "the tensor table is not a list")
        self.table = tensors
        self.cache = {}

    def tensor(self, index):
        _check(isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(self.table),
               f"tensor reference {index!r} out of range")
        if index in self.cache:
            return self.cache[index]
        t = self.table[index]
        _check(isinstance(t, dict), f"tensor {index} is not an object")
        dtype, shape, offset, nbytes = t.get("dtype"), t.get("shape"), t.get("offset"), t.get("nbytes")
        _check(isinstance(dtype, str) and dtype in DTYPES, f"tensor {index}: dtype {dtype!r} is not allowed")
        _check(isinstance(shape, list) and len(shape) <= 8 and
               all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**40 for d in shape),
               f"tensor {index}: bad shape {shape!r}")
        _check(all(isinstance(v, int) and not isinstance(v, bool) for v in (offset, nbytes)),
               f"tensor {index}: offset and size must be integers")
        itemsize = np.dtype(dtype).itemsize
        count = 1
        for d in shape:
            count *= d
        _check(count * itemsize == nbytes, f"tensor {index}: shape {shape} and {nbytes} bytes disagree")
        _check(0 <= offset and offset % ALIGN == 0 and offset + nbytes <= self.data_size,
               f"tensor {index}: bytes [{offset}, {offset + nbytes}) lie outside the data section")
        arr = np.frombuffer(self.buf, dtype=dtype, count=count, offset=self.data_offset + offset).reshape(shape)
        self.cache[index] = arr
        return arr

    def value(self, v, depth=0):
        _check(depth <= MAX_DEPTH, "attributes nested too deeply")
        if isinstance(v, list):
            return [self.value(x, depth + 1) for x in v]
        if isinstance(v, dict):
            if len(v) == 1:
                (key, inner), = v.items()
                if key == "__tensor__":
                    return self.tensor(inner)
                if key == "__tuple__":
                    _check(isinstance(inner, list), "a tuple is not a list")
                    return tuple(self.value(x, depth + 1) for x in inner)
                if key == "__node__":
                    return self.node(inner, depth + 1)
                if key == "__float__":
                    _check(inner in ("inf", "-inf", "nan"), f"bad float {inner!r}")
                    return float(inner)
            _check(all(isinstance(k, str) and not k.startswith("__") for k in v), "bad attribute keys")
            return {k: self.value(x, depth + 1) for k, x in v.items()}
        _check(v is None or isinstance(v, (bool, int, float, str)), f"bad attribute value {v!r}")
        return v

    def node(self, n, depth=0):
        _check(isinstance(n, dict), "a node is not an object")
        op, name, inputs, outputs = n.get("op"), n.get("name", ""), n.get("inputs"), n.get("outputs")
        _check(isinstance(op, str) and isinstance(name, str), "a node needs an op and a name")
        _check(isinstance(inputs, list) and all(isinstance(i, str) for i in inputs), f"node {name!r}: bad inputs")
        _check(isinstance(outputs, list) and outputs and all(isinstance(o, str) for o in outputs),
               f"node {name!r}: bad outputs")
        attrs = n.get("attrs", {})
        _check(isinstance(attrs, dict), f"node {name!r}: bad attributes")
        _check(op in OPS, f"unknown operator {op!r}")
        values = self.value(attrs, depth + 1)
        try:
            attrs = OPS[op].attrs.parse(values, f"node {name!r} ({op})", strict=True)
        except ModelError as exc:
            raise ModelError(f"invalid .xnor file: {exc}") from None
        return Node(op, inputs, outputs, attrs, name, str(n.get("why", "")))


def _infos(items, what):
    _check(isinstance(items, list), f"{what} is not a list")
    out = []
    for v in items:
        _check(isinstance(v, dict) and isinstance(v.get("name"), str) and isinstance(v.get("dtype"), str) and
               v["dtype"] in DTYPES,
               f"bad {what} entry {v!r}")
        shape = v.get("shape")
        _check(shape is None or (isinstance(shape, list) and all(d is None or isinstance(d, (int, str)) for d in shape)),
               f"bad shape in {what}")
        out.append(ValueInfo(v["name"], tuple(shape) if shape is not None else None, np.dtype(v["dtype"])))
    return out


def load(source):
    """Read a .xnor file (path or bytes) into a Graph whose constants are views of the mapped file."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        buf = bytes(source)
    else:
        with open(source, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            _check(size >= HEADER.size, f"{size} bytes is shorter than the header")
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    _check(len(buf) >= HEADER.size, f"{len(buf)} bytes is shorter than the header")
    magic, version, flags, json_off, json_size, data_off, data_size, crc, prog_off, prog_size = \
        HEADER.unpack_from(buf, 0)
    _check(magic == MAGIC, "bad magic")
    _check(version == VERSION, f"format version {version}, this xnorinfer reads {VERSION}")
    _check(flags in (0, FLAG_PROGRAM), f"unknown flags {flags:#x}")
    _check(prog_off % 8 == 0 and prog_off + prog_size <= data_size and (flags or prog_off == prog_size == 0),
           "the C runtime's program lies outside the data section")
    _check(json_off == HEADER.size and json_size <= MAX_JSON_BYTES and json_off + json_size <= len(buf),
           "the graph description lies outside the file")
    _check(data_off % ALIGN == 0 and data_off >= json_off + json_size and data_off + data_size == len(buf),
           "the data section does not end the file")
    _check(zlib.crc32(memoryview(buf)[HEADER.size:]) == crc, "checksum mismatch (the file is corrupted)")
    try:
        doc = json.loads(bytes(buf[json_off:json_off + json_size]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelError(f"invalid .xnor file: the graph description is not valid JSON ({exc})") from None
    _check(isinstance(doc, dict) and isinstance(doc.get("graph"), dict), "no graph")
    reader = _Reader(buf, doc.get("tensors"), data_off, data_size)
    g = doc["graph"]
    consts = g.get("constants", {})
    _check(isinstance(consts, dict), "constants is not an object")
    constants = {name: reader.tensor(i) for name, i in consts.items()}
    nodes = g.get("nodes")
    _check(isinstance(nodes, list), "nodes is not a list")
    graph = Graph([reader.node(n) for n in nodes], _infos(g.get("inputs"), "inputs"),
                  _infos(g.get("outputs"), "outputs"), constants, str(g.get("name", "graph")),
                  ModelMeta.from_dict(g.get("meta", {})))
    graph.check_references()
    return graph
