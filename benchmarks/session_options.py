"""SessionOptions measured side by side in one run, on BinaryNet's VGG-small (make_vgg_small.py):

  threads     onnxruntime.SessionOptions().intra_op_num_threads = 1 against num_threads=1 (same work:
              ratio ~1.0) and against 2 threads (ratio ~2 on 2 cores);
  profiling   a profiled session against an unprofiled one (the cost of timing each step), and the
              trace's step durations summed per run against each run's wall time.

    python benchmarks/session_options.py [--runs 200] [--rounds 20] [--model /tmp/vgg_small.onnx]

Threads are compared in rounds: each round runs every session for a block of runs (a few warm-up runs
first, in a rotating order), and the ratio of block medians is taken within the round, so a round
compares sessions under the same machine load; the rounds' median ratio is reported with its range.
Profiling on/off alternates run by run.
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


def rounds(fns, n_rounds, per_block, warmup=5):
    """{name: [block median ms per round]}: each round runs each function for a block, order rotated."""
    names = list(fns)
    out = {name: [] for name in names}
    for r in range(n_rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            for _ in range(warmup):
                fns[name]()
            times = []
            for _ in range(per_block):
                t0 = time.perf_counter()
                fns[name]()
                times.append(time.perf_counter() - t0)
            out[name].append(float(np.median(times)) * 1e3)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200, help="runs per session (split into the rounds' blocks)")
    ap.add_argument("--rounds", type=int, default=20)
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
    per_block = max(10, args.runs // args.rounds)
    blocks = rounds({k: (lambda s=s: s.run(None, x)) for k, s in sessions.items()}, args.rounds, per_block)
    print(f"VGG-small, batch 1, {args.rounds} rounds of {per_block} runs per session; {xnorinfer.backend_info()}")
    for k, v in blocks.items():
        print(f"  {k:<24} median of block medians {np.median(v):7.3f} ms (blocks {min(v):.3f}-{max(v):.3f})")

    def ratio(a, b):
        r = np.array(blocks[a]) / np.array(blocks[b])
        return f"{np.median(r):.3f} (rounds {r.min():.3f}-{r.max():.3f})"
    print(f"  {which} intra_op_num_threads=1 / num_threads=1: {ratio('intra_op_num_threads=1', 'num_threads=1')}")
    print(f"  intra_op_num_threads=1 / num_threads=2: {ratio('intra_op_num_threads=1', 'num_threads=2')}")

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
