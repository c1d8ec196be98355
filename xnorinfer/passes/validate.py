"""Refuse, at load, spatial attributes no real model has: a hostile file could otherwise ask a run
for an array of any size through a huge pad.  Each attribute's own range is checked when it is
parsed (its op's typed attributes); what needs the weights or another input is checked here: a
window's pads stay within its kernel's span, an explicit Pad node's constant pads are small."""
import numpy as np

from ..conv_geometry import span
from ..errors import ModelError

MAX_PAD = 64           # an explicit Pad node's pads; a Conv's or pool's pads stay within its kernel


def _check_pads(window, kernel, where):
    """window: a Conv's or pool's attributes; kernel: its kernel (None: unknown, the attribute's bound holds)."""
    kernel = window.kernel_shape or kernel
    if not kernel or len(kernel) != len(window.dilations):
        return
    limit = max(span(k, d) for k, d in zip(kernel, window.dilations))
    if any(p > limit for p in window.pads):
        raise ModelError(f"{where}: attribute pads={list(window.pads)} is outside [0, {limit}]")


def check_attributes(graph):
    def visit(node):
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
        for inner in node.carried_nodes():
            visit(inner)
    for node in graph.nodes:
        visit(node)
    return graph
