#!/usr/bin/env python3
"""Latency of the same models under two installs of xnorinfer (say, before and after a change), measured
side by side: each round runs one process per install, in alternating order, and the ratio is taken
round by round, so a disturbed machine moves both sides of a round alike.

    python tools/compare_installs.py OLD_PYTHON NEW_PYTHON MODEL... [--executor c|python] [--rounds 7]

OLD_PYTHON / NEW_PYTHON: the interpreters of two virtual environments, each with its own checkout
installed (`pip install -e .`).  Prints, per model and thread count, each side's median p50 and the
new / old ratio: the median of the per-round p50 ratios and the ratio of the best runs.
"""
import argparse
import json
import subprocess
import sys

import numpy as np

# Runs in the measured environment: one model, one thread count; prints p50 and best ms per run.
CHILD = r"""
import json, sys, time
import numpy as np
import xnorinfer
path, threads, runs, executor = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
sess = xnorinfer.InferenceSession(path, num_threads=threads, executor=executor)
i = sess.get_inputs()[0]
x = np.random.default_rng(0).standard_normal([d if isinstance(d, int) and d > 0 else 1 for d in i.shape])
feed = {i.name: x.astype(np.float32)}
for _ in range(10):
    sess.run(None, feed)
assert sess.last_executor == executor, sess.last_executor
t = []
for _ in range(runs):
    t0 = time.perf_counter()
    sess.run(None, feed)
    t.append(time.perf_counter() - t0)
print(json.dumps({"p50": 1e3 * float(np.median(t)), "best": 1e3 * min(t)}))
"""


def measure(python, model, threads, runs, executor):
    out = subprocess.run([python, "-c", CHILD, model, str(threads), str(runs), executor], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("models", nargs="+")
    parser.add_argument("--executor", default="c", choices=("c", "python"))
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--runs", type=int, default=200, help="timed runs per process")
    args = parser.parse_args(argv)
    for model in args.models:
        for threads in (int(t) for t in args.threads.split(",")):
            rows = {"old": [], "new": []}
            for r in range(args.rounds):
                order = (("old", args.old), ("new", args.new))
                for side, python in order if r % 2 == 0 else order[::-1]:
                    rows[side].append(measure(python, model, threads, args.runs, args.executor))
            ratios = [n["p50"] / o["p50"] for o, n in zip(rows["old"], rows["new"])]
            best = min(n["best"] for n in rows["new"]) / min(o["best"] for o in rows["old"])
            print(f"{model}  {args.executor}, {threads} thr: old p50 {np.median([o['p50'] for o in rows['old']]):.3f} ms, "
                  f"new {np.median([n['p50'] for n in rows['new']]):.3f} ms; new/old: p50 ratio median "
                  f"{np.median(ratios):.3f} (rounds {min(ratios):.3f}-{max(ratios):.3f}), best {best:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
