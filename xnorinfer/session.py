"""InferenceSession: onnxruntime's API over xnorinfer's import -> passes -> plan -> execute."""
import logging
import os
import weakref
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

from . import executor as python_executor
from . import importers
from .errors import ModelError
from .ir import Graph, ModelMeta, Node, ValueInfo
from .operators import Packed
from .options import PROVIDERS, SessionOptions, settings
from .passes import pipeline

__all__ = ["InferenceSession", "NodeArg", "ModelMetadata", "SessionOptions", "PROVIDERS"]

log = logging.getLogger("xnorinfer")

_TYPE_NAMES = {np.dtype(np.float32): "tensor(float)", np.dtype(np.float64): "tensor(double)",
               np.dtype(np.int64): "tensor(int64)", np.dtype(np.int32): "tensor(int32)",
               np.dtype(np.float16): "tensor(float16)", np.dtype(np.uint8): "tensor(uint8)",
               np.dtype(np.int8): "tensor(int8)", np.dtype(np.bool_): "tensor(bool)"}


ModelMetadata = ModelMeta   # onnxruntime's name for it

_controller = None


def _blas_controller() -> Any:
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController
        _controller = ThreadpoolController()
    return _controller


@dataclass
class NodeArg:
    """Like onnxruntime.NodeArg: name, shape (ints, or str/None for free dimensions), type string."""
    name: str
    shape: Optional[list]
    type: str


def _node_arg(v: ValueInfo) -> NodeArg:
    return NodeArg(v.name, list(v.shape) if v.shape is not None else None, _TYPE_NAMES.get(v.dtype, str(v.dtype)))


def _providers(providers: Optional[Sequence[Any]], provider_options: Optional[Sequence[Dict[str, Any]]]
               ) -> Tuple[List[str], Dict[str, Dict[str, str]]]:
    """The accepted providers and their options, as onnxruntime's get_providers / get_provider_options
    give them.  Unknown providers: a warning when an accepted one remains (onnxruntime's code often
    lists a GPU provider first), else a ValueError."""
    if providers is None:
        return list(PROVIDERS), {name: {} for name in PROVIDERS}
    if isinstance(providers, (str, bytes)) or not isinstance(providers, Sequence):
        raise TypeError("providers must be a list of provider names (or (name, options) pairs)")
    if provider_options is not None and len(provider_options) != len(providers):
        raise ValueError("provider_options must have one dict per provider")
    names, options, unknown = [], {}, []
    for i, p in enumerate(providers):
        name, opts = (p[0], dict(p[1])) if isinstance(p, tuple) and len(p) == 2 else (p, {})
        if provider_options is not None:
            opts.update(provider_options[i])
        if not isinstance(name, str):
            raise TypeError(f"provider {p!r} is not a name")
        if name in PROVIDERS:
            names.append(name)
            options[name] = {str(k): str(v) for k, v in opts.items()}
        else:
            unknown.append(name)
    if not names:
        raise ValueError(f"xnorinfer runs on the CPU: providers {unknown} are not available; "
                         f"use one of {list(PROVIDERS)}")
    if unknown:
        import warnings
        warnings.warn(f"providers {unknown} are not available in xnorinfer; running on {names}", RuntimeWarning,
                      stacklevel=3)
    return names, options


def _set_log_level(level: int) -> None:
    """log_severity_level as a level of the "xnorinfer" logger, with a stderr handler when the
    application configured none (so a verbose level shows, as it does in onnxruntime)."""
    log.setLevel(level)
    if level < logging.WARNING and not log.hasHandlers():
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)


class InferenceSession:
    """Load a model (path or bytes), plan it onto binary kernels, run it like onnxruntime.

        sess = xnorinfer.InferenceSession("model.onnx")
        (logits,) = sess.run(None, {sess.get_inputs()[0].name: x})

    sess_options: an xnorinfer.SessionOptions or onnxruntime.SessionOptions (options.py says which
    settings are honoured); providers: "CPUExecutionProvider" and/or "XnorinferExecutionProvider".
    Keywords of our own: num_threads (as intra_op_num_threads), binarize_layers=False (as
    graph_optimization_level=ORT_DISABLE_ALL), executor ("auto", "c", "python")."""

    def __init__(self, path_or_bytes: Union[str, "os.PathLike[str]", bytes], sess_options: Any = None,
                 providers: Optional[Sequence[Any]] = None, provider_options: Optional[Sequence[Dict[str, Any]]] = None,
                 *, num_threads: Optional[int] = None, binarize_layers: bool = True,
                 executor: Optional[str] = None) -> None:
        """executor: "auto" (default; XNORINFER_EXECUTOR overrides it): each run is one call into the C
        runtime when the C library is the backend and the model lowers to it (runtime/lower.py), else the
        Python executor; "c": the C runtime or an error saying why not; "python": the Python executor."""
        if num_threads is not None and (not isinstance(num_threads, int) or num_threads < 1):
            raise ValueError(f"num_threads must be an int >= 1, got {num_threads!r}")
        self._settings = opts = settings(sess_options, num_threads, binarize_layers)
        self._sess_options = sess_options if sess_options is not None else SessionOptions()
        self._providers, self._provider_options = _providers(providers, provider_options)
        if opts.log_level is not None:
            _set_log_level(opts.log_level)
        self._logid = f"[{opts.logid}] " if opts.logid else ""
        graph, planned = importers.load(path_or_bytes)
        if planned:
            if not opts.binarize:
                self._log(logging.WARNING, "the .xnor file is already planned: ORT_DISABLE_ALL has no effect")
            graph = pipeline.check_planned(graph)
        else:
            graph = pipeline.plan(graph, binarize=opts.binarize)
        self._graph = graph
        self._num_threads = opts.num_threads
        try:
            self._steps = python_executor.build(graph, opts.num_threads)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise ModelError(f"cannot plan the model: {type(exc).__name__}: {exc}") from None
        self._uses_blas = any(step.uses_blas for step in self._steps)
        self._output_names = graph.output_names()
        self._trace = None
        if opts.profiling:
            from .profiling import Trace
            self._trace = Trace(opts.profile_prefix, self._threads())
            self._finalizer = weakref.finalize(self, self._trace.write)   # written at exit if never ended
        executor = (executor or os.environ.get("XNORINFER_EXECUTOR", "") or "auto").lower()
        if executor not in ("auto", "c", "python"):
            raise ValueError(f"executor must be 'auto', 'c' or 'python', got {executor!r}")
        self._executor, self._runner = executor, None
        self.last_executor: Optional[str] = None    # "c" or "python": which executor ran the last run
        self._fallbacks_logged: set = set()
        if executor != "python":
            from .kernels import get_backend
            if get_backend().name == "c":
                from .runtime.cmodel import Runner
                self._runner = Runner(graph, self._steps, opts.num_threads, self._trace)
            elif executor == "c":
                raise ModelError("executor='c' needs the C backend (the compiled library)")
            else:
                self._log(logging.WARNING, "the C library is not the backend: the Python executor runs the model "
                                           "(one call per layer, Numba kernels)")
        else:
            self._log(logging.INFO, "executor='python': the Python executor runs the model")
        self._inputs = [_node_arg(v) for v in graph.inputs]
        self._outputs = [_node_arg(v) for v in graph.outputs]
        self._log_plan()

    def _log(self, level: int, message: str, *args: Any) -> None:
        log.log(level, self._logid + message, *args)

    def _log_plan(self) -> None:
        if not log.isEnabledFor(logging.INFO):
            return
        binary = [n for n in self._graph.nodes if n.op in ("XBConv", "XBDense")]
        self._log(logging.INFO, "planned %d binary layers, %d nodes in all", len(binary), len(self._graph.nodes))
        for node in self._graph.nodes:
            if node.why:
                self._log(logging.INFO, "layer %s (%s) stays float: %s", node.name, node.op, node.why)

    def _threads(self) -> int:
        if self._settings.num_threads:
            return self._settings.num_threads
        from .kernels import backend_info
        return int(backend_info().get("num_threads", 1))

    def get_inputs(self) -> List[NodeArg]:
        return list(self._inputs)

    def get_outputs(self) -> List[NodeArg]:
        return list(self._outputs)

    def get_overridable_initializers(self) -> List[NodeArg]:
        """onnxruntime lists initializers a run may override; xnorinfer plans constants into the layers
        (packed weights, thresholds), so there are none."""
        return []

    def get_modelmeta(self) -> ModelMeta:
        """producer_name, graph_name, domain, description, graph_description, version and
        custom_metadata_map (ONNX metadata_props, TFLite metadata), as onnxruntime's ModelMetadata."""
        return self._graph.meta

    def get_providers(self) -> List[str]:
        return list(self._providers)

    def get_provider_options(self) -> Dict[str, Dict[str, str]]:
        return {name: dict(opts) for name, opts in self._provider_options.items()}

    def get_session_options(self) -> Any:
        """The options the session was made with (an xnorinfer.SessionOptions with the defaults if none)."""
        return self._sess_options

    def get_profiling_start_time_ns(self) -> int:
        """When profiling started, in ns since the epoch (0 when profiling is off)."""
        return self._trace.start_ns if self._trace is not None else 0

    def end_profiling(self) -> str:
        """Stop profiling and write the trace (a JSON list of Chrome trace events, profiling.py) to
        <profile_file_prefix><date>_<time>.json; returns its path ("" when profiling is off, as
        onnxruntime returns)."""
        if self._trace is None:
            return ""
        trace, self._trace = self._trace, None
        if self._runner is not None:
            self._runner.trace = None
        self._finalizer.detach()
        if trace.dropped:
            self._log(logging.WARNING, "the profile kept its first %d steps; %d more were not recorded",
                      trace.kept, trace.dropped)
        return trace.write()

    def _check_feed(self, input_feed: Mapping[str, npt.ArrayLike]) -> Dict[str, np.ndarray]:
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

    def run(self, output_names: Optional[Sequence[str]], input_feed: Mapping[str, npt.ArrayLike],
            run_options: Any = None) -> List[np.ndarray]:
        """The outputs named (None: every output, in the model's order) for the inputs in input_feed."""
        feeds = self._check_feed(input_feed)
        names = self._output_names
        wanted = list(output_names) if output_names else names
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
            reason = self._runner.reason({n: a.shape for n, a in feeds.items()})
            if self._executor == "c":
                raise ModelError(f"the C runtime cannot run this model: {reason or 'this input needs the float graph'}")
            self._log_fallback(reason)
        self.last_executor = "python"
        if not self._uses_blas:
            return self._run_python(feeds, wanted)
        # OpenBLAS's threads busy-wait after each call and would take the cores the binary kernels
        # are about to use: the float layers run single-threaded BLAS while a session runs.
        with _blas_controller().limit(limits=1, user_api="blas"):
            return self._run_python(feeds, wanted)

    def _run_python(self, feeds: Dict[str, np.ndarray], wanted: List[str]) -> List[np.ndarray]:
        trace = self._trace
        if trace is None:
            return python_executor.execute(self._steps, self._graph.constants, feeds, wanted)
        from .profiling import run_python_steps
        env = run_python_steps(self._steps, self._graph.constants, feeds, trace, trace.begin_run())
        return [np.asarray(env[n]) for n in wanted]

    def _log_fallback(self, reason: Optional[str]) -> None:
        """The Python executor runs instead of the C runtime: a warning once per reason (the model does
        not lower), a debug message for an input the program cannot compute exactly."""
        key = reason or "input"
        if key in self._fallbacks_logged:
            return
        self._fallbacks_logged.add(key)
        if reason:
            self._log(logging.WARNING, "the C runtime cannot run this model (%s): the Python executor runs it, "
                                       "one call per layer", reason)
        else:
            self._log(logging.DEBUG, "an input the C program cannot compute exactly (an exact 0 at a sign): "
                                     "the Python executor runs it")

    def program(self, batch: int = 1) -> Any:
        """The C runtime's program for the declared input shapes (free dimensions set to `batch`), or the
        reason (a string) why the model does not lower."""
        from .runtime.cmodel import make_program
        shapes = {}
        for v in self._graph.inputs:
            if v.shape is None:
                return f"input {v.name!r} has no declared shape"
            shapes[v.name] = tuple(d if isinstance(d, int) and d > 0 else batch for d in v.shape)
        return make_program(self._graph, self._steps, shapes)

    def save(self, path: Union[str, "os.PathLike[str]"], batch: int = 1) -> int:
        """Write the planned graph, packed weights included, as a .xnor file (importers/xnor.py), with the
        C runtime's program for inputs of batch `batch` when the model lowers (else without; the reason
        is in self.program_note)."""
        prog = self.program(batch)
        self.program_note = prog if isinstance(prog, str) else None
        return importers.xnor.save(self._graph, os.fspath(path), None if isinstance(prog, str) else prog)

    def _trace_shapes(self) -> Dict[str, Tuple[int, ...]]:
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

    def summary(self) -> str:
        """A table of the plan: each layer, binary or float, its multiply-accumulates for one input
        (batch 1), weight bytes packed / float, and why a candidate stayed float."""
        shapes = self._trace_shapes()
        rows: List[Tuple[str, ...]] = [("layer", "op", "kind", "MACs", "weights packed/float (bytes)", "note")]
        rows += [row for row in (_summary_row(node, shapes, self._graph) for node in self._graph.nodes) if row]
        widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
        table = "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
        if self._runner is None:
            return table + "\nexecutor: Python (one call per layer)"
        prog = self.program()
        if isinstance(prog, str):
            return table + f"\nexecutor: Python (one call per layer); the C runtime cannot run it: {prog}"
        return table + f"\nexecutor: C runtime, one call per run ({len(prog.steps)} steps)"


def _macs(shapes: Dict[str, Tuple[int, ...]], node: Node, per_output: int) -> str:
    shape = shapes.get(node.outputs[0])
    return f"{int(np.prod(shape)) * per_output:,}" if shape is not None and per_output else ""


def _conv_macs(in_shape: Optional[Tuple[int, ...]], conv: Any, w_shape: Tuple[int, ...]) -> str:
    """Multiply-accumulates of a 2-D convolution for an NCHW input shape ("" if unknown)."""
    if in_shape is None or len(in_shape) != 4:
        return ""
    oh, ow = conv.window(in_shape[2:], w_shape[2:]).out_hw
    return f"{in_shape[0] * w_shape[0] * oh * ow * int(np.prod(w_shape[1:])):,}"


def _binary_row(node: Node, shapes: Dict[str, Tuple[int, ...]]) -> Tuple[str, ...]:
    a: Any = node.attrs   # XBConvAttrs or XBDenseAttrs
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


def _summary_row(node: Node, shapes: Dict[str, Tuple[int, ...]], graph: Graph) -> Optional[Tuple[str, ...]]:
    """The summary's row for a node (None: not a layer)."""
    if node.op in ("XBConv", "XBDense"):
        return _binary_row(node, shapes)
    if node.op == "XPack":
        return (node.name, "pack", "edge", "", "", "float -> bits")
    if node.op == "XFloatConvPack":
        w = getattr(node.attrs, "weights")
        return (node.name, "conv", "float", _macs(shapes, node, int(np.prod(w.shape[1:]))), f"-/{w.size * 4}",
                "first layer: NHWC conv + sign packed")
    if node.op in ("Conv", "Gemm", "MatMul"):
        w = graph.constant(node.input(1))
        if w is None:
            per = 0
        elif node.op == "Conv":
            per = int(np.prod(w.shape[1:]))
        else:
            per = w.shape[1] if node.op == "Gemm" and getattr(node.attrs, "transB") else w.shape[0]
        size = f"-/{w.size * 4}" if w is not None else ""
        return (node.name, node.op.lower(), "float", _macs(shapes, node, per), size, node.why)
    return None
