"""The C runtime from Python: a lowered program (lower.py) opened as an xnor_model and run with one C
call per inference.  The session (session.py) uses it whenever the C library is the backend and the
model lowers; `CModel` is also how tests compare the two executors."""
import threading
from dataclasses import dataclass, field

import numpy as np

from .. import executor
from ..importers import xnor
from ..kernels import get_backend
from .lower import lower
from .program import BITS, F32, I32, NUMPY, U8, Unsupported

_PROFILE_TYPES = {F32: "float", U8: "bool", I32: "int", BITS: "bits"}   # as profiling.type_shape names them


class Fallback(Exception):
    """This input needs the Python executor (an exact 0 at a sign that keeps zeros)."""


def _aligned_copy(data, align=64):
    """The bytes in a numpy buffer whose start is `align`-byte aligned (the runtime reads them in place)."""
    raw = np.empty(len(data) + align, np.uint8)
    start = (-raw.ctypes.data) % align
    buf = raw[start:start + len(data)]
    buf[:] = np.frombuffer(data, np.uint8)
    return buf


def make_program(graph, steps, shapes):
    """The program.Program for inputs of `shapes` ({name: shape}), from one traced run of the Python
    executor's steps on random inputs, or the reason (a string) why the graph does not lower."""
    rng = np.random.default_rng(0)
    feeds = {v.name: rng.standard_normal(shapes[v.name]).astype(v.dtype) for v in graph.inputs}
    try:
        return lower(graph, executor.run_steps(steps, graph.constants, feeds), shapes)
    except Unsupported as exc:
        return str(exc)


class CModel:
    """One opened xnor_model (one arena: one run at a time).  `data`: the bytes of a .xnor file with a
    program."""

    def __init__(self, data, num_threads=None):
        backend = get_backend()
        if not hasattr(backend, "ffi"):
            raise RuntimeError("the C runtime needs the C backend")
        self.ffi, self.lib = backend.ffi, backend.lib
        self._buf = _aligned_copy(data)
        opts = self.ffi.new("xnor_model_options *")
        opts.num_threads = num_threads or 0
        handle = self.ffi.new("xnor_model **")
        status = self.lib.xnor_model_open_memory(self.ffi.from_buffer(self._buf), len(data), opts, handle)
        if status:
            raise ValueError(f"the C runtime cannot open the model: {self._error()}")
        self._model = self.ffi.gc(handle[0], self.lib.xnor_model_close)
        self.isa = self.lib.xnor_isa_active()
        self.inputs = [self._info(self.lib.xnor_model_input_info, i) for i in range(self.lib.xnor_model_num_inputs(self._model))]
        self.outputs = [self._info(self.lib.xnor_model_output_info, i) for i in range(self.lib.xnor_model_num_outputs(self._model))]
        self._in_checks = [(dtype, int(np.prod(dims))) for _, dtype, dims in self.inputs]
        self._in_ptrs = self.ffi.new("void *[]", len(self.inputs))
        self._step_info = self.ffi.new("xnor_step_info *")
        self._out_ptrs = self.ffi.new("void *[]", len(self.outputs))

    def _error(self):
        return self.ffi.string(self.lib.xnor_last_error()).decode()

    def _info(self, fn, i):
        info = self.ffi.new("xnor_tensor_info *")
        if fn(self._model, i, info):
            raise ValueError("bad tensor index")
        dims = tuple(int(info.dims[d]) for d in range(info.rank))
        return self.ffi.string(info.name).decode(), NUMPY[info.type], dims

    def set_profiling(self, on):
        if self.lib.xnor_model_set_profiling(self._model, int(bool(on))):
            raise RuntimeError(f"C runtime: {self._error()}")

    def step_layout(self):
        """Per step: (kernel, output tensor name, [input {type: dims}], [output {type: dims}]), read once."""
        if getattr(self, "_layout", None) is None:
            info, operand = self.ffi.new("xnor_step_info *"), self.ffi.new("xnor_tensor_info *")
            layout = []
            for s in range(self.lib.xnor_model_num_steps(self._model)):
                self.lib.xnor_model_step_info(self._model, s, info)
                shapes = []
                for k in range(info.n_inputs + 1):
                    self.lib.xnor_model_step_operand(self._model, s, k, operand)
                    kind = _PROFILE_TYPES[operand.type]
                    shapes.append({kind: [int(operand.dims[d]) for d in range(operand.rank)]})
                layout.append((self.ffi.string(info.op).decode(), self.ffi.string(info.name).decode(),
                               shapes[:-1], shapes[-1:]))
            self._layout = layout
        return self._layout

    def step_times(self):
        """((steps, 2) array of each step's start and duration in us, threads) of the last profiled run."""
        n = len(self.step_layout())
        times = np.empty((n, 2), np.float64)
        info = self._step_info
        if self.lib.xnor_model_step_times(self._model, self.ffi.from_buffer("double[]", times), 2 * n) or \
                self.lib.xnor_model_step_info(self._model, 0, info):
            raise RuntimeError(f"C runtime: {self._error()}")
        return times, int(info.threads)

    @property
    def arena_bytes(self):
        return int(self.lib.xnor_model_arena_bytes(self._model))

    def run(self, arrays, out_specs=None, clock=None):
        """arrays: the inputs in order (C-contiguous, the program's dtypes and element counts).
        out_specs: [(dtype, shape)] to view each output as (default: the program's).  clock: a
        function whose value just before the C call is kept in run_started (profiles)."""
        fb = self.ffi.from_buffer
        keep = []
        for i, (arr, (dtype, size)) in enumerate(zip(arrays, self._in_checks)):
            if arr.dtype != dtype or arr.size != size or not arr.flags.c_contiguous:
                raise ValueError(f"input {i}: expected {dtype} of {self.inputs[i][2]}, got {arr.dtype} {arr.shape}")
            keep.append(fb(arr))
            self._in_ptrs[i] = keep[-1]
        outs = []
        for i, (_, dtype, dims) in enumerate(self.outputs):
            out = np.empty(dims, dtype)
            outs.append(out)
            keep.append(fb(out))
            self._out_ptrs[i] = keep[-1]
        if clock is not None:
            self.run_started = clock()
        status = self.lib.xnor_model_run(self._model, self._in_ptrs, self._out_ptrs)
        if status:
            message = self._error()
            if status == self.lib.XNOR_EFALLBACK:
                raise Fallback(message)
            raise RuntimeError(f"C runtime: {message}")
        if out_specs is not None:
            outs = [o.view(np.bool_).reshape(shape) if dt == np.bool_ else o.reshape(shape)
                    for o, (dt, shape) in zip(outs, out_specs)]
        return outs


@dataclass
class _Entry:
    """A program of the Runner: its bytes, output specs, the graph nodes its steps come from, and
    the opened models not running now."""
    data: bytes
    specs: list
    step_nodes: list
    free: list = field(default_factory=list)


class Runner:
    """The C programs of one session: one per input-shape signature (and ISA), each with a small pool
    of opened models so concurrent runs do not wait on one arena.  trace: a profiling.Trace that
    every run adds its steps to (None: profiling off)."""

    def __init__(self, graph, steps, num_threads, trace=None):
        self.graph, self.steps, self.num_threads, self.trace = graph, steps, num_threads, trace
        self._lock = threading.Lock()
        self._programs = {}   # key -> _Entry, or an Unsupported message

    def _program(self, shapes):
        prog = make_program(self.graph, self.steps, shapes)
        if isinstance(prog, str):
            return prog
        return _Entry(xnor.dumps(None, prog), prog.output_dtypes, prog.step_nodes)

    def reason(self, shapes):
        entry = self._programs.get(self._key(shapes))
        return entry if isinstance(entry, str) else None

    def _key(self, shapes):
        return tuple(shapes[v.name] for v in self.graph.inputs), self._isa()

    def _isa(self):
        return get_backend().lib.xnor_isa_active()

    def run(self, feeds):
        """Outputs in graph order, or None when the program cannot run this input (the caller then uses
        the Python executor)."""
        key = (tuple(feeds[v.name].shape for v in self.graph.inputs), self._isa())
        with self._lock:
            entry = self._programs.get(key)
            if entry is None:
                shapes = {name: tuple(a.shape) for name, a in feeds.items()}
                if len(self._programs) >= 8:  # a few shapes are kept; a new one evicts the oldest
                    self._programs.pop(next(iter(self._programs)))
                entry = self._programs[key] = self._program(shapes)
            if isinstance(entry, str):
                return None
            model = entry.free.pop() if entry.free else None
        if model is None:
            try:
                model = CModel(entry.data, self.num_threads)
            except ValueError as exc:  # the loader's rules are stricter than the Python executor's
                with self._lock:
                    self._programs[key] = str(exc)
                return None
            if self.trace is not None:
                model.set_profiling(True)
        trace = self.trace
        try:
            outs = model.run([feeds[v.name] for v in self.graph.inputs], entry.specs,
                             clock=trace.now_us if trace is not None else None)
            if trace is not None:
                self._add_events(model, entry, trace)
            return outs
        except Fallback:
            return None
        finally:
            with self._lock:
                entry.free.append(model)

    @staticmethod
    def _add_events(model, entry, trace):
        times, threads = model.step_times()
        trace.add_c_run(model.step_layout(), entry.step_nodes, model.run_started, times, trace.begin_run(), threads)
