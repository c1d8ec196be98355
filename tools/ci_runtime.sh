#!/usr/bin/env bash
# CI for the C runtime, natively (csrc/tests/run-aarch64.sh then repeats the example and the cases under
# qemu-aarch64).  Needs the xnorinfer package in the active Python.
#   1. the stripped shared library's size (make -C csrc size fails over 300 KiB)
#   2. examples/c: convert, export, build, run; its accuracy must equal the Python session's
#   3. tools/make_runtime_cases.py into csrc/build/runtime-cases, then test_runtime on them natively
#      (portable kernels on both sides, XNORINFER_ISA=scalar: the cases are the ones AArch64 checks)
#   4. every case's model run with allocations counted: a run must make none (test_no_alloc)
#   5. a short fuzz of the loader and ops under ASan + UBSan + LSan (FUZZ_CASES, default 20000)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
PYTHON=${PYTHON:-python3}

echo "== C runtime: library size"
make -s -C csrc size

echo "== C runtime: examples/c/digits"
mkdir -p examples/c/build
xnorinfer convert xnorinfer/demo/digits_bnn.onnx examples/c/build/digits.xnor
"$PYTHON" examples/c/export_digits.py examples/c/build
make -s -C examples/c
got=$(examples/c/build/"$(gcc -dumpmachine | cut -d- -f1)"/digits examples/c/build/digits.xnor \
      examples/c/build/images.f32 examples/c/build/labels.u8 --profile)
echo "$got"
want=$("$PYTHON" - <<'EOF'
import os
import numpy as np
import xnorinfer
import xnorinfer.demo
here = os.path.dirname(xnorinfer.demo.__file__)
data = np.load(os.path.join(here, "digits_test.npz"))
sess = xnorinfer.InferenceSession(os.path.join(here, "digits_bnn.onnx"))
pred = sess.run(None, {sess.get_inputs()[0].name: data["images"]})[0].argmax(axis=1)
print(f"{100 * (pred == data['labels']).mean():.2f}%")
EOF
)
echo "$want" > examples/c/build/accuracy.txt   # csrc/tests/run-aarch64.sh checks the qemu run against it
case "$got" in
    *"accuracy $want "*) echo "same accuracy as the Python session ($want)" ;;
    *) echo "FAIL: the Python session's accuracy is $want"; exit 1 ;;
esac
case "$got" in   # --profile: the steps of the last run, named after the graph's layers
    *"bconv      /conv1/Conv"*) echo "the profile names the layers" ;;
    *) echo "FAIL: no profile row for the binary layer /conv1/Conv"; exit 1 ;;
esac

echo "== C runtime: bit-identity cases (XNORINFER_ISA=scalar)"
"$PYTHON" tools/make_runtime_cases.py csrc/build/runtime-cases --isa scalar
XNORINFER_ISA=scalar make -s -C csrc test-runtime CASE_DIR="$root/csrc/build/runtime-cases"

echo "== C runtime: a run allocates nothing"
make -s -C csrc test-no-alloc CASE_DIR="$root/csrc/build/runtime-cases"

echo "== C runtime: fuzz (ASan + UBSan)"
SEED_DIR="$root/csrc/build/runtime-cases" PYTHON="$PYTHON" tools/fuzz_runtime.sh "${FUZZ_CASES:-20000}"
