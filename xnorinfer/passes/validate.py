"""Refuse, at load, spatial attributes no real model has: a hostile file could otherwise ask a run
for an array of any size through a huge pad.  Each attribute's own range is checked when it is
parsed (its op's typed attributes); what needs the weights or another input is checked here: a
window's pads stay within its kernel's span, an explicit Pad node's constant pads are small."""
import numpy as np

from ..conv_geometry import span
from ..errors import ModelError
from ..operators import OPS

MAX_PAD = 64           # an explicit Pad node's pads; a Conv's or pool's pads stay within its kernel


def _check_pads(window, kernel, where):
    """window: a Conv's or pool's attributes; kernel: its kernel (None: unknown, the attribute's bound holds)."""
    kernel, dilations = window.kernel_shape or kernel, window.steps()[1]
    if not kernel or len(kernel) != len(dilations):
        return
    limit = max(span(k, d) for k, d in zip(kernel, dilations))
    if any(p > limit for p in window.begin_end_pads()):
        raise ModelError(f"{where}: attribute pads={list(window.pads)} is outside [0, {limit}]")


def all_nodes(graph):
    """Every node of the graph, and the nodes fused nodes carry (operators run them too)."""
    def walk(node):
        yield node
        for inner in node.carried_nodes():
            yield from walk(inner)
    for node in graph.nodes:
        yield from walk(node)


def check_attributes(graph):
    for node in all_nodes(graph):
        where = f"node {node.name!r} ({node.op})"
        a = node.attrs
        if node.op in ("MaxPool", "AveragePool", "XBMaxPool"):
            _check_pads(a, None, where)
        elif node.op == "Conv":
            w = graph.constant(node.input(1))
            _check_pads(a, list(w.shape[2:]) if w is not None and w.ndim == 4 else None, where)
        elif node.op in ("XBConv", "XFloatConvPack"):
            shape = a.weight_shape if node.op == "XBConv" else a.weights.shape
            _check_pads(a.conv, list(shape[2:]) if len(shape) == 4 else None, where)
        packed = getattr(a, "packed", None)
        if packed is not None and packed.pool is not None:
            _check_pads(packed.pool.pool, None, where)
        if node.op == "Pad" and node.input(1) in graph.constants:
            pads = [int(v) for v in np.asarray(graph.constants[node.inputs[1]]).reshape(-1)]
            if any(abs(p) > MAX_PAD for p in pads):
                raise ModelError(f"{where}: attribute pads={pads!r} is outside [{-MAX_PAD}, {MAX_PAD}]")
    return graph


def check_arity(graph):
    """Every node has the inputs its op requires (operators/: each op's declared `inputs`)."""
    for node in all_nodes(graph):
        lo, hi = OPS[node.op].inputs
        if len(node.inputs) < lo or any(not i for i in node.inputs[:lo]) or (hi is not None and len(node.inputs) > hi):
            raise ModelError(f"node {node.name!r} ({node.op}) has inputs {node.inputs}: it takes {lo} to "
                             f"{'any number' if hi is None else hi}, the first {lo} not omitted")
    return graph


def check_value_kinds(graph):
    """Every value is read as what its producer makes it: packed sign bits where the reading op takes
    them (its packed_inputs), an array everywhere else, and no graph output is packed bits.  A planned
    graph from a file that mixes them up is refused here instead of failing inside a kernel."""
    packed = set()
    for node in graph.nodes:
        opdef = OPS[node.op]
        for i, name in enumerate(node.inputs):
            if name and (name in packed) != (i in opdef.packed_inputs):
                raise ModelError(f"node {node.name!r} ({node.op}) reads {name!r} as "
                                 f"{'packed bits' if i in opdef.packed_inputs else 'an array'}, which it is not")
        if opdef.packs(node.attrs):
            packed.update(o for o in node.outputs if o)
    for v in graph.outputs:
        if v.name in packed:
            raise ModelError(f"graph output {v.name!r} is packed bits, not an array")
    return graph
