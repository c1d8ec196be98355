"""The op registry: every op of the IR declared once, with its typed attributes, how the Python
executor runs it, and how it lowers to the C runtime's program.

    @register("Relu", lower=lower_relu)
    def relu(inputs, attrs, ctx):
        return [np.maximum(inputs[0], 0)]

run(inputs, attrs, ctx) -> outputs is the op's meaning on numpy arrays (the executor, constant folding
and the sign analysis all call it); prepare(node, ctx), when given, builds a step with per-node work
done once (weights laid out, thresholds) and returns its function, or None to fall back to run;
lower(lw, node, vals, out) emits the op's steps into a program (xnorinfer/runtime/lower.py) and raises
Unsupported when the runtime cannot run this form of it.
"""
from dataclasses import dataclass, field

from ..errors import ModelError
from ..ir import NoAttrs


@dataclass
class Context:
    """What a run or a prepared step may use besides its inputs."""
    num_threads: int = None          # kernel threads (None: the pool's size)
    constants: dict = field(default_factory=dict)


NO_CONTEXT = Context()


@dataclass(frozen=True)
class OpDef:
    name: str
    run: object
    attrs: type = NoAttrs
    prepare: object = None
    lower: object = None
    uses_blas: bool = False   # run() may call numpy's BLAS (the session then keeps BLAS single-threaded)
    packed_inputs: tuple = ()  # the inputs that are packed sign bits (operators.Packed); the others are arrays
    packed_output: object = None  # attrs -> whether the output is packed bits (None: never)
    inputs: tuple = (1, 1)    # (required, most) inputs: the first `required` may not be omitted; None: any number

    def packs(self, attrs):
        return self.packed_output is not None and bool(self.packed_output(attrs))


OPS = {}


def register(*names, attrs=NoAttrs, inputs=(1, 1), prepare=None, lower=None, uses_blas=False, packed_inputs=(),
             packed_output=None):
    def add(run):
        for name in names:
            if name in OPS:
                raise ValueError(f"op {name} is registered twice")
            OPS[name] = OpDef(name, run, attrs, prepare, lower, uses_blas, packed_inputs, packed_output, inputs)
        return run
    return add


def parse_attrs(op, raw, where, opset=13):
    """The typed attributes of an `op` node from its attribute mapping (ONNX's, a file's)."""
    cls = OPS[op].attrs
    from_onnx = getattr(cls, "from_onnx", None)
    return from_onnx(raw, where, opset) if from_onnx else cls.parse(raw, where)


def apply(op, inputs, attrs=None, opset=13, num_threads=None):
    """Run op `op` on numpy arrays (None for omitted inputs) with its attributes as ONNX states them
    (a dict): what the executor computes for such a node."""
    parsed = parse_attrs(op, dict(attrs or {}), op, opset)
    return OPS[op].run(list(inputs), parsed, Context(num_threads))


def evaluate(node, inputs, ctx=NO_CONTEXT):
    """The node's outputs for `inputs` (numpy arrays, None for omitted optional ones)."""
    try:
        return OPS[node.op].run(list(inputs), node.attrs, ctx)
    except KeyError:
        if node.op not in OPS:
            raise ModelError(f"node {node.name!r}: unknown op {node.op}") from None
        raise
