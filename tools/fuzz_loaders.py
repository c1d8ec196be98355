"""Long fuzz run of the model loaders (the CI test runs a short one):

    python tools/fuzz_loaders.py --cases 100000

Mutates the digits demo model as ONNX and as .xnor, an LCE .tflite fixture, and the QuickNet-style LCE fixture
planned into .xnor (NHWC float ops, fused shortcut adds); any crash (segfault, abort) ends the process and is the
failure; Python exceptions are the expected outcome for broken files."""
import argparse
import os
import tempfile
import time

import xnorinfer
from xnorinfer.tools.fuzz import fuzz

parser = argparse.ArgumentParser()
parser.add_argument("--cases", type=int, default=100000,
                    help="mutated files in total (split between the four files)")
parser.add_argument("--seed", type=int, default=1)
args = parser.parse_args()

onnx_path = os.path.join(os.path.dirname(xnorinfer.__file__), "demo", "digits_bnn.onnx")
tflite_path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "fixtures", "lce",
                           "tiny_bnn", "model.tflite")
resid_path = os.path.join(os.path.dirname(tflite_path), "..", "tiny_resid", "model.tflite")
with tempfile.TemporaryDirectory() as tmp:
    xnor_path = os.path.join(tmp, "digits.xnor")
    xnorinfer.InferenceSession(onnx_path).save(xnor_path)
    resid_xnor = os.path.join(tmp, "tiny_resid.xnor")
    xnorinfer.InferenceSession(resid_path).save(resid_xnor)
    for name, path, shape in (("onnx", onnx_path, (1, 1, 8, 8)), (".xnor", xnor_path, (1, 1, 8, 8)),
                              (".tflite", tflite_path, (1, 32, 32, 3)), ("residual .xnor", resid_xnor, (1, 32, 32, 3))):
        data = open(path, "rb").read()
        t0 = time.time()
        outcomes = fuzz(data, shape, args.cases // 4, seed=args.seed)
        print(f"{name}: {sum(outcomes.values())} mutated files, 0 crashes ({time.time() - t0:.0f} s): "
              + ", ".join(f"{k} {v}" for k, v in outcomes.most_common()))
