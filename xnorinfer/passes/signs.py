"""Which tensors are +-1: a small abstract interpretation over sign cases.

Every sign-like tensor in an exported BNN is an elementwise function of ONE float tensor `source`
that depends only on whether source < 0, == 0 or > 0: torch.sign is Sign (cases -1, 0, +1),
`where(x >= 0, 1, -1)` is Where(GreaterOrEqual) (cases -1, +1, +1), Larq's ste_sign exports as
Sign(Add(Sign(x), 0.1)) (cases -1, +1, +1), and so on.  We track the triple of values for the three
cases through such chains; a tensor whose triple holds only -1 and +1 is binary, and which cases give
-1 decides how to pack it.  The triple (-1, 0, +1) is ternary: a true 0 appears where source == 0.

Sign-preserving ops in front of a sign (HardTanh/Clip with lo < 0 < hi, Identity, multiplication by
a positive constant) are looked through, so the source is the tensor they read.
"""
from dataclasses import dataclass

import numpy as np

from ..float_ops import OPS


@dataclass(frozen=True)
class SignOf:
    source: str
    cases: tuple  # float values for (source < 0, source == 0, source > 0)

    @property
    def binary(self):
        """Two values, -v and +v (v > 0): +-1, or Brevitas' scaled BipolarQuant."""
        values = set(self.cases)
        return len(values) == 2 and sum(values) == 0.0 and max(values) > 0

    @property
    def magnitude(self):
        return max(abs(v) for v in self.cases)

    @property
    def ternary(self):
        return self.cases == (-1.0, 0.0, 1.0)

    @property
    def minus(self):
        """Which cases give the negative value (bit 1): a tuple of three booleans."""
        return tuple(v < 0 for v in self.cases)


def _scalar(graph, name):
    if name in graph.constants and np.size(graph.constants[name]) == 1:
        return float(np.asarray(graph.constants[name]).reshape(-1)[0])
    return None


def sign_preserving_source(graph, name, producers):
    """The tensor whose sign equals `name`'s, looking through Clip(lo<0<hi), Identity and x*c (c > 0)."""
    while name in producers:
        node = producers[name]
        if node.op == "Identity" or (node.op == "Dropout" and len(node.inputs) == 1):
            name = node.inputs[0]
        elif node.op == "Clip":
            lo = _scalar(graph, node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] else node.attrs.get("min", -np.inf)
            hi = _scalar(graph, node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else node.attrs.get("max", np.inf)
            if lo is None or hi is None or not (lo < 0 < hi):
                break
            name = node.inputs[0]
        elif node.op in ("Mul", "Div") and _scalar(graph, node.inputs[1]) is not None and _scalar(graph, node.inputs[1]) > 0:
            name = node.inputs[0]
        elif node.op == "Mul" and _scalar(graph, node.inputs[0]) is not None and _scalar(graph, node.inputs[0]) > 0:
            name = node.inputs[1]
        else:
            break
    return name


def _uniform(c):
    c = np.asarray(c)
    return c.size >= 1 and np.all(c == c.reshape(-1)[0])


def _first(c):
    """A uniform constant as one value."""
    return np.asarray(c).reshape(-1)[:1]


_CASE_X = np.array([-1.0, 0.0, 1.0], np.float32)  # representatives of the three cases of the source
_COMPARE = {"GreaterOrEqual", "Greater", "Less", "LessOrEqual", "Equal"}
_ELEMENTWISE = {"Sign", "Neg", "Add", "Sub", "Mul", "Div", "Clip", "Abs", "Relu", "Identity", "Cast", "Where",
                "Not", "Tanh", "HardSigmoid", "BipolarQuant"} | _COMPARE
_SIGN_SOURCES = {"Sign", "Where", "BipolarQuant"} | _COMPARE


def analyze(graph):
    """Map value name -> SignOf for every tensor that is a function of one source's sign cases."""
    producers = graph.producers()
    info = {}
    for node in graph.nodes:
        if node.op not in _ELEMENTWISE or len(node.outputs) != 1:
            continue
        dynamic = [n for n in node.inputs if n and n not in graph.constants]
        if len(dynamic) != 1:
            continue
        (arg,) = dynamic
        if any(n in graph.constants and not _uniform(graph.constants[n]) for n in node.inputs if n):
            continue  # per-element constants make the value depend on position, not just on the case
        if arg in info:
            source, case_values = info[arg].source, np.array(info[arg].cases, np.float32)
        elif node.op in _SIGN_SOURCES:
            source, case_values = sign_preserving_source(graph, arg, producers), _CASE_X
            if node.op in _COMPARE:  # comparisons of the source with 0 only
                other = [n for n in node.inputs if n and n != arg]
                if not other or _scalar(graph, other[0]) != 0.0:
                    continue
        else:
            continue
        args = [case_values if n == arg else (_first(graph.constants[n]) if n else None)
                for n in node.inputs]
        try:
            (out,) = OPS[node.op](args, node.attrs)
        except Exception:  # an op we cannot evaluate on three values: not a sign chain
            continue
        out = np.broadcast_to(np.asarray(out, np.float32), (3,))
        if np.all(np.isfinite(out)):
            info[node.outputs[0]] = SignOf(source, tuple(float(v) for v in out))
    return info
