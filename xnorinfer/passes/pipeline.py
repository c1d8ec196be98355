"""The pass order, in one place: the session and `xnorinfer analyze` both run it.

    import -> check_arity -> check_attributes -> fold_constants -> cancel_transposes      (prepare)
           -> binarize -> fuse_signs -> fold_affine -> fuse_float_edges           (binarize, optional)
           -> to_nhwc -> fuse_residual_add                                         (layout)
"""
from .binarize import binarize
from .fold import eliminate_dead_nodes, fold_constants
from .fuse_sign import fold_affine, fuse_float_edges, fuse_signs
from .layout import cancel_transposes
from .nhwc import to_nhwc
from .residual import fuse_residual_add
from .validate import check_arity, check_attributes, check_value_kinds


def prepare(graph):
    """An imported graph, checked, with its constant subgraphs folded and tf2onnx's Transpose pairs gone."""
    return cancel_transposes(fold_constants(check_attributes(check_arity(graph))))


def binarize_layers(graph, fuse=True):
    """Binary layers, with the signs after them fused into their outputs where the bits stay exact
    (fuse=False: the binary layers and the XPack edges alone)."""
    graph = eliminate_dead_nodes(binarize(graph))
    if not fuse:
        return graph
    for fuse_pass in (fuse_signs, fold_affine, fuse_float_edges):
        graph = fuse_pass(graph)
    return eliminate_dead_nodes(graph)


def plan(graph, binarize=True):
    """The planned graph the executors run: every pass, in order (binarize=False keeps every layer as
    the file states it)."""
    graph = prepare(graph)
    if binarize:
        graph = binarize_layers(graph)
    return check_value_kinds(fuse_residual_add(to_nhwc(graph)))


def check_planned(graph):
    """A planned graph read from a file (.xnor): its attributes and its values' kinds checked."""
    return check_value_kinds(check_attributes(check_arity(graph)))
