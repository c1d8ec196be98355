"""The Python executor: a planned graph -> a list of steps, each the op's prepared function
(xnorinfer/operators/), run in order on numpy arrays.  Steps are built once (weights packed,
thresholds computed); runs share nothing mutable, so several threads may run one plan at once."""
from dataclasses import dataclass

import numpy as np

from .ir import Node
from .operators import OPS, Context


@dataclass
class Step:
    node: Node
    fn: object               # (*inputs) -> list of outputs
    uses_blas: bool = False  # the step calls numpy's BLAS (a session then keeps BLAS single-threaded)


def build(graph, num_threads=None):
    ctx = Context(num_threads, graph.constants)
    steps = []
    for node in graph.nodes:
        opdef = OPS[node.op]
        fn = opdef.prepare(node, ctx) if opdef.prepare else None
        if fn is not None:
            steps.append(Step(node, fn, getattr(fn, "uses_blas", False)))
        else:
            steps.append(Step(node, lambda *args, _run=opdef.run, _attrs=node.attrs: _run(list(args), _attrs, ctx),
                              opdef.uses_blas))
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
