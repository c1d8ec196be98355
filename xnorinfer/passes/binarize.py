"""Turn Conv/Gemm/MatMul nodes whose input and weights are both +-1 into binary layers.

A layer is binary when its input is a sign tensor (see signs.py) and its weights, per output channel,
are +-s (s > 0): BinaryNet's +-1 weights, XNOR-Net's sign(W) * mean(|W|), or a BatchNorm an exporter
folded into +-1 weights.  s becomes the scale of the fused output transform, the layer's bias its
bias: y = s * acc + b, with acc the exact integer +-1 dot product.

New ops (operators/binary.py):
  XPack(source)       float NCHW / NC tensor -> packed bits of its sign tensor
  XBConv(packed)      binary Conv -> float NCHW y = s * acc + b
  XBDense(packed)     binary Gemm/MatMul on 2-D -> float y = s * acc + b
  XBMaxPool(packed)   MaxPool of a sign tensor -> its packed bits
  XShape(packed)      Shape of a sign tensor
Nodes that stay float get a `why` when they looked like a candidate.
"""
import numpy as np

from ..ir import Node
from ..kernels import pack
from ..operators.binary import SignAttrs, XBConvAttrs, XBDenseAttrs
from .signs import analyze


def per_channel_scale(w, axis):
    """s (per slice along axis) if every slice of w is +-s with s > 0, else None."""
    mags = np.abs(np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)).astype(np.float64)
    s = mags[:, :1]
    if mags.shape[1] == 0 or np.any(s <= 0) or not np.all(mags == s):
        return None
    return np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)[:, 0].__abs__().astype(np.float32)


def _weights_reason(w):
    if np.any(w == 0):
        return "its weights contain zeros (ternary), not +-s per output channel"
    return "its weights are not +-s per output channel (latent float weights?)"


def pooled_signs(graph, info):
    """MaxPool of a sign tensor whose value rises with its source is a sign tensor (the AND of the
    bits): adds them to `info`; returns {pooled value: its MaxPool node}."""
    pooled = {}
    for node in graph.nodes:
        if node.op == "MaxPool" and node.inputs[0] in info and len(node.outputs) == 1 and \
                node.attrs.storage_order == 0:
            si = info[node.inputs[0]]
            if si.binary and si.cases[0] <= si.cases[1] <= si.cases[2]:
                info[node.outputs[0]] = si
                pooled[node.outputs[0]] = node
    return pooled


class _Binarizer:
    def __init__(self, graph):
        self.g, self.info = graph, analyze(graph)
        self.pooled = pooled_signs(graph, self.info)
        self.producers = graph.producers()
        self.nodes, self.packed_of = [], {}

    def packed(self, sign_value):
        """Name of the packed form of a sign tensor, adding its XPack node once (and, for a MaxPool
        of a sign tensor, the bit max-pool over the packed input)."""
        if sign_value not in self.packed_of:
            name = self.g.fresh_name(sign_value + "_packed")
            pool = self.pooled.get(sign_value)
            if pool is not None:
                node = Node("XBMaxPool", [self.packed(pool.inputs[0])], [name], pool.attrs, pool.name)
            else:
                si = self.info[sign_value]
                node = Node("XPack", [si.source], [name], SignAttrs(si.minus, si.ternary, si.cases),
                            f"pack({sign_value})")
            self.nodes.append(node)
            self.packed_of[sign_value] = name
        return self.packed_of[sign_value]

    def sign_input(self, x):
        return x in self.info and (self.info[x].binary or self.info[x].ternary)

    def flattened_sign(self, x, k):
        """(sign tensor, run-time Reshape target or None) for a sign tensor seen through Flatten(axis=1)
        / Reshape(N, K): the dense layer reads the packed 4-D tensor itself, as a convolution whose
        kernel covers the whole input."""
        node = self.producers.get(x)
        if node is None or node.op not in ("Flatten", "Reshape") or not self.sign_input(node.inputs[0]):
            return None
        if node.op == "Flatten":
            return (node.inputs[0], None) if node.attrs.axis == 1 else None
        target = self.g.constant(node.inputs[1])
        if target is None:  # computed at run time (Shape -> Gather -> Concat): checked then
            return node.inputs[0], node.inputs[1]
        return (node.inputs[0], None) if len(target) == 2 and int(target[1]) in (-1, k) else None

    def padded_sign(self, x):
        """(sign tensor, pad_value, ONNX pads (top, left, bottom, right)) for Pad(sign tensor) with a
        constant value that is +1 (Larq's pad_values=1) or 0 (zero padding) and spatial pads only."""
        node = self.producers.get(x)
        if node is None or node.op != "Pad" or node.inputs[0] not in self.info:
            return None
        si = self.info[node.inputs[0]]
        pads = self.g.constant(node.input(1))
        if not si.binary or node.attrs.mode != "constant" or pads is None or node.input(3):
            return None
        pads = [int(v) for v in pads]
        value = self.g.scalar(node.input(2)) if node.input(2) else 0.0
        if len(pads) != 8 or pads[0] or pads[1] or pads[4] or pads[5] or min(pads) < 0:
            return None
        if value not in (si.plus, 0.0):
            return None
        return node.inputs[0], 1 if value == si.plus else 0, (pads[2], pads[3], pads[6], pads[7])

    def refusal(self, node, x, w, rows, what):
        """Why a layer with input x, weights w (`rows`: as (output units, K)) and its bias stays float,
        or None: the reasons a Conv and a Gemm / MatMul share."""
        if not self.sign_input(x):
            return "input is not a sign tensor"
        if rows is None:
            return f"only {what} are binarized"
        if per_channel_scale(rows, 0) is None:
            return _weights_reason(rows)
        bias = self.g.constant(node.input(2))
        if node.input(2) and bias is None:
            return "its bias is not a constant"
        if bias is not None and not (bias.size in (1, rows.shape[0]) and
                                     (bias.ndim <= 1 or bias.ndim == 2 and bias.shape[0] == 1)):
            return "its bias is not one value per output channel"
        return None

    def conv(self, node):
        """An XBConv for a Conv node, or None (its `why` then says why not)."""
        x, pad_value, extra = node.inputs[0], 0, None
        padded = self.padded_sign(x) if x not in self.info else None
        if padded is not None:
            x, pad_value, extra = padded
        w = self.g.constant(node.input(1))
        own_pads = any(node.attrs.begin_end_pads()) or node.attrs.auto_pad not in ("NOTSET", "VALID")
        if extra is not None and pad_value == 1 and own_pads:
            node.why = "explicit +1 padding followed by the Conv's own zero padding"
        elif w is None:
            return None
        elif (why := self.refusal(node, x, w, w if w.ndim == 4 else None, "2-D convolutions")) is not None:
            node.why = why
        else:
            conv = node.attrs
            if extra is not None:  # an explicit Pad in front: its pads join the Conv's
                conv = conv.replace(pads=tuple(own + e for own, e in zip(conv.begin_end_pads(), extra)))
            bias = self.g.constant(node.input(2))
            attrs = XBConvAttrs(
                weight_bits=pack(np.ascontiguousarray(w.transpose(0, 2, 3, 1))), weight_shape=tuple(w.shape),
                scale=(per_channel_scale(w, 0) * np.float32(self.info[x].magnitude)).astype(np.float32),
                bias=None if bias is None else np.asarray(bias, np.float32), k=int(np.prod(w.shape[1:])), conv=conv,
                pad_value=pad_value, explicit_pads=extra)
            return Node("XBConv", [self.packed(x)], list(node.outputs), attrs, node.name)
        return None

    def dense(self, node):
        """An XBDense for a Gemm / MatMul node, or None (its `why` then says why not)."""
        x, target = node.inputs[0], None
        w = self.g.constant(node.input(1))
        if w is None:
            return None
        gemm = node.op == "Gemm"
        if x not in self.info:
            k = w.shape[1] if gemm and node.attrs.transB else w.shape[0]
            x, target = self.flattened_sign(x, k) or (x, None)
        c = self.g.constant(node.input(2)) if gemm else None
        w_nk = (w if gemm and node.attrs.transB else w.T) if w.ndim == 2 else None  # (N, K)
        if gemm and node.attrs.transA:
            node.why = "transposed input (transA) is not supported in binary form"
        elif gemm and node.attrs.alpha <= 0:
            node.why = "Gemm alpha <= 0"
        elif (why := self.refusal(node, x, w, w_nk, "2-D weight matrices")) is not None:
            node.why = why
        else:
            alpha, beta = (node.attrs.alpha, node.attrs.beta) if gemm else (1.0, 1.0)
            bias = None if c is None else \
                np.broadcast_to(c.astype(np.float32) * np.float32(beta), (w_nk.shape[0],)).copy()
            scale = per_channel_scale(w_nk, 0) * np.float32(alpha) * np.float32(self.info[x].magnitude)
            attrs = XBDenseAttrs(weight_bits=pack(np.ascontiguousarray(w_nk)), weight_shape=tuple(w_nk.shape),
                                 scale=scale.astype(np.float32), bias=bias, k=int(w_nk.shape[1]))
            return Node("XBDense", [self.packed(x)] + ([target] if target else []), list(node.outputs), attrs,
                        node.name)
        return None

    def visit(self, node):
        x = node.inputs[0] if node.inputs else None
        if node.op == "Shape" and x in self.info and self.info[x].binary and len(node.inputs) == 1:
            # the shape of a sign tensor from its packed form, so the float sign need not exist
            return Node("XShape", [self.packed(x)], list(node.outputs), node.attrs, node.name)
        if node.op == "Conv":
            return self.conv(node) or node
        if node.op in ("Gemm", "MatMul"):
            return self.dense(node) or node
        return node


def binarize(graph):
    b = _Binarizer(graph.copy())
    for node in b.g.nodes:
        b.nodes.append(b.visit(node))
    b.g.nodes = b.nodes
    return b.g
