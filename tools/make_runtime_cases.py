#!/usr/bin/env python3
"""Cases for csrc/tests/test_runtime.c: the C runtime's outputs must equal the Python executor's, bit
for bit.

    python tools/make_runtime_cases.py OUT_DIR [--isa scalar]

For the digits demo and every fixture model (tests/fixtures/*/*/model.onnx or model.tflite), writes
OUT_DIR/<name>/ with model.xnor (`xnorinfer convert --batch B`, B the batch of the fixture's own
inputs), input_<i>.bin (tests/fixtures/.../inputs.npz; standard normal float32 for the digits model)
and expected_<i>.bin: the raw bytes (C order) of what InferenceSession(model, executor="python")
returns for the source model.  When the session itself falls back to Python on those inputs (an
exact 0 at a sign that keeps zeros: the ties fixtures), the case also holds a file expect_fallback,
and test_runtime requires the run to return XNOR_EFALLBACK.  Models whose file holds no C runtime program are skipped (said on stdout).

--isa (default scalar) is set as XNORINFER_ISA before xnorinfer is imported, so the Python executor's
kernels take that path.  The float convolutions round differently per path (AVX2 + FMA vs the portable
loop), so cases for another architecture must come from the portable path, and test_runtime must then
run natively with the same XNORINFER_ISA; on AArch64 the portable loop is the only one.  Also writes
OUT_DIR/manifest.json (per case: source model, batch, input and output shapes and dtypes, ISA).
"""
import argparse
import contextlib
import io
import json
import os
import pathlib
import shutil
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def fixture_models():
    """(case name, model path, inputs.npz path or None), the digits demo first."""
    yield "digits", ROOT / "xnorinfer" / "demo" / "digits_bnn.onnx", None
    for model in sorted(ROOT.glob("tests/fixtures/*/*/model.*")):
        if model.suffix in (".onnx", ".tflite"):
            inputs = model.parent / "inputs.npz"
            yield f"{model.parent.parent.name}-{model.parent.name}", model, inputs if inputs.exists() else None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("--isa", default="scalar", help="XNORINFER_ISA for the Python executor (default scalar)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs (models without inputs.npz)")
    args = parser.parse_args(argv)
    os.environ["XNORINFER_ISA"] = args.isa
    import numpy as np

    import xnorinfer
    from xnorinfer import cli

    rng = np.random.default_rng(args.seed)
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    manifest, skipped = {}, []
    for name, model, inputs_path in fixture_models():
        probe = xnorinfer.InferenceSession(str(model), executor="python")
        specs = probe.get_inputs()
        if inputs_path is not None:
            stored = np.load(inputs_path)
            if all(s.name in stored for s in specs):
                feeds = {s.name: np.ascontiguousarray(stored[s.name]) for s in specs}
            else:  # names that differ from the model's (a .tflite's "serving_default_input:0"): in order
                assert len(stored.files) == len(specs), (inputs_path, stored.files, [s.name for s in specs])
                feeds = {s.name: np.ascontiguousarray(stored[k]) for s, k in zip(specs, stored.files)}
        else:
            feeds = {s.name: rng.standard_normal([d if isinstance(d, int) else 1 for d in s.shape]).astype(np.float32)
                     for s in specs}
        batch = next(iter(feeds.values())).shape[0] if feeds and next(iter(feeds.values())).ndim else 1
        case = args.out / name
        case.mkdir()
        text = io.StringIO()
        with contextlib.redirect_stdout(text):
            status = cli.main(["convert", "--batch", str(batch), str(model), str(case / "model.xnor")])
        if status or "no C runtime program" in text.getvalue():
            skipped.append(f"{name}: {text.getvalue().strip().splitlines()[-1] if text.getvalue().strip() else status}")
            shutil.rmtree(case)
            continue
        # The expected outputs come from the source model, not from model.xnor: the program in the file is
        # what is under test, and the file's graph is only another copy of the same plan.
        sess = probe
        order = [s.name for s in sess.get_inputs()]
        outputs = sess.run(None, {k: feeds[k] for k in order})
        assert sess.last_executor == "python", sess.last_executor
        # Does the C runtime run these inputs?  An exact 0 reaching a sign that keeps zeros (the ties
        # fixtures) makes it return XNOR_EFALLBACK, and the session then runs Python: the case then
        # expects that status instead of outputs.
        auto = xnorinfer.InferenceSession(str(model))
        auto.run(None, {k: feeds[k] for k in order})
        fallback = auto.last_executor != "c"
        if fallback:
            (case / "expect_fallback").write_text("the session's run of these inputs fell back to the Python executor\n")
        for i, k in enumerate(order):
            feeds[k].tofile(case / f"input_{i}.bin")
        for i, out in enumerate(outputs):
            np.ascontiguousarray(out).tofile(case / f"expected_{i}.bin")
        manifest[name] = {
            "model": str(model.relative_to(ROOT)), "batch": int(batch), "isa": args.isa, "expect_fallback": fallback,
            "inputs": [[k, str(feeds[k].dtype), list(feeds[k].shape)] for k in order],
            "outputs": [[o.name, str(np.asarray(v).dtype), list(np.asarray(v).shape)]
                        for o, v in zip(sess.get_outputs(), outputs)]}
        print(f"{name}: batch {batch}, inputs {[list(feeds[k].shape) for k in order]}, "
              f"outputs {[list(np.asarray(v).shape) for v in outputs]}" + (", expects XNOR_EFALLBACK" if fallback else ""))
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    for line in skipped:
        print(f"skipped (no C runtime program) {line}")
    print(f"{len(manifest)} cases in {args.out} (XNORINFER_ISA={args.isa}), {len(skipped)} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
