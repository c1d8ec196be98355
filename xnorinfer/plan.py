"""IR -> a list of executable steps.  Each step reads named values from the run's environment and
writes its outputs there; steps are built once (weights packed, thresholds computed), runs share
nothing mutable, so several threads may run one plan at once."""
from dataclasses import dataclass

import numpy as np

from .binary_ops import MAKERS
from .float_ops import OPS, PREPARED


_BLAS_OPS = {"Conv", "Gemm", "MatMul", "XFloatConvPack"}


@dataclass
class Step:
    node: object
    fn: object
    uses_blas: bool = False  # the step calls numpy's BLAS (a session then keeps BLAS single-threaded)


def _float_step(node, num_threads, constants):
    prepared = PREPARED.get(node.op)
    run = prepared(node, constants, num_threads) if prepared else None
    if run is not None:
        return Step(node, run, run.uses_blas)
    fn, attrs = OPS[node.op], dict(node.attrs, _threads=num_threads)  # float convs and pools thread in C

    def run(*args):
        return fn(list(args), attrs)
    return Step(node, run, node.op in _BLAS_OPS)


def build(graph, num_threads=None):
    steps = []
    for node in graph.nodes:
        if node.op in MAKERS:
            single = MAKERS[node.op](node, num_threads, graph.constants)
            steps.append(Step(node, lambda *args, _f=single: [_f(*args)], getattr(single, "uses_blas", False)))
        else:
            steps.append(_float_step(node, num_threads, graph.constants))
    return steps


def run_steps(steps, constants, feeds):
    """Run the steps; returns every value (constants, inputs, intermediates) by name."""
    env = dict(constants)
    env.update(feeds)
    for step in steps:
        outs = step.fn(*[env[n] if n else None for n in step.node.inputs])
        for name, value in zip(step.node.outputs, outs):
            if name:
                env[name] = value
    return env


def execute(steps, constants, feeds, wanted):
    env = run_steps(steps, constants, feeds)
    return [np.asarray(env[n]) for n in wanted]
