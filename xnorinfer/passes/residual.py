"""Fold a shortcut Add (and a ReLU / Clip after it) into the float-output binary conv before it.

Bi-Real Net and QuickNet blocks are  y = Add(BinaryConv(sign(x)), x)  with float output: run as two
ops, the Add reads the conv's output and the shortcut and writes a third array, and a ReLU after it
another.  The conv kernel adds the shortcut and clamps while each output row is still in L1
(xnor_bconv2d_prepared_add).  float32 addition is commutative and the clamp is np.clip's, so the
values are those of the unfused ops.  Runs after passes/nhwc.py: the conv's float output is NHWC
there, so an Add that reads it directly was rewritten to run in NHWC, its shortcut an NHWC value too.
"""
import numpy as np

from ..operators.elementwise import clip_bounds
from .fold import eliminate_dead_nodes


def _activation(g, act, value):
    """Whether `act` is a Relu or a constant-bounded Clip of `value` (foldable into the clamp)."""
    return act is not None and act.inputs[0] == value and (
        act.op == "Relu" or act.op == "Clip" and all(not i or i in g.constants for i in act.inputs[1:]))


def fuse_residual_add(graph):
    g = graph.copy()
    consumers, outputs = g.consumers(), set(g.output_names())
    removed, position = set(), {}

    def only_user(value):
        users = consumers.get(value, [])
        return users[0] if value not in outputs and len(users) == 1 else None

    for layer in [n for n in g.nodes if n.op == "XBConv"]:
        a = layer.attrs
        if a.packed is not None or not a.nhwc or a.residual or len(layer.inputs) != 1:
            continue
        add = only_user(layer.outputs[0])
        if add is None or add.op != "Add" or len(add.inputs) != 2:
            continue
        shortcut = add.inputs[1] if add.inputs[0] == layer.outputs[0] else add.inputs[0]
        if shortcut == layer.outputs[0] or shortcut in g.constants or not shortcut:
            continue
        out, lo, hi = add.outputs[0], -np.inf, np.inf
        act = only_user(out)
        if _activation(g, act, out):
            lo, hi = clip_bounds(g, act)
            removed.add(id(act))
            out = act.outputs[0]
        layer.inputs = [layer.inputs[0], shortcut]
        layer.outputs = [out]
        layer.attrs = a.replace(residual=True, clamp=(float(lo), float(hi)))
        removed.add(id(add))
        position[id(add)] = layer  # the shortcut may be computed after the conv's input: run at the Add
    nodes = []
    moved = {id(n) for n in position.values()}
    for n in g.nodes:
        if id(n) in position:
            nodes.append(position[id(n)])
        elif id(n) not in removed and id(n) not in moved:
            nodes.append(n)
    g.nodes = nodes
    return eliminate_dead_nodes(g)
