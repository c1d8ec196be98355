"""A small graph IR of our own, independent of ONNX: importers produce it, passes rewrite it, the
executor and the C runtime's lowering run it.

Values are named; a Graph holds constants (numpy arrays) and nodes in topological order.  A node
carries an op type, input and output names and its attributes: an instance of the op's typed
attribute class (a dataclass derived from `Attrs`, declared with the op in xnorinfer/operators/).
Ops are ONNX's, the QONNX/FINN custom ops, and our binary ops, whose names start with "X".
"""
import copy
import dataclasses
import typing
from dataclasses import dataclass, field

import numpy as np

from .errors import ModelError

MISSING = dataclasses.MISSING


def attr(default=MISSING, *, lo=None, hi=None, dtype=None, choices=None):
    """A typed attribute field: `lo` / `hi` bound an int (or every int of a tuple), `dtype` is an
    array field's element type, `choices` a string field's allowed values."""
    meta = {k: v for k, v in (("lo", lo), ("hi", hi), ("dtype", dtype), ("choices", choices)) if v is not None}
    if isinstance(default, (list, dict, np.ndarray)):
        raise TypeError("mutable attribute defaults are not allowed")
    return field(default=default, metadata=meta)


MAX_AXES = 64   # numpy's largest rank: an axis attribute outside [-64, 63] can only be a broken file

Ints = typing.Tuple[int, ...]
Floats = typing.Tuple[float, ...]
Bools = typing.Tuple[bool, ...]


class Attrs:
    """Base of every op's typed attributes (a dataclass).  `parse` builds one from a mapping of
    attribute values (an ONNX node's attributes, a .xnor file's), coercing each field to its declared
    type and checking its range, so nothing downstream handles a raw value."""

    @classmethod
    def parse(cls, raw, where, strict=False):
        """strict: every field must be given and nothing else (a .xnor file); else missing fields take
        their defaults and unknown names are ignored (an ONNX node's attributes we do not use)."""
        if not isinstance(raw, dict):
            raise ModelError(f"{where}: attributes are not a mapping")
        hints = _hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}
        if strict and set(raw) != names:
            raise ModelError(f"{where}: attributes {sorted(raw)} are not {sorted(names)}")
        values = {}
        for f in dataclasses.fields(cls):
            if f.name in raw:
                values[f.name] = coerce(raw[f.name], hints[f.name], f.metadata, f"{where}: attribute {f.name}")
            elif f.default is MISSING:
                raise ModelError(f"{where}: attribute {f.name} is required")
        try:
            return cls(**values)
        except ModelError as exc:  # a check across fields (the class's __post_init__)
            raise ModelError(f"{where}: {exc}") from None

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def fields(self):
        """(name, value) of every field, in declaration order."""
        return [(f.name, getattr(self, f.name)) for f in dataclasses.fields(self)]


@dataclass
class NoAttrs(Attrs):
    """An op without attributes."""


_HINTS = {}


def _hints(cls):
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _check_int(v, meta, where):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise ModelError(f"{where}: {v!r} is not an integer")
    v = int(v)
    if ("lo" in meta and v < meta["lo"]) or ("hi" in meta and v > meta["hi"]):
        raise ModelError(f"{where}: {v} is outside [{meta.get('lo', '-inf')}, {meta.get('hi', 'inf')}]")
    return v


def coerce(value, hint, meta, where):
    """`value` as the type `hint` says (see Attrs.parse); a ModelError naming `where` if it is not."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:  # Optional[X]
        if value is None:
            return None
        return coerce(value, next(a for a in args if a is not type(None)), meta, where)
    if hint is bool:
        if isinstance(value, (bool, np.bool_)) or (isinstance(value, (int, np.integer)) and value in (0, 1)):
            return bool(value)
        raise ModelError(f"{where}: {value!r} is not a boolean")
    if hint is int:
        return _check_int(value, meta, where)
    if hint is float:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ModelError(f"{where}: {value!r} is not a number")
        return float(value)
    if hint is str:
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if not isinstance(value, str) or ("choices" in meta and value not in meta["choices"]):
            raise ModelError(f"{where}: {value!r} is not one of {meta.get('choices', 'the strings')}")
        return value
    if origin is tuple:
        if isinstance(value, np.ndarray):
            value = value.reshape(-1).tolist()
        if not isinstance(value, (list, tuple)) or len(value) > 1 << 16:
            raise ModelError(f"{where}: {value!r} is not a list")
        item = args[0]
        if len(args) != 2 or args[1] is not Ellipsis:  # a fixed-length tuple
            if len(args) != len(value):
                raise ModelError(f"{where}: {value!r} does not have {len(args)} items")
            return tuple(coerce(v, a, meta, where) for v, a in zip(value, args))
        return tuple(coerce(v, item, meta, where) for v in value)
    if origin is list:  # nodes a fused op carries
        if not isinstance(value, list) or not all(isinstance(v, Node) for v in value):
            raise ModelError(f"{where}: not a list of nodes")
        return list(value)
    if hint is np.ndarray:
        if not isinstance(value, np.ndarray) or ("dtype" in meta and value.dtype != np.dtype(meta["dtype"])):
            raise ModelError(f"{where}: not an array of {meta.get('dtype', 'numbers')}")
        return value
    if isinstance(hint, type) and issubclass(hint, Attrs):
        return value if isinstance(value, hint) else hint.parse(value, where, strict=True)
    raise TypeError(f"{where}: no coercion for {hint}")


@dataclass
class ValueInfo:
    name: str
    shape: tuple          # ints, or None / str for unknown or symbolic dimensions
    dtype: np.dtype


@dataclass
class Node:
    op: str
    inputs: list          # value names; "" for an omitted optional input
    outputs: list
    attrs: Attrs = field(default_factory=NoAttrs)
    name: str = ""
    why: str = ""         # for float layers that could have been binary: why they stayed float

    def __repr__(self):
        return f"Node({self.op} {self.name!r}: {self.inputs} -> {self.outputs})"

    def input(self, i):
        """Input i's name, or "" when the node has no such (optional) input."""
        return self.inputs[i] if i < len(self.inputs) else ""

    def copy(self):
        return Node(self.op, list(self.inputs), list(self.outputs), copy.copy(self.attrs), self.name, self.why)

    def carried_nodes(self):
        """Nodes a fused node carries in its attributes (ops it runs itself, or in a float fallback)."""
        def walk(value):
            if isinstance(value, Node):
                yield value
            elif isinstance(value, list):
                for v in value:
                    yield from walk(v)
            elif isinstance(value, Attrs):
                for _, v in value.fields():
                    yield from walk(v)
        yield from walk(self.attrs)


@dataclass
class ModelMeta:
    """What the file says about itself, as onnxruntime's ModelMetadata has it: ONNX's producer,
    domain, doc strings, model_version and metadata_props; TFLite's description, schema version and
    metadata buffers (as text); a .xnor file keeps the metadata of the model it was converted from."""
    producer_name: str = ""
    producer_version: str = ""
    graph_name: str = ""
    domain: str = ""
    description: str = ""
    graph_description: str = ""
    version: int = 0
    custom_metadata_map: dict = field(default_factory=dict)

    MAX_TEXT = 1 << 16      # a longer string in a file is cut to this many characters

    @classmethod
    def from_dict(cls, d):
        """From untrusted JSON-like data (a .xnor file): unknown keys dropped, strings cut to MAX_TEXT."""
        if not isinstance(d, dict):
            raise ModelError("invalid .xnor file: meta is not an object")

        def text(v, what):
            if not isinstance(v, str):
                raise ModelError(f"invalid .xnor file: meta {what} is not a string")
            return v[:cls.MAX_TEXT]
        kw = {f.name: text(d[f.name], f.name) for f in dataclasses.fields(cls)
              if f.type is str and f.name in d}
        version = d.get("version", 0)
        if not isinstance(version, int) or isinstance(version, bool) or not -2**63 <= version < 2**63:
            raise ModelError("invalid .xnor file: meta version is not a 64-bit integer")
        custom = d.get("custom_metadata_map", {})
        if not isinstance(custom, dict) or len(custom) > 4096:
            raise ModelError("invalid .xnor file: meta custom_metadata_map is not an object of at most 4096 entries")
        return cls(**kw, version=version,
                   custom_metadata_map={text(k, "key"): text(v, f"entry {k!r}") for k, v in custom.items()})

    def to_dict(self):
        return dataclasses.asdict(self)


@dataclass
class Graph:
    nodes: list
    inputs: list          # ValueInfo of the graph inputs (not constants)
    outputs: list         # ValueInfo of the graph outputs
    constants: dict       # name -> np.ndarray
    name: str = "graph"
    meta: ModelMeta = field(default_factory=ModelMeta)

    def producers(self):
        return {out: node for node in self.nodes for out in node.outputs}

    def consumers(self):
        users = {}
        for node in self.nodes:
            for name in node.inputs:
                if name:
                    users.setdefault(name, []).append(node)
        return users

    def output_names(self):
        return [v.name for v in self.outputs]

    def constant(self, name):
        """The constant called `name`, or None (also for "", an omitted input)."""
        return self.constants.get(name) if name else None

    def scalar(self, name):
        """A one-element constant as a float, or None."""
        c = self.constant(name)
        return float(np.asarray(c).reshape(-1)[0]) if c is not None and np.size(c) == 1 else None

    def fresh_name(self, base):
        """A value name not used anywhere in the graph."""
        used = set(self.constants) | {v.name for v in self.inputs} | {o for n in self.nodes for o in n.outputs}
        name, i = base, 0
        while name in used:
            i += 1
            name = f"{base}_{i}"
        return name

    def check_references(self):
        """Every input of every node must be produced earlier (or be a graph input or constant), every
        value produced once, every graph output produced: else a ModelError."""
        known = set(self.constants) | {v.name for v in self.inputs}
        for node in self.nodes:
            for name in node.inputs:
                if name and name not in known:
                    raise ModelError(f"node {node.name!r} ({node.op}) reads {name!r}, which nothing produced before "
                                     "it (the graph is not in topological order, or the value is missing)")
            for name in node.outputs:
                if name in known and name:
                    raise ModelError(f"value {name!r} is produced twice (node {node.name!r})")
                known.add(name)
        for v in self.outputs:
            if v.name not in known:
                raise ModelError(f"graph output {v.name!r} is never produced")

    def copy(self):
        return Graph([n.copy() for n in self.nodes], list(self.inputs), list(self.outputs), dict(self.constants),
                     self.name, copy.deepcopy(self.meta))
