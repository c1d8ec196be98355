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

from ..ir import Node
from ..operators import evaluate
from ..operators.binary import FusedPool, PackedOutput, XFloatConvPackAttrs
from ..operators.elementwise import clip_bounds

_MONOTONE = {"BatchNormalization", "Mul", "Add", "Sub", "Div", "Relu", "Clip", "Identity", "MaxPool"}
MAX_EVALUATIONS = 60_000_000  # (2K+1) * channels float evaluations per fused layer


def per_channel_const(graph, name, channels, rank):
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
        return per_channel_const(graph, node.inputs[1], channels, rank)
    if node.op == "Clip":
        return all(not n or n in graph.constants for n in node.inputs[1:])
    if node.op == "MaxPool":
        return rank == 4 and len(node.outputs) == 1 and node.attrs.storage_order == 0
    return True


def _monotone_chain(g, consumers, outputs, value, channels, rank, pools):
    """The per-channel monotone ops that follow `value` one after another (each the only reader of the
    last; at most `pools` MaxPools), and the value they end at."""
    chain = []
    while value not in outputs and len(consumers.get(value, [])) == 1:
        nxt = consumers[value][0]
        if not _is_monotone(g, nxt, value, channels, rank) or \
                (nxt.op == "MaxPool" and sum(c.op == "MaxPool" for c in chain) >= pools):
            break
        chain.append(nxt)
        value = nxt.outputs[0]
    return chain, value


def _sign_packs(consumers, outputs, z):
    """The XPack nodes reading z, when they are all its readers and pack it the same way, else None."""
    packs = consumers.get(z, [])
    if z in outputs or not packs or any(p.op != "XPack" for p in packs):
        return None
    first = packs[0].attrs
    if any(p.attrs.minus != first.minus or p.attrs.ternary != first.ternary for p in packs):
        return None
    return packs


def _evaluate(chain, graph, values, rank):
    """Apply the chain's ops (MaxPool skipped) to values shaped (1, C, 1, n) / (n, C)."""
    out = values
    for node in chain:
        if node.op == "MaxPool":
            continue
        args = [out] + [graph.constants[n] if n else None for n in node.inputs[1:]]
        if rank == 2 and node.op in ("Mul", "Add", "Sub", "Div"):
            args[1] = np.asarray(args[1]).reshape(-1) if np.size(args[1]) > 1 else args[1]
        out = evaluate(node, args)[0]
    return out


def _step(bits):
    """(threshold index, flip) if bits (over acc = -K..K) is one step, else None."""
    changes = np.flatnonzero(bits[1:] != bits[:-1])
    if changes.size > 1:
        return None
    if changes.size == 0:
        return (len(bits), 0) if bits[0] else (0, 0)
    return (changes[0] + 1, 0) if bits[0] else (changes[0] + 1, 1)


def _thresholds(a, chain, g, rank, sign):
    """(thresholds, flip, fused pool, bit values) that give the sign's bits from the accumulator of a
    binary layer with attributes `a`, or a string saying why there are none."""
    channels, k = len(a.scale), a.k
    acc = np.arange(-k, k + 1, dtype=np.float32)
    y = acc[None, :] * a.scale[:, None]
    if a.bias is not None:
        y = y + a.bias[:, None]
    y = y.astype(np.float32)
    shaped = y.reshape(1, channels, 1, -1) if rank == 4 else np.ascontiguousarray(y.T)
    pool_at = next((i for i, n in enumerate(chain) if n.op == "MaxPool"), None)
    with np.errstate(all="ignore"):
        f = _evaluate(chain, g, shaped, rank)
        f = f.reshape(channels, -1) if rank == 4 else f.T
        before_pool = _evaluate(chain[:pool_at], g, shaped, rank) if pool_at is not None else None
    zero = f == 0
    if sign.ternary and np.any(zero):
        c = int(np.flatnonzero(zero.any(axis=1))[0])
        return f"its sign can be exactly 0 (channel {c}, acc {int(acc[zero[c]][0])}): sign kept in float"
    minus = (True, False, False) if sign.ternary else sign.minus
    bits = (f < 0) & minus[0] | zero & minus[1] | (f > 0) & minus[2]
    steps = [_step(b) for b in bits]
    if any(st is None for st in steps):
        return "the sign of its output is not a single step in the accumulator"
    thresholds = np.array([st[0] for st in steps], np.int64) - k
    flip = np.array([st[1] for st in steps], np.uint8)
    pool = None
    if pool_at is not None:
        before_pool = before_pool.reshape(channels, -1) if rank == 4 else before_pool.T
        or_mask = (flip.astype(bool) ^ (before_pool[:, -1] < before_pool[:, 0])).astype(np.uint8)
        pool = FusedPool(chain[pool_at].attrs, or_mask)
        flip = flip ^ or_mask
    values = (-1.0, 1.0) if sign.ternary else sign.bit_values
    return thresholds.astype(np.int32), flip, pool, values


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
    consumers, outputs = g.consumers(), set(g.output_names())
    replaced, removed = {}, set()
    for layer in [n for n in g.nodes if n.op in ("XBConv", "XBDense")]:
        a, rank = layer.attrs, 4 if layer.op == "XBConv" else 2
        chain, z = _monotone_chain(g, consumers, outputs, layer.outputs[0], len(a.scale), rank, pools=1)
        packs = _sign_packs(consumers, outputs, z)
        if packs is None:
            continue
        if (2 * a.k + 1) * len(a.scale) > MAX_EVALUATIONS:
            layer.why = "accumulator range too large to tabulate thresholds"
            continue
        found = _thresholds(a, chain, g, rank, packs[0].attrs)
        if isinstance(found, str):
            layer.why = found
            continue
        thresholds, flip, pool, values = found
        layer.attrs = a.replace(packed=PackedOutput(thresholds, flip, values, packs[0].attrs.values, chain,
                                                    layer.outputs[0], z, pool))
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
    consumers, outputs = g.consumers(), set(g.output_names())
    removed, replaced = set(), {}
    for conv in [n for n in g.nodes if n.op == "Conv"]:
        w = g.constant(conv.input(1))
        if w is None or any(i and i not in g.constants for i in conv.inputs[2:]) or w.ndim != 4:
            continue
        chain, z = _monotone_chain(g, consumers, outputs, conv.outputs[0], w.shape[0], 4, pools=0)
        packs = _sign_packs(consumers, outputs, z)
        if packs is None:
            continue
        name = g.fresh_name(z + "_nhwc_packed")
        attrs = XFloatConvPackAttrs(w, g.constant(conv.input(2)), conv.attrs, chain, packs[0].attrs)
        g.nodes[g.nodes.index(conv)] = Node("XFloatConvPack", [conv.inputs[0]], [name], attrs, conv.name)
        removed.update(id(n) for n in chain + packs)
        for p in packs:
            replaced[p.outputs[0]] = name
    return _rewire(g, removed, replaced)


def fold_affine(graph):
    """Per-channel Mul / Add / Sub by constants right after a binary layer with float output fold into
    its scale and bias (LCE's post-activation multiplier and bias arrive this way): one pass over the
    output instead of three.  With a unit scale and zero bias (the usual case) the float rounding is
    unchanged: acc * m + c is what Mul then Add computes."""
    g = graph.copy()
    consumers, outputs = g.consumers(), set(g.output_names())
    removed = set()
    for layer in [n for n in g.nodes if n.op in ("XBConv", "XBDense") and n.attrs.packed is None]:
        a = layer.attrs
        channels, rank = len(a.scale), 4 if layer.op == "XBConv" else 2
        z = layer.outputs[0]
        while z not in outputs and len(consumers.get(z, [])) == 1:
            nxt = consumers[z][0]
            identity = np.all(a.scale == 1) and (a.bias is None or not np.any(a.bias)) and a.acc_clamp is None
            if identity and nxt.op in ("Relu", "Clip") and nxt.inputs[0] == z and \
                    all(not i or i in g.constants for i in nxt.inputs[1:]):
                # an activation on the exact integer accumulator (LCE's fused ReLU): clamp it in the kernel
                lo, hi = clip_bounds(g, nxt)
                a = a.replace(acc_clamp=(int(np.ceil(lo)) if np.isfinite(lo) else -2**31,
                                         int(np.floor(hi)) if np.isfinite(hi) else 2**31 - 1))
            elif nxt.op in ("Mul", "Add", "Sub") and nxt.inputs[0] == z and \
                    per_channel_const(g, nxt.inputs[1], channels, rank):
                c = np.broadcast_to(np.asarray(g.constants[nxt.inputs[1]], np.float32).reshape(-1), (channels,))
                bias = a.bias if a.bias is not None else np.zeros(channels, np.float32)
                if nxt.op == "Mul":
                    a = a.replace(scale=(a.scale * c).astype(np.float32), bias=(bias * c).astype(np.float32))
                else:
                    a = a.replace(bias=(bias + c if nxt.op == "Add" else bias - c).astype(np.float32))
            else:
                break
            removed.add(id(nxt))
            z = nxt.outputs[0]
        layer.attrs = a
        layer.outputs = [z]  # the layer now produces the chain's last value itself
    return _rewire(g, removed, {})
