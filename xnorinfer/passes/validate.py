"""Refuse, at load, spatial attributes no real model has: a hostile file could otherwise ask a run
for an array of any size through a huge pad, stride or kernel."""
import numpy as np

from ..errors import ModelError
from .fold import nested_nodes

MAX_KERNEL = 4096      # kernel size, stride, dilation
MAX_PAD = 64           # an explicit Pad node's pads; a Conv's or pool's pads stay within its kernel


def _ints(value, name, where, lo, hi):
    if value is None:
        return
    values = value if isinstance(value, (list, tuple)) else [value]
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= int(v) <= hi:
            raise ModelError(f"{where}: attribute {name}={value!r} is outside [{lo}, {hi}]")


def _spatial(attrs, where, kernel=None):
    if not isinstance(attrs, dict):
        raise ModelError(f"{where}: attributes are not a mapping")
    _ints(attrs.get("kernel_shape"), "kernel_shape", where, 1, MAX_KERNEL)
    _ints(attrs.get("strides"), "strides", where, 1, MAX_KERNEL)
    _ints(attrs.get("dilations"), "dilations", where, 1, MAX_KERNEL)
    _ints(attrs.get("group"), "group", where, 1, 1 << 20)
    kernel = attrs.get("kernel_shape") or kernel
    span = MAX_KERNEL
    if isinstance(kernel, (list, tuple)) and kernel:
        dil = attrs.get("dilations") or [1] * len(kernel)
        span = max(int(d) * (int(k) - 1) + 1 for k, d in zip(kernel, dil))
    _ints(attrs.get("pads"), "pads", where, 0, span)


def check_attributes(graph):
    def visit(node):
        where = f"node {node.name!r} ({node.op})"
        if node.op in ("MaxPool", "AveragePool", "XBMaxPool"):
            _spatial(node.attrs, where)
        if node.op == "Conv":
            w = graph.constants.get(node.inputs[1]) if len(node.inputs) > 1 else None
            _spatial(node.attrs, where, list(w.shape[2:]) if w is not None and w.ndim == 4 else None)
        if node.op in ("XBConv", "XFloatConvPack"):
            shape = node.attrs.get("weight_shape") or np.shape(node.attrs.get("weights"))
            _spatial(node.attrs.get("conv"), where, list(shape[2:]) if len(shape) == 4 else None)
        packed = node.attrs.get("packed")
        if isinstance(packed, dict) and packed.get("pool") is not None:
            _spatial(packed["pool"], where)
        if node.op == "Pad" and len(node.inputs) > 1 and node.inputs[1] in graph.constants:
            _ints([int(v) for v in np.asarray(graph.constants[node.inputs[1]]).reshape(-1)], "pads", where,
                  -MAX_PAD, MAX_PAD)
        for inner in nested_nodes(node):
            visit(inner)
    for node in graph.nodes:
        visit(node)
    return graph
