"""SessionOptions measured side by side in one run, on BinaryNet's VGG-small (make_vgg_small.py):

  threads     onnxruntime.SessionOptions().intra_op_num_threads = 1 against num_threads=1 (same work:
              ratio ~1.0) and against 2 threads (ratio ~2 on 2 cores);
  profiling   a profiled session against an unprofiled one (the cost of timing each step), and the
              trace's step durations summed per run against each run's wall time.

    python benchmarks/session_options.py [--runs 200] [--model /tmp/vgg_small.onnx]

Times are interleaved (each round runs every session once, in turn) and the medians compared.
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

import xnorinfer

HERE = os.path.dirname(os.path.abspath(__file__))


def vgg_small(path):
    if not os.path.exists(path):
        sys.path.insert(0, HERE)
        from make_vgg_small import build
        from onnx import save
        save(build(), path)
    return path


def interleaved(fns, runs, warmup=5):
    times = {name: [] for name in fns}
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    for _ in range(runs):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: np.array(t) * 1e3 for name, t in times.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--model", default=os.path.join(tempfile.gettempdir(), "vgg_small.onnx"))
    args = ap.parse_args()
    path = vgg_small(args.model)
    x = {"input": np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)}

    try:
        import onnxruntime as ort
        ort_so = ort.SessionOptions()
        which = "onnxruntime.SessionOptions"
    except ImportError:
        ort_so = xnorinfer.SessionOptions()
        which = "xnorinfer.SessionOptions (onnxruntime is not installed)"
    ort_so.intra_op_num_threads = 1
    sessions = {"intra_op_num_threads=1": xnorinfer.InferenceSession(path, ort_so),
                "num_threads=1": xnorinfer.InferenceSession(path, num_threads=1),
                "num_threads=2": xnorinfer.InferenceSession(path, num_threads=2)}
    name = sessions["num_threads=1"].get_inputs()[0].name
    x = {name: x["input"]}
    lat = interleaved({k: (lambda s=s: s.run(None, x)) for k, s in sessions.items()}, args.runs)
    med = {k: float(np.median(v)) for k, v in lat.items()}
    print(f"VGG-small, batch 1, {args.runs} interleaved runs each; {xnorinfer.backend_info()}")
    for k, v in med.items():
        print(f"  {k:<24} median {v:7.3f} ms")
    print(f"  {which} intra_op_num_threads=1 / num_threads=1: {med['intra_op_num_threads=1'] / med['num_threads=1']:.3f}")
    print(f"  intra_op_num_threads=1 / num_threads=2: {med['intra_op_num_threads=1'] / med['num_threads=2']:.2f}x slower")

    with tempfile.TemporaryDirectory() as tmp:
        so = xnorinfer.SessionOptions()
        so.enable_profiling, so.profile_file_prefix = True, os.path.join(tmp, "p")
        profiled = xnorinfer.InferenceSession(path, so)
        plain = xnorinfer.InferenceSession(path)
        walls = []

        def run_profiled():
            t0 = time.perf_counter()
            profiled.run(None, x)
            walls.append(time.perf_counter() - t0)
        lat = interleaved({"off": lambda: plain.run(None, x), "on": run_profiled}, args.runs)
        events = json.load(open(profiled.end_profiling()))
    per_run = {}
    for e in events:
        per_run[e["args"]["run"]] = per_run.get(e["args"]["run"], 0.0) + e["dur"]
    sums = np.array([per_run[r] for r in sorted(per_run)]) / 1e3
    walls = np.array(walls[-len(sums):]) * 1e3 if len(walls) >= len(sums) else None
    steps = len(events) // len(per_run)
    print(f"profiling ({steps} steps per run, default threads): median off {np.median(lat['off']):.3f} ms, "
          f"on {np.median(lat['on']):.3f} ms, on/off {np.median(lat['on']) / np.median(lat['off']):.3f}")
    k = min(len(sums), len(walls), args.runs)   # the timed runs, not the warm-up (the first lowers the program)
    ratio = sums[-k:] / walls[-k:]
    print(f"  step durations summed / run wall time: median {np.median(ratio):.3f}, "
          f"range {ratio.min():.3f}-{ratio.max():.3f} over {k} runs")


if __name__ == "__main__":
    main()
