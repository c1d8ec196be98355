"""InferenceSession: onnxruntime's API over xnorinfer's import -> passes -> plan -> execute."""
import os
from dataclasses import dataclass

import numpy as np

from . import executor as python_executor
from . import importers
from .errors import ModelError
from .operators import Packed
from .passes import pipeline

_TYPE_NAMES = {np.dtype(np.float32): "tensor(float)", np.dtype(np.float64): "tensor(double)",
               np.dtype(np.int64): "tensor(int64)", np.dtype(np.int32): "tensor(int32)",
               np.dtype(np.float16): "tensor(float16)", np.dtype(np.uint8): "tensor(uint8)",
               np.dtype(np.int8): "tensor(int8)", np.dtype(np.bool_): "tensor(bool)"}


_controller = None


def _blas_controller():
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController
        _controller = ThreadpoolController()
    return _controller


@dataclass
class NodeArg:
    """Like onnxruntime.NodeArg: name, shape (ints, or str/None for free dimensions), type string."""
    name: str
    shape: list
    type: str


def _node_arg(v):
    return NodeArg(v.name, list(v.shape) if v.shape is not None else None, _TYPE_NAMES.get(v.dtype, str(v.dtype)))


class InferenceSession:
    """Load a model (path or bytes), plan it onto binary kernels, run it like onnxruntime.

        sess = xnorinfer.InferenceSession("model.onnx")
        (logits,) = sess.run(None, {sess.get_inputs()[0].name: x})
    """

    def __init__(self, path_or_bytes, sess_options=None, providers=None, *, num_threads=None, binarize_layers=True,
                 executor=None):
        """executor: "auto" (default; XNORINFER_EXECUTOR overrides it): each run is one call into the C
        runtime when the C library is the backend and the model lowers to it (runtime/lower.py), else the
        Python executor; "c": the C runtime or an error saying why not; "python": the Python executor."""
        graph, planned = importers.load(path_or_bytes)
        graph = pipeline.check_planned(graph) if planned else pipeline.plan(graph, binarize=binarize_layers)
        self._graph = graph
        self._num_threads = num_threads
        try:
            self._steps = python_executor.build(graph, num_threads)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise ModelError(f"cannot plan the model: {type(exc).__name__}: {exc}") from None
        self._uses_blas = any(step.uses_blas for step in self._steps)
        self._output_names = graph.output_names()
        executor = (executor or os.environ.get("XNORINFER_EXECUTOR", "") or "auto").lower()
        if executor not in ("auto", "c", "python"):
            raise ValueError(f"executor must be 'auto', 'c' or 'python', got {executor!r}")
        self._executor, self._runner, self.last_executor = executor, None, None
        if executor != "python":
            from .kernels import get_backend
            if get_backend().name == "c":
                from .runtime.cmodel import Runner
                self._runner = Runner(graph, self._steps, num_threads)
            elif executor == "c":
                raise ModelError("executor='c' needs the C backend (the compiled library)")
        self._inputs = [_node_arg(v) for v in graph.inputs]
        self._outputs = [_node_arg(v) for v in graph.outputs]

    def get_inputs(self):
        return list(self._inputs)

    def get_outputs(self):
        return list(self._outputs)

    def _check_feed(self, input_feed):
        if not isinstance(input_feed, dict):
            raise TypeError("input_feed must be a dict {input name: numpy array}")
        expected = {v.name: v for v in self._graph.inputs}
        missing = [n for n in expected if n not in input_feed]
        unknown = [n for n in input_feed if n not in expected]
        if missing or unknown:
            raise ValueError(f"inputs: missing {missing}, unknown {unknown}; the model takes {list(expected)}")
        feeds = {}
        for name, value in input_feed.items():
            info = expected[name]
            arr = np.asarray(value)
            if arr.dtype != info.dtype:
                if not np.can_cast(arr.dtype, info.dtype, "same_kind"):
                    raise TypeError(f"input {name!r}: expected {info.dtype}, got {arr.dtype}")
                arr = arr.astype(info.dtype)
            if info.shape is not None:
                if arr.ndim != len(info.shape):
                    raise ValueError(f"input {name!r}: expected rank {len(info.shape)} {info.shape}, got shape {arr.shape}")
                for i, (want, got) in enumerate(zip(info.shape, arr.shape)):
                    if isinstance(want, int) and want > 0 and want != got:
                        raise ValueError(f"input {name!r}: dimension {i} must be {want}, got shape {arr.shape}")
            feeds[name] = np.ascontiguousarray(arr)
        return feeds

    def run(self, output_names, input_feed, run_options=None):
        feeds = self._check_feed(input_feed)
        names = self._output_names
        wanted = output_names or names
        bad = [n for n in wanted if n not in names]
        if bad:
            raise ValueError(f"unknown outputs {bad}; the model's outputs are {sorted(names)}")
        if self._runner is not None:
            outs = self._runner.run(feeds)
            if outs is not None:
                self.last_executor = "c"
                if wanted is names:
                    return outs
                by_name = dict(zip(names, outs))
                return [by_name[n] for n in wanted]
            if self._executor == "c":
                reason = self._runner.reason({n: a.shape for n, a in feeds.items()}) or "this input needs the float graph"
                raise ModelError(f"the C runtime cannot run this model: {reason}")
        self.last_executor = "python"
        if not self._uses_blas:
            return python_executor.execute(self._steps, self._graph.constants, feeds, wanted)
        # OpenBLAS's threads busy-wait after each call and would take the cores the binary kernels
        # are about to use: the float layers run single-threaded BLAS while a session runs.
        with _blas_controller().limit(limits=1, user_api="blas"):
            return python_executor.execute(self._steps, self._graph.constants, feeds, wanted)

    def program(self, batch=1):
        """The C runtime's program for the declared input shapes (free dimensions set to `batch`), or the
        reason (a string) why the model does not lower."""
        from .runtime.cmodel import make_program
        shapes = {}
        for v in self._graph.inputs:
            if v.shape is None:
                return f"input {v.name!r} has no declared shape"
            shapes[v.name] = tuple(d if isinstance(d, int) and d > 0 else batch for d in v.shape)
        return make_program(self._graph, self._steps, shapes)

    def save(self, path, batch=1):
        """Write the planned graph, packed weights included, as a .xnor file (importers/xnor.py), with the
        C runtime's program for inputs of batch `batch` when the model lowers (else without; the reason
        is in self.program_note)."""
        prog = self.program(batch)
        self.program_note = prog if isinstance(prog, str) else None
        return importers.xnor.save(self._graph, os.fspath(path), None if isinstance(prog, str) else prog)

    def _trace_shapes(self):
        """Output shapes of every value for one batch-1 run on zeros (free dimensions set to 1)."""
        feeds = {}
        for v in self._graph.inputs:
            if v.shape is None:
                return {}
            shape = [d if isinstance(d, int) and d > 0 else 1 for d in v.shape]
            feeds[v.name] = np.zeros(shape, v.dtype)
        try:
            env = python_executor.run_steps(self._steps, self._graph.constants, feeds)
        except Exception:  # a model whose shapes depend on real inputs: no MAC counts
            return {}
        return {name: v.shape if isinstance(v, Packed) else np.shape(v) for name, v in env.items()}

    def summary(self):
        """A table of the plan: each layer, binary or float, its multiply-accumulates for one input
        (batch 1), weight bytes packed / float, and why a candidate stayed float."""
        shapes = self._trace_shapes()
        rows = [("layer", "op", "kind", "MACs", "weights packed/float (bytes)", "note")]
        rows += [row for row in (_summary_row(node, shapes, self._graph) for node in self._graph.nodes) if row]
        widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
        table = "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
        if self._runner is None:
            return table + "\nexecutor: Python (one call per layer)"
        prog = self.program()
        if isinstance(prog, str):
            return table + f"\nexecutor: Python (one call per layer); the C runtime cannot run it: {prog}"
        return table + f"\nexecutor: C runtime, one call per run ({len(prog.steps)} steps)"


def _macs(shapes, node, per_output):
    shape = shapes.get(node.outputs[0])
    return f"{int(np.prod(shape)) * per_output:,}" if shape is not None and per_output else ""


def _conv_macs(in_shape, conv, w_shape):
    """Multiply-accumulates of a 2-D convolution for an NCHW input shape ("" if unknown)."""
    if in_shape is None or len(in_shape) != 4:
        return ""
    oh, ow = conv.window(in_shape[2:], w_shape[2:]).out_hw
    return f"{in_shape[0] * w_shape[0] * oh * ow * int(np.prod(w_shape[1:])):,}"


def _binary_row(node, shapes):
    a = node.attrs
    size, per = int(np.prod(a.weight_shape)), int(np.prod(a.weight_shape[1:]))
    fused = a.packed
    if fused is not None:
        note = "sign fused: packed output" + (" + bit max-pool" if fused.pool is not None else "")
    else:
        note = "float output" + (" + shortcut add" if getattr(a, "residual", False) else "")
    count = _macs(shapes, node, per)
    if fused is not None and fused.pool is not None:  # the traced output is pooled: count the conv's own outputs
        count = _conv_macs(shapes.get(node.inputs[0]), a.conv, a.weight_shape)
    return (node.name, node.op[2:].lower(), "binary", count, f"{(size + 7) // 8}/{size * 4}", node.why or note)


def _summary_row(node, shapes, graph):
    """The summary's row for a node (None: not a layer)."""
    if node.op in ("XBConv", "XBDense"):
        return _binary_row(node, shapes)
    if node.op == "XPack":
        return (node.name, "pack", "edge", "", "", "float -> bits")
    if node.op == "XFloatConvPack":
        w = node.attrs.weights
        return (node.name, "conv", "float", _macs(shapes, node, int(np.prod(w.shape[1:]))), f"-/{w.size * 4}",
                "first layer: NHWC conv + sign packed")
    if node.op in ("Conv", "Gemm", "MatMul"):
        w = graph.constant(node.input(1))
        if w is None:
            per = 0
        elif node.op == "Conv":
            per = int(np.prod(w.shape[1:]))
        else:
            per = w.shape[1] if node.op == "Gemm" and node.attrs.transB else w.shape[0]
        size = f"-/{w.size * 4}" if w is not None else ""
        return (node.name, node.op.lower(), "float", _macs(shapes, node, per), size, node.why)
    return None
