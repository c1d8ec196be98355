"""The C runtime's program: tensors of fixed shapes and the steps over them (the format is in
csrc/runtime/program.h; each step's operands and parameters are declared in schema.py).

    header      magic, tensor count T, step count S, input count I, output count O, string bytes B,
                step words W, the schema's hash
    T x 12      type, rank, dims[6], kind (0 constant, 1 activation), offset of a constant's bytes in the
                .xnor data section, nbytes, name (offset in the strings, or -1)
    I, O        the tensor index of each input, each output
    W           the steps, each encoded by schema.encode_step
    B           NUL-terminated names, padded to a multiple of 8
"""
import struct
from dataclasses import dataclass, field

import numpy as np

from . import schema

CONST, ACT = 0, 1
F32, U8, I32, BITS = schema.F32, schema.U8, schema.I32, schema.BITS
NUMPY = {F32: np.dtype(np.float32), U8: np.dtype(np.uint8), I32: np.dtype(np.int32), BITS: np.dtype(np.uint64)}
HEADER_WORDS = 8


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
    count), or a static numpy value known from shapes and constants alone."""
    tensor: int = None
    static: object = None
    channels: int = None       # packed bits only


@dataclass
class Program:
    tensors: list
    steps: list                # encoded steps (lists of int64 words)
    inputs: list
    outputs: list
    output_dtypes: list        # (numpy dtype, shape) of each output, as the graph gives it
    step_nodes: list = field(default_factory=list)  # (graph node name, op) each step comes from (not serialized)

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
            dims = list(t.dims) + [0] * (schema.MAX_RANK - len(t.dims))
            nbytes = int(np.prod(t.dims, dtype=np.int64)) * NUMPY[t.type].itemsize
            offset = 0
            if t.kind == CONST:
                offset, ci = const_offsets[ci], ci + 1
            words += [t.type, len(t.dims)] + dims + [t.kind, offset, nbytes, name_offset(t.name)]
        step_words = [w for step in self.steps for w in step]
        strings.extend(b"\0" * ((-len(strings)) % 8))
        head = [struct.unpack("<q", schema.PROGRAM_MAGIC)[0], len(self.tensors), len(self.steps), len(self.inputs),
                len(self.outputs), len(strings), len(step_words), schema.SCHEMA_HASH]
        body = head + words + list(self.inputs) + list(self.outputs) + step_words
        return struct.pack(f"<{len(body)}q", *body) + bytes(strings)
