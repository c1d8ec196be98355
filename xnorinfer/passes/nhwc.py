"""Run 4-D float activations in NHWC, the layout the binary kernels read and write.

The IR keeps ONNX's NCHW semantics, and until this pass every float op ran in it: a float-output
binary conv transposed its NHWC result to NCHW, the shortcut Add ran there, and the next XPack
transposed back to pack -- three passes over each activation for nothing.  TFLite models arrive NHWC
and were transposed on the way in and out of every float Conv as well.

This pass walks the graph once.  A value can exist as itself (NCHW, or any tensor that is not 4-D)
and/or as an NHWC twin.  Ops that do not care about layout beyond constants and axes (elementwise
ops, Concat, Pad, reductions, pools, convolutions, the binary edges) run on the twin when their
activation inputs have one; everything else reads the NCHW value, materialised by one Transpose the
first time something needs it.  A Transpose that only converts between the two layouts (TFLite's
graph input and output, tf2onnx's islands) becomes a renaming.  Identity nodes disappear.

Nodes that run in NHWC have attrs.nhwc set (the ops whose meaning depends on the layout: Conv, pools,
global pools, the binary edges); their pads, strides and kernel shapes still name
(H, W) as ONNX orders them.  Constants that broadcast against an NHWC operand are permuted, channel
axes and pads remapped; float Conv weights are stored OHWI.
"""
import dataclasses

import numpy as np

from ..ir import Node, NoAttrs
from ..operators.tensor import TransposeAttrs

TO_NHWC = [0, 2, 3, 1]
TO_NCHW = [0, 3, 1, 2]
_AXIS = {0: 0, 1: 3, 2: 1, 3: 2}  # NCHW axis -> the same axis's position in NHWC

_ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "Max", "Min", "Pow", "Where", "Relu", "Clip", "Sigmoid", "Tanh",
                "HardSigmoid", "LeakyRelu", "PRelu", "Neg", "Abs", "Sign", "Sqrt", "Exp", "Log", "Floor",
                "Ceil", "Round", "Greater", "GreaterOrEqual", "Less", "LessOrEqual", "Equal", "Not", "And",
                "Or", "Xor", "Reciprocal", "Cast", "Dropout"}
_POOLS = {"MaxPool", "AveragePool"}
_GLOBAL_POOLS = {"GlobalAveragePool", "GlobalMaxPool"}
_REDUCES = {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin"}


def _is_2d_spatial(node, graph):
    if node.op in _POOLS:
        return len(node.attrs.kernel_shape or ()) == 2 and node.attrs.storage_order == 0 and \
            len(node.outputs) == 1
    if node.op == "Conv":
        w = graph.constants.get(node.inputs[1]) if len(node.inputs) > 1 else None
        return w is not None and w.ndim == 4 and all(not i or i in graph.constants for i in node.inputs[1:])
    return False


def _nhwc_const(c):
    """A constant that broadcasts against an NCHW tensor, rearranged to broadcast against its twin."""
    c = np.asarray(c)
    if c.size == 1 and c.ndim <= 4:
        return c
    if c.ndim > 4:
        return None
    return np.ascontiguousarray(c.reshape((1,) * (4 - c.ndim) + c.shape).transpose(TO_NHWC))


def in_nhwc(attrs, **changes):
    """The attributes of a node that now runs on NHWC activations (with `changes`)."""
    if any(f.name == "nhwc" for f in dataclasses.fields(attrs)):
        changes["nhwc"] = True
    return attrs.replace(**changes) if changes else attrs


class _Rewriter:
    def __init__(self, graph):
        self.g = graph.copy()
        self.twin = {}      # value -> name of its NHWC twin
        self.plain = set(v.name for v in self.g.inputs) | set(self.g.constants)  # values that exist as themselves
        self.alias = {}     # value -> the value it equals (Identity, layout-only Transposes)
        self.rank4_inputs = {v.name for v in self.g.inputs if v.shape is not None and len(v.shape) == 4}
        self.nodes = []

    def name(self, v):
        while v in self.alias:
            v = self.alias[v]
        return v

    def const(self, value, base):
        name = self.g.fresh_name(base)
        self.g.constants[name] = value
        self.plain.add(name)
        return name

    def need_plain(self, v):
        """The value itself (materialised from its twin by one Transpose the first time)."""
        v = self.name(v)
        if v and v not in self.plain:
            self.nodes.append(Node("Transpose", [self.twin[v]], [v], TransposeAttrs(tuple(TO_NCHW)), f"{v}_to_nchw"))
            self.plain.add(v)
        return v

    def need_twin(self, v):
        """The NHWC twin of a 4-D value (made by one Transpose the first time)."""
        v = self.name(v)
        if v not in self.twin:
            twin = self.g.fresh_name(v + "@nhwc")
            self.nodes.append(Node("Transpose", [v], [twin], TransposeAttrs(tuple(TO_NHWC)), f"{v}_to_nhwc"))
            self.twin[v] = twin
            self.plain.add(twin)
        return self.twin[v]

    def emit_nhwc(self, node, inputs, **changes):
        """node, run on NHWC inputs (its attributes `changes`d); its (first) output becomes a twin."""
        out = node.outputs[0]
        twin = self.g.fresh_name(out + "@nhwc")
        self.nodes.append(Node(node.op, inputs, [twin] + node.outputs[1:], in_nhwc(node.attrs, **changes), node.name,
                               node.why))
        self.twin[out] = twin
        self.plain.update([twin] + node.outputs[1:])  # a twin is an array in its own right too

    def emit_plain(self, node):
        inputs = [self.need_plain(i) if i else i for i in node.inputs]
        self.nodes.append(Node(node.op, inputs, list(node.outputs), node.attrs, node.name, node.why))
        self.plain.update(o for o in node.outputs if o)

    # ---- per op ----
    def elementwise(self, node):
        ins = [self.name(i) if i else i for i in node.inputs]
        acts = [i for i in ins if i and i not in self.g.constants]
        if not acts or not any(i in self.twin for i in acts) or \
                any(i not in self.twin and i not in self.rank4_inputs for i in acts):
            return False
        consts = {i: _nhwc_const(self.g.constants[i]) for i in ins if i in self.g.constants}
        if any(c is None for c in consts.values()):
            return False
        new = []
        for i in ins:
            if not i:
                new.append(i)
            elif i in consts:
                new.append(i if np.size(consts[i]) == 1 else self.const(consts[i], i + "@nhwc"))
            else:  # an NHWC operand, or a 4-D graph input beside one (transposed once)
                new.append(self.need_twin(i))
        self.emit_nhwc(node, new)
        return True

    def rewrite(self, node):  # noqa: C901 - one branch per op family
        g, op = self.g, node.op
        if op == "Identity" and node.outputs[0] not in self.outputs:
            self.alias[node.outputs[0]] = self.name(node.inputs[0])
            return
        if op == "Transpose" and node.attrs.perm is not None and len(node.attrs.perm) == 4:
            x, perm = self.name(node.inputs[0]), list(node.attrs.perm)
            out = node.outputs[0]
            if x in self.twin:  # out = twin.transpose(composite)
                composite = [TO_NCHW[p] for p in perm]
                if composite == [0, 1, 2, 3] and out not in self.outputs:
                    self.alias[out] = self.twin[x]
                    return
                self.nodes.append(Node("Identity", [self.twin[x]], [out], NoAttrs(), node.name) if composite == [0, 1, 2, 3]
                                  else Node("Transpose", [self.twin[x]], [out], TransposeAttrs(tuple(composite)), node.name))
                self.plain.add(out)
                return
            if perm == TO_NCHW and x in self.plain:  # an NHWC tensor read as NCHW: x is out's twin
                self.twin[out] = x
                return
        if op in _ELEMENTWISE and len(node.outputs) == 1 and self.elementwise(node):
            return
        if op == "Conv" and _is_2d_spatial(node, g):
            w = g.constants[node.inputs[1]]
            w_ohwi = self.const(np.ascontiguousarray(w.transpose(0, 2, 3, 1)), node.inputs[1] + "@ohwi")
            self.emit_nhwc(node, [self.need_twin(node.inputs[0]), w_ohwi] + list(node.inputs[2:]),
                           kernel_shape=tuple(w.shape[2:]))
            return
        if op in _POOLS and _is_2d_spatial(node, g):
            self.emit_nhwc(node, [self.need_twin(node.inputs[0])])
            return
        x = self.name(node.inputs[0]) if node.inputs else ""
        if op in _GLOBAL_POOLS and x in self.twin:
            self.emit_nhwc(node, [self.twin[x]])
            return
        if op == "Concat" and any(self.name(i) in self.twin for i in node.inputs if i) and \
                all(np.ndim(g.constants[i]) == 4 for i in node.inputs if i in g.constants):
            ins = [self.const(_nhwc_const(g.constants[i]), i + "@nhwc") if i in g.constants else
                   self.need_twin(self.name(i)) for i in node.inputs if i]
            self.emit_nhwc(node, ins, axis=_AXIS[node.attrs.axis % 4])
            return
        if op == "Pad" and x in self.twin and len(node.inputs) > 1 and node.inputs[1] in g.constants and \
                (len(node.inputs) < 4 or not node.inputs[3]) and \
                (len(node.inputs) < 3 or not node.inputs[2] or node.inputs[2] in g.constants):
            pads = np.asarray(g.constants[node.inputs[1]]).astype(np.int64).reshape(-1)
            if pads.size == 8:
                new = np.concatenate([pads[:4][TO_NHWC], pads[4:][TO_NHWC]])
                self.emit_nhwc(node, [self.twin[x], self.const(new, node.inputs[1] + "@nhwc")] + list(node.inputs[2:]))
                return
        if op in _REDUCES and x in self.twin and self.reduce(node, x):
            return
        if op in ("XPack", "XFloatConvPack") and x in self.twin:
            self.nodes.append(Node(op, [self.twin[x]] + list(node.inputs[1:]), list(node.outputs),
                                   in_nhwc(node.attrs), node.name, node.why))
            self.plain.update(node.outputs)
            return
        if op == "XBConv" and node.attrs.packed is None:  # float output: the kernel writes NHWC
            self.emit_nhwc(node, [self.need_plain(i) for i in node.inputs])
            return
        self.emit_plain(node)

    def reduce(self, node, x):
        g = self.g
        axes = node.attrs.axes
        from_input = len(node.inputs) > 1 and node.inputs[1]
        if from_input:
            if node.inputs[1] not in g.constants:
                return False
            axes = [int(a) for a in np.asarray(g.constants[node.inputs[1]]).reshape(-1)]
        if not axes:
            return False
        axes = sorted({int(a) % 4 for a in axes})
        keep = node.attrs.keepdims
        new_axes = sorted(_AXIS[a] for a in axes)
        if not keep:  # the remaining axes must come out in NCHW order
            rest = [a for a in range(4) if a not in axes]
            if [a for a in TO_NHWC if a in rest] != rest:
                return False
        changes = {} if from_input else {"axes": tuple(new_axes)}
        ins = [self.twin[x]] + ([self.const(np.array(new_axes, np.int64), node.inputs[1] + "@nhwc")]
                                if from_input else []) + list(node.inputs[2:])
        if keep:
            self.emit_nhwc(node, ins, **changes)
        else:
            self.nodes.append(Node(node.op, ins, list(node.outputs), node.attrs.replace(**changes), node.name, node.why))
            self.plain.update(node.outputs)
        return True

    def run(self):
        self.outputs = set(self.g.output_names())
        for node in self.g.nodes:
            self.rewrite(node)
        for v in self.g.outputs:  # never aliased: produced under their own names
            self.need_plain(v.name)
        self.g.nodes = self.nodes
        return self.g


def to_nhwc(graph):
    return _Rewriter(graph).run()
