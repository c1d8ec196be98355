"""A small graph IR of our own, independent of ONNX: importers produce it, passes rewrite it, the
planner turns it into executable steps.

Values are named; a Graph holds constants (numpy arrays) and nodes in topological order.  Nodes carry
an op type, input and output names and plain-Python attributes.  Ops are the ONNX ops the float
executor implements (see float_ops.py) plus our binary ops (see binary_ops.py), whose names start
with "X".
"""
from dataclasses import dataclass, field

import numpy as np


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
    attrs: dict = field(default_factory=dict)
    name: str = ""
    why: str = ""         # for float layers that could have been binary: why they stayed float

    def __repr__(self):
        return f"Node({self.op} {self.name!r}: {self.inputs} -> {self.outputs})"


@dataclass
class Graph:
    nodes: list
    inputs: list          # ValueInfo of the graph inputs (not constants)
    outputs: list         # ValueInfo of the graph outputs
    constants: dict       # name -> np.ndarray
    name: str = "graph"

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

    def fresh_name(self, base):
        """A value name not used anywhere in the graph."""
        used = set(self.constants) | {v.name for v in self.inputs} | {o for n in self.nodes for o in n.outputs}
        name, i = base, 0
        while name in used:
            i += 1
            name = f"{base}_{i}"
        return name

    def copy(self):
        return Graph([Node(n.op, list(n.inputs), list(n.outputs), dict(n.attrs), n.name, n.why) for n in self.nodes],
                     list(self.inputs), list(self.outputs), dict(self.constants), self.name)
