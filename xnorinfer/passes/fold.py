"""Constant folding (weight binarization written in the graph — Sign(W), mean(|W|) scales — becomes
constants) and dead-node elimination."""
import numpy as np

from ..errors import ModelError
from ..ir import Graph
from ..operators import evaluate

MAX_FOLDED_BYTES = 1 << 28  # a folded constant larger than this is a hostile or broken model


def fold_constants(graph: Graph) -> Graph:
    g = graph.copy()
    kept = []
    for node in g.nodes:
        if all(n in g.constants for n in node.inputs if n):
            try:
                values = evaluate(node, [g.constants[n] if n else None for n in node.inputs])
            except (ValueError, TypeError, IndexError, KeyError, MemoryError) as exc:
                raise ModelError(f"node {node.name!r} ({node.op}) fails on its constant inputs: {exc}") from None
            for name, value in zip(node.outputs, values):
                value = np.asarray(value)
                if value.nbytes > MAX_FOLDED_BYTES:
                    raise ModelError(f"node {node.name!r} ({node.op}) would create a {value.nbytes}-byte constant")
                g.constants[name] = value
            continue
        kept.append(node)
    g.nodes = kept
    return eliminate_dead_nodes(g)


def eliminate_dead_nodes(graph: Graph) -> Graph:
    needed = set(graph.output_names())
    kept = []
    for node in reversed(graph.nodes):
        if any(o in needed for o in node.outputs):
            kept.append(node)
            needed.update(n for n in node.inputs if n)
            for inner in node.carried_nodes():
                needed.update(n for n in inner.inputs if n)
    g = graph.copy()
    g.nodes = kept[::-1]
    g.constants = {k: v for k, v in g.constants.items() if k in needed}
    return g
