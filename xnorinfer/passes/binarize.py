"""Turn Conv/Gemm/MatMul nodes whose input and weights are both +-1 into binary layers.

A layer is binary when its input is a sign tensor (see signs.py) and its weights, per output channel,
are +-s (s > 0): BinaryNet's +-1 weights, XNOR-Net's sign(W) * mean(|W|), or a BatchNorm an exporter
folded into +-1 weights.  s becomes the scale of the fused output transform, the layer's bias its
bias: y = s * acc + b, with acc the exact integer +-1 dot product.

New ops (executed by binary_ops.py):
  XPack(source)       float NCHW / NC tensor -> packed bits of its sign tensor (attrs: minus, ternary)
  XBConv(packed)      binary Conv -> float NCHW y = s * acc + b
  XBDense(packed)     binary Gemm/MatMul on 2-D -> float y = s * acc + b
Nodes that stay float get a `why` when they looked like a candidate.
"""
import numpy as np

from ..ir import Node
from .signs import analyze


def per_channel_scale(w, axis):
    """s (per slice along axis) if every slice of w is +-s with s > 0, else None."""
    mags = np.abs(np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)).astype(np.float64)
    s = mags[:, :1]
    if mags.shape[1] == 0 or np.any(s <= 0) or not np.all(mags == s):
        return None
    return np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)[:, 0].__abs__().astype(np.float32)


def binary_weights(w_last_axis_inner, shape):
    """Binary weights as the layer keeps them: bits packed along the last axis (OHWI for a conv,
    rows for a dense layer), the per-channel magnitude s, and the model's original weight shape."""
    from ..kernels import pack
    return {"weight_bits": pack(w_last_axis_inner), "weight_scale": per_channel_scale(w_last_axis_inner, 0),
            "weight_shape": tuple(int(d) for d in shape)}


def _weights_reason(w, axis):
    if np.any(w == 0):
        return "its weights contain zeros (ternary), not +-s per output channel"
    return "its weights are not +-s per output channel (latent float weights?)"


def binarize(graph):
    g = graph.copy()
    info = analyze(g)
    new_nodes, packed_of = [], {}

    def packed(sign_value, node_name):
        """Name of the packed form of a sign tensor, adding its XPack node once (and, for a MaxPool
        of a sign tensor, the bit max-pool over the packed input)."""
        if sign_value in pooled_sign:
            pool = pooled_sign[sign_value]
            if sign_value not in packed_of:
                name = g.fresh_name(sign_value + "_packed")
                new_nodes.append(Node("XBMaxPool", [packed(pool.inputs[0], node_name)], [name], dict(pool.attrs),
                                      pool.name))
                packed_of[sign_value] = name
            return packed_of[sign_value]
        if sign_value not in packed_of:
            si = info[sign_value]
            name = g.fresh_name(sign_value + "_packed")
            new_nodes.append(Node("XPack", [si.source], [name],
                                  {"minus": si.minus, "ternary": si.ternary, "values": si.cases,
                                   "sign_value": sign_value}, f"pack({sign_value})"))
            packed_of[sign_value] = name
        return packed_of[sign_value]

    producers = g.producers()
    # MaxPool of a sign tensor whose value rises with its source is a sign tensor: the AND of the bits
    pooled_sign = {}
    for node in g.nodes:
        if node.op == "MaxPool" and node.inputs[0] in info and len(node.outputs) == 1 and \
                node.attrs.get("storage_order", 0) == 0:
            si = info[node.inputs[0]]
            if si.binary and si.cases[0] <= si.cases[1] <= si.cases[2]:
                info[node.outputs[0]] = si
                pooled_sign[node.outputs[0]] = node

    def flattened_sign(x, k):
        """A sign tensor seen through Flatten(axis=1) / Reshape(N, K): the dense layer reads the packed
        4-D tensor itself, as a convolution whose kernel covers the whole input."""
        node = producers.get(x)
        if node is None or node.op not in ("Flatten", "Reshape") or node.inputs[0] not in info:
            return None
        si = info[node.inputs[0]]
        if not (si.binary or si.ternary):
            return None
        if node.op == "Flatten" and node.attrs.get("axis", 1) != 1:
            return None
        if node.op == "Reshape":
            shape = g.constants.get(node.inputs[1])
            if shape is None:  # computed at run time (Shape -> Gather -> Concat): checked then
                return node.inputs[0], node.inputs[1]
            if len(shape) != 2 or int(shape[1]) not in (-1, k):
                return None
        return node.inputs[0], None

    def padded_sign(x):
        """(sign tensor, pad_value, (top, left, bottom, right)) for Pad(sign tensor) with a constant
        value that is +1 (Larq's pad_values=1) or 0 (zero padding) and spatial pads only."""
        node = producers.get(x)
        if node is None or node.op != "Pad" or node.inputs[0] not in info:
            return None
        si = info[node.inputs[0]]
        mode = node.attrs.get("mode", "constant")
        if not si.binary or mode != "constant" or len(node.inputs) < 2 or node.inputs[1] not in g.constants:
            return None
        if len(node.inputs) > 3 and node.inputs[3]:
            return None
        pads = [int(v) for v in g.constants[node.inputs[1]]]
        value = float(np.asarray(g.constants[node.inputs[2]]).reshape(-1)[0]) if len(node.inputs) > 2 and node.inputs[2] else 0.0
        if len(pads) != 8 or pads[0] or pads[1] or pads[4] or pads[5] or min(pads) < 0:
            return None
        plus = next(v for v, m in zip(si.cases, si.minus) if not m)
        if value == plus:
            pad_value = 1
        elif value == 0.0:
            pad_value = 0
        else:
            return None
        return node.inputs[0], pad_value, (pads[2], pads[3], pads[6], pads[7])

    for node in g.nodes:
        x = node.inputs[0] if node.inputs else None
        flatten, shape_input = False, None
        if node.op in ("Gemm", "MatMul") and x not in info and len(node.inputs) > 1 and node.inputs[1] in g.constants:
            w0 = g.constants[node.inputs[1]]
            k = w0.shape[1] if node.op == "Gemm" and node.attrs.get("transB", 0) else w0.shape[0]
            found = flattened_sign(x, k)
            if found is not None:
                (x, shape_input), flatten = found, True
        pad_value, extra_pads = 0, None
        if node.op == "Conv" and x not in info:
            padded = padded_sign(x)
            if padded is not None:
                x, pad_value, extra_pads = padded
        if node.op == "Shape" and x in info and info[x].binary and len(node.inputs) == 1:
            # the shape of a sign tensor from its packed form, so the float sign need not exist
            new_nodes.append(Node("XShape", [packed(x, node.name)], list(node.outputs), dict(node.attrs), node.name))
            continue
        sign_in = x in info and (info[x].binary or info[x].ternary)
        own_pads = any(node.attrs.get("pads", [0])) or node.attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID")
        if node.op == "Conv" and extra_pads is not None and pad_value == 1 and own_pads:
            node.why = "explicit +1 padding followed by the Conv's own zero padding"
        elif node.op == "Conv" and len(node.inputs) >= 2 and node.inputs[1] in g.constants:
            w = g.constants[node.inputs[1]]
            if not sign_in:
                node.why = "input is not a sign tensor"
            elif w.ndim != 4:
                node.why = "only 2-D convolutions are binarized"
            else:
                scale = per_channel_scale(w, 0)
                if scale is None:
                    node.why = _weights_reason(w, 0)
                else:
                    scale = (scale * np.float32(info[x].magnitude)).astype(np.float32)
                    bias = g.constants.get(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
                    if len(node.inputs) > 2 and node.inputs[2] and bias is None:
                        node.why = "its bias is not a constant"
                    else:
                        conv = dict(node.attrs)
                        if extra_pads is not None:  # an explicit Pad in front: merge its pads
                            own = conv.get("pads", [0, 0, 0, 0])
                            conv["pads"] = [own[0] + extra_pads[0], own[1] + extra_pads[1],
                                            own[2] + extra_pads[2], own[3] + extra_pads[3]]
                            conv["_explicit_pad"] = (extra_pads, pad_value)
                        new_nodes.append(Node("XBConv", [packed(x, node.name)], list(node.outputs), {
                            **binary_weights(np.ascontiguousarray(w.transpose(0, 2, 3, 1)), w.shape),
                            "scale": scale, "bias": bias, "conv": conv, "pad_value": pad_value,
                            "sign_value": x, "k": int(np.prod(w.shape[1:]))}, node.name))
                        continue
        elif node.op in ("Gemm", "MatMul") and len(node.inputs) >= 2 and node.inputs[1] in g.constants:
            w = g.constants[node.inputs[1]]
            attrs = node.attrs
            if node.op == "Gemm" and attrs.get("transA", 0):
                node.why = "transposed input (transA) is not supported in binary form"
            elif not sign_in:
                node.why = "input is not a sign tensor"
            elif w.ndim != 2:
                node.why = "only 2-D weight matrices are binarized"
            else:
                w_nk = w if (node.op == "Gemm" and attrs.get("transB", 0)) else w.T  # (N, K)
                alpha = float(attrs.get("alpha", 1.0)) if node.op == "Gemm" else 1.0
                scale = per_channel_scale(w_nk, 0)
                c = None
                if node.op == "Gemm" and len(node.inputs) > 2 and node.inputs[2]:
                    c = g.constants.get(node.inputs[2])
                if scale is None:
                    node.why = _weights_reason(w_nk, 0)
                elif alpha <= 0:
                    node.why = "Gemm alpha <= 0"
                elif node.op == "Gemm" and len(node.inputs) > 2 and node.inputs[2] and c is None:
                    node.why = "its bias is not a constant"
                else:
                    bias = None
                    if c is not None:
                        beta = float(attrs.get("beta", 1.0))
                        bias = np.broadcast_to(c.astype(np.float32) * np.float32(beta), (w_nk.shape[0],)).copy()
                    scale = scale * np.float32(alpha) * np.float32(info[x].magnitude)
                    new_nodes.append(Node("XBDense", [packed(x, node.name)] + ([shape_input] if shape_input else []),
                                          list(node.outputs), {
                        **binary_weights(np.ascontiguousarray(w_nk), w_nk.shape), "scale": scale.astype(np.float32),
                        "bias": bias, "sign_value": x, "k": int(w_nk.shape[1]), "flatten": flatten}, node.name))
                    continue
        new_nodes.append(node)
    g.nodes = new_nodes
    return g
