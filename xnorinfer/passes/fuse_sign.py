"""Fuse what follows a binary layer up to the next sign into the layer's packed output.

Pattern: XBConv/XBDense -> per-channel monotone ops (BatchNormalization, Mul/Add/Sub/Div by per-channel
constants, Relu, Clip, at most one MaxPool) -> z -> sign chain -> T (a binary sign tensor).  T is a
step function of the integer accumulator per channel, so the layer can emit T's bits directly:
bit = (acc < threshold) XOR flip.  Thresholds come from evaluating the model's own float32 ops on every
integer accumulator value, so the bits are those float evaluation gives, ties included; where a true
0 can come out of a Sign (f(acc) == 0 exactly for some acc), nothing is fused and the reason is kept.

A MaxPool inside the chain pools the bits: max commutes with monotone maps, and for channels where the
sign is an increasing function of the pooled value the pooled bit is the AND of the taps' bits, else
their OR (NOT AND NOT) -- BinaryNet's Conv -> MaxPool -> BN(gamma < 0) -> sign stays exact.
"""
import numpy as np

from ..float_ops import OPS
from ..ir import Node
from .signs import _scalar, analyze

_MONOTONE = {"BatchNormalization", "Mul", "Add", "Sub", "Div", "Relu", "Clip", "Identity", "MaxPool"}
_PRESERVING = {"Identity", "Clip", "Mul", "Div"}
MAX_EVALUATIONS = 60_000_000  # (2K+1) * channels float evaluations per fused layer


def _per_channel_const(graph, name, channels, rank):
    if name not in graph.constants:
        return False
    c = np.asarray(graph.constants[name])
    if c.size == 1:
        return True
    shape = [1] * rank
    shape[1] = channels
    try:
        return np.broadcast_shapes(c.shape, tuple(shape)) == tuple(shape) and c.ndim <= rank
    except ValueError:
        return False


def _is_monotone(graph, node, value, channels, rank):
    if node.op not in _MONOTONE or node.inputs[0] != value:
        return False
    if node.op == "BatchNormalization":
        return all(n in graph.constants for n in node.inputs[1:5]) and len(node.outputs) == 1
    if node.op in ("Mul", "Add", "Sub", "Div"):
        return _per_channel_const(graph, node.inputs[1], channels, rank)
    if node.op == "Clip":
        return all(not n or n in graph.constants for n in node.inputs[1:])
    if node.op == "MaxPool":
        return rank == 4 and len(node.outputs) == 1 and node.attrs.get("storage_order", 0) == 0
    return True


def _evaluate(chain, graph, values, rank):
    """Apply the chain's ops (MaxPool skipped) to values shaped (1, C, 1, n) / (n, C)."""
    out = values
    for node in chain:
        if node.op == "MaxPool":
            continue
        args = [out] + [graph.constants[n] if n else None for n in node.inputs[1:]]
        if rank == 2 and node.op in ("Mul", "Add", "Sub", "Div"):
            args[1] = np.asarray(args[1]).reshape(-1) if np.size(args[1]) > 1 else args[1]
        out = OPS[node.op](args, node.attrs)[0]
    return out


def _step(bits):
    """(threshold index, flip) if bits (over acc = -K..K) is one step, else None."""
    changes = np.flatnonzero(bits[1:] != bits[:-1])
    if changes.size > 1:
        return None
    if changes.size == 0:
        return (len(bits), 0) if bits[0] else (0, 0)
    return (changes[0] + 1, 0) if bits[0] else (changes[0] + 1, 1)


def _rewire(g, removed, replaced):
    """Drop the nodes a fusion absorbed and point their readers at the fused output."""
    g.nodes = [n for n in g.nodes if id(n) not in removed]
    for n in g.nodes:
        n.inputs = [replaced.get(i, i) for i in n.inputs]
    return g


def fuse_signs(graph):
    """Run after binarize (and dead-node elimination): a sign tensor read only by binary layers is an
    XPack of its source z; when z is a per-channel monotone function of a binary layer's accumulator,
    that layer emits the packed bits and the XPack disappears."""
    g = graph.copy()
    consumers = g.consumers()
    outputs = set(g.output_names())
    replaced, removed = {}, set()
    for layer in [n for n in g.nodes if n.op in ("XBConv", "XBDense")]:
        a = layer.attrs
        rank = 4 if layer.op == "XBConv" else 2
        channels = len(a["scale"])
        chain, z = [], layer.outputs[0]
        while z not in outputs and len(consumers.get(z, [])) == 1:
            nxt = consumers[z][0]
            if not _is_monotone(g, nxt, z, channels, rank) or (nxt.op == "MaxPool" and any(c.op == "MaxPool" for c in chain)):
                break
            chain.append(nxt)
            z = nxt.outputs[0]
        packs = consumers.get(z, [])
        if z in outputs or not packs or any(p.op != "XPack" for p in packs):
            continue
        minus, ternary, cases = packs[0].attrs["minus"], packs[0].attrs["ternary"], packs[0].attrs["values"]
        if any(p.attrs["minus"] != minus or p.attrs["ternary"] != ternary for p in packs):
            continue
        k = a["k"]
        if (2 * k + 1) * channels > MAX_EVALUATIONS:
            layer.why = "accumulator range too large to tabulate thresholds"
            continue
        acc = np.arange(-k, k + 1, dtype=np.float32)
        y = acc[None, :] * a["scale"][:, None]
        if a["bias"] is not None:
            y = y + a["bias"][:, None]
        y = y.astype(np.float32)
        shaped = y.reshape(1, channels, 1, -1) if rank == 4 else np.ascontiguousarray(y.T)
        pool_at = next((i for i, n in enumerate(chain) if n.op == "MaxPool"), None)
        with np.errstate(all="ignore"):
            f = _evaluate(chain, g, shaped, rank)
            f = f.reshape(channels, -1) if rank == 4 else f.T
            g1 = _evaluate(chain[:pool_at], g, shaped, rank) if pool_at is not None else None
        zero = f == 0
        if ternary and np.any(zero):
            c = int(np.flatnonzero(zero.any(axis=1))[0])
            layer.why = f"its sign can be exactly 0 (channel {c}, acc {int(acc[zero[c]][0])}): sign kept in float"
            continue
        if ternary:
            minus = (True, False, False)
        bits = (f < 0) & minus[0] | zero & minus[1] | (f > 0) & minus[2]
        steps = [_step(b) for b in bits]
        if any(st is None for st in steps):
            layer.why = "the sign of its output is not a single step in the accumulator"
            continue
        thresholds = np.array([st[0] for st in steps], np.int64) - k
        flip = np.array([st[1] for st in steps], np.uint8)
        pool = None
        if pool_at is not None:
            g1 = g1.reshape(channels, -1) if rank == 4 else g1.T
            or_mask = (flip.astype(bool) ^ (g1[:, -1] < g1[:, 0])).astype(np.uint8)
            pool = dict(chain[pool_at].attrs, or_mask=or_mask)
            flip = flip ^ or_mask
        bit1 = -1.0 if ternary else next(v for v, m in zip(cases, minus) if m)
        bit0 = 1.0 if ternary else next(v for v, m in zip(cases, minus) if not m)
        a.update(packed=dict(thresholds=thresholds.astype(np.int32), flip=flip, pool=pool, values=(bit1, bit0),
                             fallback=chain, float_output=layer.outputs[0], source=z, cases=cases))
        packed_name = g.fresh_name(z + "_sign_packed")
        layer.outputs = [packed_name]
        removed.update(id(n) for n in chain + packs)
        for p in packs:
            replaced[p.outputs[0]] = packed_name
    return _rewire(g, removed, replaced)


def fuse_float_edges(graph):
    """A float Conv (the real-valued first layer) -> per-channel ops -> sign read only by binary layers:
    computed in NHWC and packed directly (XFloatConvPack), saving the NCHW round trip.  The same float
    ops run in the same order, so the packed bits are those of the float path."""
    g = graph.copy()
    consumers = g.consumers()
    outputs = set(g.output_names())
    removed, replaced = set(), {}
    for conv in [n for n in g.nodes if n.op == "Conv"]:
        if len(conv.inputs) < 2 or conv.inputs[1] not in g.constants or any(
                i and i not in g.constants for i in conv.inputs[2:]):
            continue
        w = g.constants[conv.inputs[1]]
        if w.ndim != 4:
            continue
        channels = w.shape[0]
        chain, z = [], conv.outputs[0]
        while z not in outputs and len(consumers.get(z, [])) == 1:
            nxt = consumers[z][0]
            if nxt.op == "MaxPool" or not _is_monotone(g, nxt, z, channels, 4):
                break
            chain.append(nxt)
            z = nxt.outputs[0]
        packs = consumers.get(z, [])
        if z in outputs or not packs or any(p.op != "XPack" for p in packs):
            continue
        if any(p.attrs["minus"] != packs[0].attrs["minus"] or p.attrs["ternary"] != packs[0].attrs["ternary"]
               for p in packs):
            continue
        name = g.fresh_name(z + "_nhwc_packed")
        bias = g.constants[conv.inputs[2]] if len(conv.inputs) > 2 and conv.inputs[2] else None
        g.nodes[g.nodes.index(conv)] = type(conv)(
            "XFloatConvPack", [conv.inputs[0]], [name],
            {"weights": w, "bias": bias, "conv": dict(conv.attrs), "chain": chain, "pack": dict(packs[0].attrs)},
            conv.name)
        removed.update(id(n) for n in chain + packs)
        for p in packs:
            replaced[p.outputs[0]] = name
    return _rewire(g, removed, replaced)


def _clip_bounds(g, node):
    if node.op == "Relu":
        return 0.0, np.inf
    lo = node.inputs[1] if len(node.inputs) > 1 and node.inputs[1] else None
    hi = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] else None
    lo = float(np.asarray(g.constants[lo]).reshape(-1)[0]) if lo in g.constants else node.attrs.get("min", -np.inf)
    hi = float(np.asarray(g.constants[hi]).reshape(-1)[0]) if hi in g.constants else node.attrs.get("max", np.inf)
    return float(lo), float(hi)


def fold_affine(graph):
    """Per-channel Mul / Add / Sub by constants right after a binary layer with float output fold into
    its scale and bias (LCE's post-activation multiplier and bias arrive this way): one pass over the
    output instead of three.  With a unit scale and zero bias (the usual case) the float rounding is
    unchanged: acc * m + c is what Mul then Add computes."""
    g = graph.copy()
    consumers = g.consumers()
    outputs = set(g.output_names())
    removed = set()
    for layer in [n for n in g.nodes if n.op in ("XBConv", "XBDense") and "packed" not in n.attrs]:
        a = layer.attrs
        channels, rank = len(a["scale"]), 4 if layer.op == "XBConv" else 2
        z = layer.outputs[0]
        while z not in outputs and len(consumers.get(z, [])) == 1:
            nxt = consumers[z][0]
            identity = np.all(a["scale"] == 1) and (a["bias"] is None or not np.any(a["bias"])) and \
                a.get("acc_clamp") is None
            if identity and nxt.op in ("Relu", "Clip") and nxt.inputs[0] == z and \
                    all(not i or i in g.constants for i in nxt.inputs[1:]):
                # an activation on the exact integer accumulator (LCE's fused ReLU): clamp it in the kernel
                lo, hi = _clip_bounds(g, nxt)
                a["acc_clamp"] = (int(np.ceil(lo)) if np.isfinite(lo) else -2**31,
                                  int(np.floor(hi)) if np.isfinite(hi) else 2**31 - 1)
                removed.add(id(nxt))
                z = nxt.outputs[0]
                continue
            if nxt.op not in ("Mul", "Add", "Sub") or nxt.inputs[0] != z or \
                    not _per_channel_const(g, nxt.inputs[1], channels, rank):
                break
            c = np.broadcast_to(np.asarray(g.constants[nxt.inputs[1]], np.float32).reshape(-1), (channels,))
            bias = a["bias"] if a["bias"] is not None else np.zeros(channels, np.float32)
            if nxt.op == "Mul":
                a["scale"], a["bias"] = (a["scale"] * c).astype(np.float32), (bias * c).astype(np.float32)
            else:
                a["bias"] = (bias + c if nxt.op == "Add" else bias - c).astype(np.float32)
            removed.add(id(nxt))
            z = nxt.outputs[0]
        layer.outputs = [z]  # the layer now produces the chain's last value itself
    return _rewire(g, removed, {})
