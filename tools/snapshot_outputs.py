#!/usr/bin/env python3
"""A digest of every output bit of a set of models, on every kernel path and both executors: run it
before and after a change that must not change behaviour, and compare the two files.

    python tools/snapshot_outputs.py snap.json [--models DIR ...] [--paths c-ref,c-scalar,c-avx2,numba]
    python tools/snapshot_outputs.py --compare before.json after.json

Models: the digits demo, every fixture (tests/fixtures/*/*/model.onnx|.tflite, run on its inputs.npz)
and every model file under each --models DIR (run on DIR/<name>.npz when present, else standard
normal float32 inputs, seed 0, free dimensions set to 2).  Each model runs on every path (XNORINFER_ISA /
XNORINFER_BACKEND set before xnorinfer is imported, one subprocess per path) with executor="python"
and the default executor, and once more from its `.xnor` conversion.  The digest is SHA-256 over each
output's dtype, shape and bytes; a model that fails to load records its error's type instead.
"""
import argparse
import hashlib
import json
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent


def models(extra_dirs):
    yield "digits", ROOT / "xnorinfer" / "demo" / "digits_bnn.onnx", ROOT / "xnorinfer" / "demo" / "digits_test.npz"
    for model in sorted(ROOT.glob("tests/fixtures/*/*/model.*")):
        if model.suffix in (".onnx", ".tflite"):
            yield f"{model.parent.parent.name}-{model.parent.name}", model, model.parent / "inputs.npz"
    for d in extra_dirs:
        for model in sorted(pathlib.Path(d).iterdir()):
            if model.suffix in (".onnx", ".tflite"):
                yield f"{pathlib.Path(d).name}-{model.stem}", model, model.with_suffix(".npz")


def _feeds(sess, inputs_path, np):
    specs = sess.get_inputs()
    if inputs_path is not None and inputs_path.exists():
        stored = np.load(inputs_path)
        if inputs_path.name == "digits_test.npz":
            return {specs[0].name: stored["images"]}
        if all(s.name in stored for s in specs):
            return {s.name: stored[s.name] for s in specs}
        return {s.name: stored[k] for s, k in zip(specs, stored.files)}
    rng = np.random.default_rng(0)
    return {s.name: rng.standard_normal([d if isinstance(d, int) and d > 0 else 2 for d in s.shape]).astype(np.float32)
            for s in specs}


def _digest(outputs, np):
    h = hashlib.sha256()
    for o in outputs:
        o = np.ascontiguousarray(o)
        h.update(f"{o.dtype}{o.shape}".encode())
        h.update(o.tobytes())
    return h.hexdigest()[:24]


def run_path(extra_dirs):
    """In the subprocess: every model on the path the environment selects."""
    import numpy as np

    import xnorinfer
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, model, inputs in models(extra_dirs):
            entry = result[name] = {}
            try:
                probe = xnorinfer.InferenceSession(str(model), executor="python")
                feeds = _feeds(probe, inputs, np)
                entry["python"] = _digest(probe.run(None, feeds), np)
                auto = xnorinfer.InferenceSession(str(model))
                entry["auto"] = _digest(auto.run(None, feeds), np)
                entry["auto_executor"] = auto.last_executor
                batch = next(iter(feeds.values())).shape[0] if feeds and next(iter(feeds.values())).ndim else 1
                xnor = os.path.join(tmp, f"{name}.xnor")
                probe.save(xnor, batch=batch)
                entry["xnor"] = _digest(xnorinfer.InferenceSession(xnor).run(None, feeds), np)
            except Exception as exc:  # recorded, so a change in what fails shows too
                entry["error"] = type(exc).__name__
    return result


def snapshot(out, extra_dirs, paths):
    snap = {}
    for path in paths:
        env = dict(os.environ)
        env.pop("XNORINFER_ISA", None)
        env.pop("XNORINFER_BACKEND", None)
        if path == "numba":
            env["XNORINFER_BACKEND"] = "numba"
        else:
            env["XNORINFER_BACKEND"] = "c"
            env["XNORINFER_ISA"] = path.split("-", 1)[1]
        args = [sys.executable, __file__, "--child", "--models", *extra_dirs] if extra_dirs else \
            [sys.executable, __file__, "--child"]
        done = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
        snap[path] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{path}: {len(snap[path])} models", file=sys.stderr)
    pathlib.Path(out).write_text(json.dumps(snap, indent=1, sort_keys=True) + "\n")


def compare(a_path, b_path):
    a, b = json.loads(pathlib.Path(a_path).read_text()), json.loads(pathlib.Path(b_path).read_text())
    diffs = 0
    for path in sorted(set(a) | set(b)):
        for model in sorted(set(a.get(path, {})) | set(b.get(path, {}))):
            ea, eb = a.get(path, {}).get(model), b.get(path, {}).get(model)
            if ea != eb:
                diffs += 1
                print(f"{path} {model}: {ea} -> {eb}")
    count = sum(len(v) for v in a.values())
    print(f"{diffs} of {count} (path, model) entries differ")
    return 1 if diffs else 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?")
    parser.add_argument("--models", nargs="*", default=[])
    parser.add_argument("--paths", default="c-ref,c-scalar,c-avx2,numba")
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_path(args.models)))
        return 0
    if args.compare:
        return compare(*args.compare)
    if not args.out:
        parser.error("give the output file, or --compare BEFORE AFTER")
    snapshot(args.out, args.models, args.paths.split(","))
    return 0


if __name__ == "__main__":
    sys.exit(main())
