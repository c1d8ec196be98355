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

from ..operators import evaluate


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

    @property
    def plus(self):
        """The positive value (bit 0)."""
        return next(v for v, m in zip(self.cases, self.minus) if not m)


def _clip_brackets_zero(graph, node):
    lo = graph.scalar(node.input(1)) if node.input(1) else node.attrs.min
    hi = graph.scalar(node.input(2)) if node.input(2) else node.attrs.max
    lo = -np.inf if lo is None and not node.input(1) else lo
    hi = np.inf if hi is None and not node.input(2) else hi
    return lo is not None and hi is not None and lo < 0 < hi


def _positive_scalar(graph, name):
    v = graph.scalar(name)
    return v is not None and v > 0


def sign_preserving_source(graph, name, producers):
    """The tensor whose sign equals `name`'s, looking through Clip(lo<0<hi), Identity and x*c (c > 0)."""
    while name in producers:
        node = producers[name]
        if node.op == "Identity" or (node.op == "Dropout" and len(node.inputs) == 1):
            name = node.inputs[0]
        elif node.op == "Clip" and _clip_brackets_zero(graph, node):
            name = node.inputs[0]
        elif node.op in ("Mul", "Div") and _positive_scalar(graph, node.inputs[1]):
            name = node.inputs[0]
        elif node.op == "Mul" and _positive_scalar(graph, node.inputs[0]):
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


def _source_of(graph, node, arg, info, producers):
    """(source, its three case values) that `node`'s dynamic input `arg` carries, or None."""
    if arg in info:
        return info[arg].source, np.array(info[arg].cases, np.float32)
    if node.op not in _SIGN_SOURCES:
        return None
    if node.op in _COMPARE:  # comparisons of the source with 0 only
        other = [n for n in node.inputs if n and n != arg]
        if not other or graph.scalar(other[0]) != 0.0:
            return None
    return sign_preserving_source(graph, arg, producers), _CASE_X


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
        found = _source_of(graph, node, arg, info, producers)
        if found is None:
            continue
        source, case_values = found
        args = [case_values if n == arg else (_first(graph.constants[n]) if n else None) for n in node.inputs]
        try:
            (out,) = evaluate(node, args)
        except Exception:  # an op we cannot evaluate on three values: not a sign chain
            continue
        out = np.broadcast_to(np.asarray(out, np.float32), (3,))
        if np.all(np.isfinite(out)):
            info[node.outputs[0]] = SignOf(source, tuple(float(v) for v in out))
    return info
