"""Microbenchmarks of the kernel core against numpy float32, measured side by side in one run.

Timings interleave the two sides and keep each side's best repetition, which is what a noisy machine
(a shared VM, turbo) makes comparable.  Throughput is in G binary multiply-accumulates per second
(M*N*K / s); numpy's float32 matmul is timed on the same shape with BLAS limited to the same number of
threads (threadpoolctl).
"""
import os
import time
from dataclasses import dataclass

import numpy as np

from .. import kernels
from ..errors import MissingDependency, import_optional
from ..kernels import get_backend, load_backend, use_backend
from .progress import Progress

DEFAULT_SHAPES = [(1024, 1024, 4096), (1, 4096, 4096), (3136, 256, 2304), (196, 512, 4608), (64, 64, 64)]


@dataclass
class GemmResult:
    m: int
    n: int
    k: int
    threads: int
    binary_gmacs: float
    float_gmacs: float
    peak_gmacs: float  # the CPU's XNOR-popcount peak for this thread count (None on Numba)

    @property
    def ratio(self):
        return self.binary_gmacs / self.float_gmacs

    @property
    def fraction_of_peak(self):
        return self.binary_gmacs / self.peak_gmacs if self.peak_gmacs else None


def best_time(fn, repeat, min_time=0.02):
    """Best wall time of one call, each repetition running the call enough times to last min_time."""
    fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    inner = max(1, int(min_time / once))
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        best = min(best, (time.perf_counter() - t0) / inner)
    return best


def interleaved_best(fns, repeat, min_time=0.02):
    """Best times of several functions, alternating between them so they share the machine's mood."""
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            best[i] = min(best[i], best_time(fn, 1, min_time))
    return best


def popcount_peak_gmacs(seconds=0.3, repeat=5):
    """Single-core XOR-popcount peak of the active C ISA path, from its register-only loop."""
    backend = get_backend()
    if not hasattr(backend, "popcount_peak_loop"):
        return None
    iters = 1 << 16
    while True:
        t0 = time.perf_counter()
        backend.popcount_peak_loop(iters)
        if time.perf_counter() - t0 > seconds / 4 or iters > 1 << 34:
            break
        iters *= 2
    best = 0.0
    for _ in range(repeat):
        t0 = time.perf_counter()
        macs = backend.popcount_peak_loop(iters)
        best = max(best, macs / (time.perf_counter() - t0) / 1e9)
    return best


def gemm_operands(m, n, k, seed=0):
    rng = np.random.default_rng(seed)
    a_f = rng.standard_normal((m, k), dtype=np.float32)
    b_f = rng.standard_normal((n, k), dtype=np.float32)
    return a_f, b_f, kernels.pack(a_f), kernels.pack(b_f)


def bench_gemm(m, n, k, threads, repeat=7, peak_gmacs=None):
    from threadpoolctl import threadpool_limits

    a_f, b_f, a_p, b_p = gemm_operands(m, n, k)
    out_i = np.empty((m, n), np.int32)
    out_f = np.empty((m, n), np.float32)
    b_t = b_f.T
    with threadpool_limits(limits=threads, user_api="blas"):
        t_bin, t_flt = interleaved_best(
            [lambda: kernels.bgemm(a_p, b_p, k, out=out_i, num_threads=threads),
             lambda: np.matmul(a_f, b_t, out=out_f)], repeat)
    macs = m * n * k
    return GemmResult(m, n, k, threads, macs / t_bin / 1e9, macs / t_flt / 1e9,
                      peak_gmacs * threads if peak_gmacs else None)


def call_overhead_us(repeat=7):
    """Full Python call time of a 1x64x64 bgemm (validation, allocation, C call)."""
    _, _, a, b = gemm_operands(1, 64, 64)
    return best_time(lambda: kernels.bgemm(a, b, 64), repeat, min_time=0.05) * 1e6


def pack_gbytes_per_s(rows=4096, k=4096, repeat=7):
    x = np.random.default_rng(0).standard_normal((rows, k), dtype=np.float32)
    return x.nbytes / best_time(lambda: kernels.pack(x), repeat) / 1e9


def numba_vs_c(m=1024, n=1024, k=4096, threads=1, repeat=5):
    """G MAC/s of the C backend and the Numba backend on the same operands, interleaved."""
    _, _, a, b = gemm_operands(m, n, k)
    out = np.empty((m, n), np.int32)
    c, nb = load_backend("c"), load_backend("numba")
    nb.bgemm(a, b, k, out, threads)  # compile (or load from cache) before timing
    t_c, t_nb = interleaved_best([lambda: c.bgemm(a, b, k, out, threads),
                                  lambda: nb.bgemm(a, b, k, out, threads)], repeat)
    return m * n * k / t_c / 1e9, m * n * k / t_nb / 1e9


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "Model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or platform.machine()


def format_table(results):
    lines = [f"{'shape (MxNxK)':>20} {'thr':>3} {'binary GMAC/s':>14} {'numpy f32 GMAC/s':>17} "
             f"{'ratio':>7} {'% of peak':>10}"]
    for r in results:
        frac = f"{100 * r.fraction_of_peak:9.1f}%" if r.fraction_of_peak else f"{'n/a':>10}"
        lines.append(f"{f'{r.m}x{r.n}x{r.k}':>20} {r.threads:>3} {r.binary_gmacs:14.1f} "
                     f"{r.float_gmacs:17.1f} {r.ratio:6.1f}x {frac}")
    return "\n".join(lines)


def run_gemm_report(shapes=None, threads=(1, 2), repeat=7, numba=True, out=print):
    info = get_backend().info()
    out(f"xnorinfer bench gemm — {cpu_name()}, {os.cpu_count()} CPUs; backend {info['backend']}"
        + (f", ISA {info['isa']} (supported: {', '.join(info['supported_isas'])})" if info.get("isa") else ""))
    peak = popcount_peak_gmacs()
    if peak:
        out(f"XOR-popcount peak (register-only loop, {info['isa']}, 1 core): {peak:.1f} G binary MAC/s")
    results = []
    for m, n, k in shapes or DEFAULT_SHAPES:
        for t in threads:
            results.append(bench_gemm(m, n, k, t, repeat, peak))
    out(format_table(results))
    if len(threads) > 1 and threads[0] == 1:
        for r1 in results:
            for rt in results:
                if (rt.m, rt.n, rt.k) == (r1.m, r1.n, r1.k) and r1.threads == 1 and rt.threads > 1:
                    out(f"scaling {r1.m}x{r1.n}x{r1.k}: {rt.threads} threads = "
                        f"{rt.binary_gmacs / r1.binary_gmacs:.2f}x 1 thread")
    out(f"Python call time, 1x64x64 bgemm: {call_overhead_us():.2f} us")
    out(f"pack float32 (4096x4096): {pack_gbytes_per_s():.1f} GB/s of input")
    if numba and info["backend"] == "c":
        try:
            g_c, g_nb = numba_vs_c()
            out(f"Numba backend at 1024x1024x4096, 1 thread: {g_nb:.1f} GMAC/s vs C {g_c:.1f} "
                f"({g_c / g_nb:.2f}x slower)")
        except ImportError as exc:
            out(f"Numba backend not measured: {exc}")
    return results


# ---- binary convolution against onnxruntime's float32 Conv ------------------------------------------

DEFAULT_CONVS = [  # (H, W, C_in, C_out, kernel, stride)
    (56, 56, 256, 256, 3, 1), (14, 14, 512, 512, 3, 1), (56, 56, 256, 256, 1, 1), (28, 28, 256, 256, 3, 2),
]


def onnxruntime_module(purpose="comparing with onnxruntime"):
    """onnxruntime, the float baseline; MissingDependency naming the [bench] extra if it is missing."""
    return import_optional("onnxruntime", purpose, "bench")


def _ort_conv_session(c_in, c_out, kernel, stride, pad, threads, weights):
    import onnx
    ort = onnxruntime_module()
    from onnx import TensorProto, helper, numpy_helper

    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[kernel, kernel], strides=[stride, stride],
                            pads=[pad] * 4)
    graph = helper.make_graph([node], "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(weights, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    # Its workers would otherwise spin after each run and take the other core from whatever is
    # measured next (binary and float timings are interleaved); a wake-up costs it microseconds.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def bench_conv(h, w, c_in, c_out, kernel, stride, threads, repeat=7):
    """(binary packed-output ms, binary int32-output ms, onnxruntime float32 ms) for one conv shape."""
    from ..layers import BConv2d
    rng = np.random.default_rng(0)
    pad = kernel // 2
    x = rng.standard_normal((1, h, w, c_in), dtype=np.float32)
    wt = rng.standard_normal((c_out, kernel, kernel, c_in), dtype=np.float32)
    xp, wp = kernels.pack(x), kernels.pack(wt)
    scale, bias = rng.standard_normal(c_out, dtype=np.float32), rng.standard_normal(c_out, dtype=np.float32)
    packed = BConv2d(wp, c_in, stride=stride, padding=pad, scale=scale, bias=bias, output="packed")
    raw = BConv2d(wp, c_in, stride=stride, padding=pad)
    sess = _ort_conv_session(c_in, c_out, kernel, stride, pad, threads, np.ascontiguousarray(wt.transpose(0, 3, 1, 2)))
    x_nchw = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    times = interleaved_best([lambda: packed(xp, threads), lambda: raw(xp, threads),
                              lambda: sess.run(None, {"x": x_nchw})], repeat)
    return [t * 1e3 for t in times]


def run_conv_report(convs=None, threads=(1, 2), repeat=7, out=print):
    onnxruntime = onnxruntime_module("bench conv (its float32 baseline is onnxruntime's Conv)")
    info = get_backend().info()
    out(f"xnorinfer bench conv — {cpu_name()}; backend {info['backend']}"
        + (f", ISA {info['isa']}" if info.get("isa") else "") + f"; onnxruntime {onnxruntime.__version__}")
    out(f"{'conv (HxW CinxCout k s)':>26} {'thr':>3} {'packed ms':>10} {'int32 ms':>9} {'ORT f32 ms':>11} "
        f"{'vs ORT':>7} {'packed/int32':>13}")
    rows = []
    for h, w, ci, co, k, s in convs or DEFAULT_CONVS:
        for t in threads:
            t_packed, t_int, t_ort = bench_conv(h, w, ci, co, k, s, t, repeat)
            rows.append(dict(h=h, w=w, c_in=ci, c_out=co, kernel=k, stride=s, threads=t, packed_ms=t_packed,
                             int32_ms=t_int, ort_ms=t_ort))
            out(f"{f'{h}x{w} {ci}x{co} {k}x{k} s{s}':>26} {t:>3} {t_packed:10.3f} {t_int:9.3f} {t_ort:11.3f} "
                f"{t_ort / t_packed:6.1f}x {t_packed / t_int:12.2f}x")
    for r1 in rows:
        for r2 in rows:
            if r1["threads"] == 1 and r2["threads"] > 1 and all(r1[k] == r2[k] for k in ("h", "w", "c_in", "c_out", "kernel", "stride")):
                out(f"scaling {r1['h']}x{r1['w']} {r1['c_in']}x{r1['c_out']} {r1['kernel']}x{r1['kernel']} "
                    f"s{r1['stride']}: {r2['threads']} threads = {r1['packed_ms'] / r2['packed_ms']:.2f}x 1 thread")
    return rows


# ---- a model file against the engine its format comes from --------------------------------------------

def _interleaved_latencies(engines, iterations, warmup, label, progress=None, blocks=5):
    """ms per run of each engine.  `engines` maps a name to a factory that loads the engine and
    returns its run function.  The engines take turns in blocks of runs: drift in the machine's speed
    lands on all of them alike.  Each block loads its engine afresh and drops it afterwards, pauses,
    and makes `warmup` untimed runs, so no engine is timed beside another's live thread pool or with
    its caches full of the other's weights (run-by-run alternation with both loaded slowed both
    sides 1.5-3x here).  `progress`: the stream for progress (Progress: a bar on a terminal, else one
    line when done), default stderr."""
    import gc
    times = {name: [] for name in engines}
    per_block = -(-iterations // blocks)
    with Progress(per_block * blocks * len(engines), label, progress) as bar:
        for _ in range(blocks):
            for name, make in engines.items():
                fn = make()
                time.sleep(0.05)
                for _ in range(warmup):
                    fn()
                for _ in range(per_block):
                    t0 = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - t0)
                    bar.update()
                del fn
                gc.collect()
    return {name: np.array(t) * 1e3 for name, t in times.items()}


def _baselines(path, threads, inputs, out):
    """The other engines that read this file: onnxruntime for ONNX, Larq Compute Engine's own
    interpreter for its .tflite files (its fastest x86 kernels: indirect BGEMM, with and without the
    XNNPACK delegate for the float ops).  name -> factory of a run function."""
    from ..importers.tflite import is_tflite
    from ..importers.xnor import is_xnor
    if is_xnor(path):
        out("a .xnor file: no other engine reads it; measuring xnorinfer alone")
        return {}
    if is_tflite(path):
        try:
            Interpreter = import_optional("larq_compute_engine.tflite.python.interpreter",
                                          "comparing with Larq Compute Engine's interpreter",
                                          pip_name="larq-compute-engine").Interpreter
        except MissingDependency as exc:
            out(f"{exc}; measuring xnorinfer alone")
            return {}
        with open(path, "rb") as f:
            flatbuffer = f.read()
        feed = list(inputs.values())
        engines = {}
        for label, extra in (("LCE", {}), ("LCE+XNNPACK", {"use_xnnpack": True})):
            def make(extra=extra):
                it = Interpreter(flatbuffer, num_threads=threads, use_indirect_bgemm=True, **extra)
                return lambda: it.interpreter.predict(feed)  # the C++ call, no Python batching
            engines[label] = make
        return engines
    try:
        ort = onnxruntime_module()
    except MissingDependency as exc:
        out(f"{exc}; measuring xnorinfer alone")
        return {}
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")

    def make():
        theirs = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        return lambda: theirs.run(None, inputs)
    return {"onnxruntime": make}


class _TimedLib:
    """The cffi lib with every xnor_* call timed: the time the Python executor spends inside C kernels
    (plus ~0.3 us of wrapper per call, which counts in the Python executor's favour)."""

    def __init__(self, lib):
        self._lib, self.seconds = lib, 0.0

    def __getattr__(self, name):
        fn = getattr(self._lib, name)
        if not name.startswith("xnor_") or not callable(fn):
            return fn
        clock = time.perf_counter

        def timed(*args):
            t0 = clock()
            try:
                return fn(*args)
            finally:
                self.seconds += clock() - t0
        return timed


def executor_times(path, inputs, threads, iterations=50, blocks=5):
    """Per run, in ms (medians over interleaved blocks): the C runtime's whole run, the Python executor's
    whole run, and the Python executor's time inside C kernels."""
    from ..session import InferenceSession
    backend = get_backend()
    c_sess = InferenceSession(path, num_threads=threads, executor="c")
    c_sess.run(None, inputs)
    real, timed = backend.lib, _TimedLib(backend.lib)
    py_sess = InferenceSession(path, num_threads=threads, executor="python")
    c_ms, py_ms, kernel_ms = [], [], []
    for _ in range(blocks):
        t0 = time.perf_counter()
        for _ in range(iterations):
            c_sess.run(None, inputs)
        c_ms.append((time.perf_counter() - t0) / iterations * 1e3)
        backend.lib = timed  # every kernel call of the Python executor (plans made now bind it too)
        try:
            py_sess.run(None, inputs)
            timed.seconds = 0.0
            t0 = time.perf_counter()
            for _ in range(iterations):
                py_sess.run(None, inputs)
            py_ms.append((time.perf_counter() - t0) / iterations * 1e3)
        finally:
            backend.lib = real
        kernel_ms.append(timed.seconds / iterations * 1e3)
    return float(np.median(c_ms)), float(np.median(py_ms)), float(np.median(kernel_ms))


def run_model_bench(path, threads=(1,), iterations=50, warmup=5, batch=1, out=print, progress=None, profile=None):
    """Latency percentiles of xnorinfer and of the engine the file comes from (onnxruntime for ONNX,
    Larq Compute Engine for its .tflite), interleaved in blocks on the same inputs and threads.
    `progress`: where progress goes (default stderr; a bar only if it is a terminal).  `profile`: a
    path to write a profile trace of xnorinfer's runs to (profile_model), with its table printed."""
    from ..session import InferenceSession
    sess = InferenceSession(path)
    inputs = {}
    rng = np.random.default_rng(0)
    for i in sess.get_inputs():
        shape = [batch if not isinstance(d, int) or d <= 0 else d for d in (i.shape or [batch])]
        inputs[i.name] = rng.standard_normal(shape).astype(np.float32)
    out(f"xnorinfer bench {path} — {cpu_name()}; batch {batch}; {iterations} runs each, in 5 interleaved blocks after {warmup} warm-up runs")
    out(f"{'engine':<14} {'thr':>3} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'min ms':>8}")
    results = []
    for t in threads:
        def make_ours(t=t):
            ours = InferenceSession(path, num_threads=t)
            return lambda: ours.run(None, inputs)
        engines = {"xnorinfer": make_ours}
        engines.update(_baselines(path, t, inputs, out if t == threads[0] else (lambda *_: None)))
        lat = _interleaved_latencies(engines, iterations, warmup, f"{' vs '.join(engines)}, {t} thr", progress)
        for name, ms in lat.items():
            out(f"{name:<14} {t:>3} {np.percentile(ms, 50):8.3f} {np.percentile(ms, 90):8.3f} "
                f"{np.percentile(ms, 99):8.3f} {ms.min():8.3f}")
        if len(lat) > 1:
            ours_p50 = float(np.percentile(lat["xnorinfer"], 50))
            best = min((name for name in lat if name != "xnorinfer"), key=lambda n: np.percentile(lat[n], 50))
            speedup = float(np.percentile(lat[best], 50)) / ours_p50
            out(f"{'':<14} {t:>3} xnorinfer is {speedup:.2f}x faster than {best} (median; its fastest setting here)")
            results.append(dict(threads=t, xnorinfer_p50=ours_p50, baseline=best,
                                baseline_p50=float(np.percentile(lat[best], 50)), speedup=speedup))
    if get_backend().name == "c" and not isinstance(sess.program(batch), str):
        out("executors (xnorinfer's own: one C runtime call per run, or the Python executor calling each kernel):")
        for t in threads:
            c_ms, py_ms, kernel_ms = executor_times(path, inputs, t, max(5, iterations // 5))
            out(f"  {t} thr: C runtime {c_ms:.3f} ms; Python executor {py_ms:.3f} ms, of which {kernel_ms:.3f} ms "
                f"in C kernels; C runtime / those kernels = {c_ms / kernel_ms:.3f}, Python / C runtime = {py_ms / c_ms:.2f}x")
    if profile is not None:
        profile_model(path, inputs, threads, iterations, warmup, profile, out)
    return results


def profile_model(path, inputs, threads, iterations, warmup, trace_path, out=print):
    """Profiled runs (after `warmup` unrecorded ones) at each thread count, into one trace file (events
    tell the thread counts apart by args.threads); prints the time by op at each count."""
    import json
    import tempfile
    from ..options import SessionOptions
    from ..profiling import summarize
    from ..session import InferenceSession
    events = []
    with tempfile.TemporaryDirectory() as tmp:
        for t in threads:
            so = SessionOptions()
            so.intra_op_num_threads, so.enable_profiling = t, True
            so.profile_file_prefix = os.path.join(tmp, f"t{t}_")
            sess = InferenceSession(path, so)
            for _ in range(warmup + iterations):
                sess.run(None, inputs)
            with open(sess.end_profiling()) as f:
                run_events = [e for e in json.load(f) if e["args"]["run"] >= warmup]
            out(f"profile, {t} thr, {iterations} runs ({sess.last_executor} executor): time by op")
            out(summarize(run_events))
            events += run_events
    with open(trace_path, "w") as f:
        json.dump(events, f, separators=(",", ":"))
    out(f"trace written to {trace_path} ({len(events)} events; open in https://ui.perfetto.dev or chrome://tracing)")
