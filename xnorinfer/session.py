"""InferenceSession: onnxruntime's API over xnorinfer's import -> passes -> plan -> execute."""
import os
from dataclasses import dataclass

import numpy as np

from . import plan as planner
from .errors import ModelError
from .float_ops import OPS
from . import xnor_format
from .binary_ops import MAKERS, Packed
from .importers.onnx import import_onnx
from .importers.tflite import import_tflite, is_tflite
from .passes import eliminate_dead_nodes, fold_constants
from .passes.binarize import binarize
from .passes.fuse_sign import fold_affine, fuse_float_edges, fuse_signs
from .passes.layout import cancel_transposes
from .passes.nhwc import to_nhwc
from .passes.residual import fuse_residual_add
from .passes.validate import check_attributes

SUPPORTED_OPS = set(OPS)
_TYPE_NAMES = {np.dtype(np.float32): "tensor(float)", np.dtype(np.float64): "tensor(double)",
               np.dtype(np.int64): "tensor(int64)", np.dtype(np.int32): "tensor(int32)",
               np.dtype(np.float16): "tensor(float16)", np.dtype(np.uint8): "tensor(uint8)",
               np.dtype(np.int8): "tensor(int8)", np.dtype(np.bool_): "tensor(bool)"}


_controller = None


def _conv_macs(in_shape, conv, w_shape):
    """Multiply-accumulates of a 2-D convolution for an NCHW input shape ("" if unknown)."""
    if in_shape is None or len(in_shape) != 4:
        return ""
    from .float_ops import conv_pads
    kernel, strides = w_shape[2:], conv.get("strides", [1, 1])
    dilations = conv.get("dilations", [1, 1])
    top, bottom, left, right = conv_pads(in_shape, conv, kernel, strides, dilations)
    oh = (in_shape[2] + top + bottom - dilations[0] * (kernel[0] - 1) - 1) // strides[0] + 1
    ow = (in_shape[3] + left + right - dilations[1] * (kernel[1] - 1) - 1) // strides[1] + 1
    return f"{in_shape[0] * w_shape[0] * oh * ow * int(np.prod(w_shape[1:])):,}"


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


class InferenceSession:
    """Load a model (path or bytes), plan it onto binary kernels, run it like onnxruntime.

        sess = xnorinfer.InferenceSession("model.onnx")
        (logits,) = sess.run(None, {sess.get_inputs()[0].name: x})
    """

    def __init__(self, path_or_bytes, sess_options=None, providers=None, *, num_threads=None, binarize_layers=True,
                 executor=None):
        """executor: "auto" (default; XNORINFER_EXECUTOR overrides it): each run is one call into the C
        runtime when the C library is the backend and the model lowers to it (lower.py), else the Python
        executor; "c": the C runtime or an error saying why not; "python": the Python executor."""
        if isinstance(path_or_bytes, (str, os.PathLike)) and not os.path.exists(path_or_bytes):
            raise FileNotFoundError(f"no such model file: {path_or_bytes}")
        if xnor_format.is_xnor(path_or_bytes):  # already planned: no passes
            graph = check_attributes(xnor_format.load(path_or_bytes, SUPPORTED_OPS | set(MAKERS)))
        else:
            if is_tflite(path_or_bytes):  # Larq Compute Engine / TFLite flatbuffers
                graph = check_attributes(import_tflite(path_or_bytes, SUPPORTED_OPS))
            else:
                graph = check_attributes(import_onnx(path_or_bytes, SUPPORTED_OPS))
            graph = cancel_transposes(fold_constants(graph))
            if binarize_layers:
                graph = eliminate_dead_nodes(fuse_float_edges(fold_affine(fuse_signs(eliminate_dead_nodes(binarize(graph))))))
            graph = fuse_residual_add(to_nhwc(graph))
        self._graph = graph
        self._num_threads = num_threads
        try:
            self._steps = planner.build(graph, num_threads)
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
                from .runtime import Runner
                self._runner = Runner(graph, self._steps, num_threads)
            elif executor == "c":
                raise ModelError("executor='c' needs the C backend (the compiled library)")
        self._inputs = [NodeArg(v.name, list(v.shape) if v.shape is not None else None,
                                _TYPE_NAMES.get(v.dtype, str(v.dtype))) for v in graph.inputs]
        self._outputs = [NodeArg(v.name, list(v.shape) if v.shape is not None else None,
                                 _TYPE_NAMES.get(v.dtype, str(v.dtype))) for v in graph.outputs]

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
            return planner.execute(self._steps, self._graph.constants, feeds, wanted)
        # OpenBLAS's threads busy-wait after each call and would take the cores the binary kernels
        # are about to use: the float layers run single-threaded BLAS while a session runs.
        with _blas_controller().limit(limits=1, user_api="blas"):
            return planner.execute(self._steps, self._graph.constants, feeds, wanted)

    def program(self, batch=1):
        """The C runtime's program for the declared input shapes (free dimensions set to `batch`), or the
        reason (a string) why the model does not lower."""
        from .runtime import make_program
        shapes = {}
        for v in self._graph.inputs:
            if v.shape is None:
                return f"input {v.name!r} has no declared shape"
            shapes[v.name] = tuple(d if isinstance(d, int) and d > 0 else batch for d in v.shape)
        return make_program(self._graph, self._steps, shapes)

    def save(self, path, batch=1):
        """Write the planned graph, packed weights included, as a .xnor file (see xnor_format.py), with the
        C runtime's program for inputs of batch `batch` when the model lowers (else without; the reason
        is in self.program_note)."""
        prog = self.program(batch)
        self.program_note = prog if isinstance(prog, str) else None
        return xnor_format.save(self._graph, os.fspath(path), None if isinstance(prog, str) else prog)

    def _trace_shapes(self):
        """Output shapes of every value for one batch-1 run on zeros (free dimensions set to 1)."""
        feeds = {}
        for v in self._graph.inputs:
            if v.shape is None:
                return {}
            shape = [d if isinstance(d, int) and d > 0 else 1 for d in v.shape]
            feeds[v.name] = np.zeros(shape, v.dtype)
        try:
            env = planner.run_steps(self._steps, self._graph.constants, feeds)
        except Exception:  # a model whose shapes depend on real inputs: no MAC counts
            return {}
        return {name: v.shape if isinstance(v, Packed) else np.shape(v) for name, v in env.items()}

    def summary(self):
        """A table of the plan: each layer, binary or float, its multiply-accumulates for one input
        (batch 1), weight bytes packed / float, and why a candidate stayed float."""
        shapes = self._trace_shapes()

        def macs(node, per_output):
            shape = shapes.get(node.outputs[0])
            return f"{int(np.prod(shape)) * per_output:,}" if shape is not None and per_output else ""

        rows = [("layer", "op", "kind", "MACs", "weights packed/float (bytes)", "note")]
        for node in self._graph.nodes:
            if node.op in ("XBConv", "XBDense"):
                shape = node.attrs["weight_shape"]
                size, fused = int(np.prod(shape)), node.attrs.get("packed")
                note = node.why or ("sign fused: packed output" + (" + bit max-pool" if fused["pool"] else "")
                                    if fused else "float output" + (" + shortcut add" if node.attrs.get("residual")
                                                                    else ""))
                per, count = int(np.prod(shape[1:])), macs(node, int(np.prod(shape[1:])))
                if fused and fused["pool"]:  # the traced output is pooled: count the conv's own outputs
                    count = _conv_macs(shapes.get(node.inputs[0]), node.attrs["conv"], shape)
                rows.append((node.name, node.op[2:].lower(), "binary", count, f"{(size + 7) // 8}/{size * 4}", note))
            elif node.op == "XPack":
                rows.append((node.name, "pack", "edge", "", "", "float -> bits"))
            elif node.op == "XFloatConvPack":
                w = node.attrs["weights"]
                rows.append((node.name, "conv", "float", macs(node, int(np.prod(w.shape[1:]))), f"-/{w.size * 4}",
                             "first layer: NHWC conv + sign packed"))
            elif node.op in ("Conv", "Gemm", "MatMul"):
                w = self._graph.constants.get(node.inputs[1]) if len(node.inputs) > 1 else None
                per = int(np.prod(w.shape[1:])) if w is not None and node.op == "Conv" else (
                    w.shape[0] if w is not None and not node.attrs.get("transB", 0) else w.shape[1] if w is not None else 0)
                size = f"-/{w.size * 4}" if w is not None else ""
                rows.append((node.name, node.op.lower(), "float", macs(node, per), size, node.why))
        widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
        table = "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
        if self._runner is None:
            return table + "\nexecutor: Python (one call per layer)"
        prog = self.program()
        if isinstance(prog, str):
            return table + f"\nexecutor: Python (one call per layer); the C runtime cannot run it: {prog}"
        return table + f"\nexecutor: C runtime, one call per run ({len(prog.steps)} steps)"
