#!/usr/bin/env bash
# Cross-compile the kernel library for AArch64 and run the C kernel tester under qemu-aarch64; then the
# C runtime: test_runtime on the bit-identity cases (RUNTIME_CASES, default csrc/build/runtime-cases,
# written by tools/make_runtime_cases.py --isa scalar) and the examples/c digits program (on the files
# in examples/c/build/, as tools/ci_runtime.sh leaves them, with the accuracy it must print), each when
# its inputs exist.
# Installs the cross toolchain and qemu (Debian/Ubuntu packages) when they are missing; CI runs this
# as root.  Usage: csrc/tests/run-aarch64.sh [extra make arguments]
set -euo pipefail

csrc_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
example_dir="$csrc_dir/../examples/c"

if ! command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || ! command -v qemu-aarch64 >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
fi

make -C "$csrc_dir" CROSS=aarch64-linux-gnu- test "$@"

cases="${RUNTIME_CASES:-$csrc_dir/build/runtime-cases}"
if [ -d "$cases" ]; then
    make -C "$csrc_dir" CROSS=aarch64-linux-gnu- test-runtime CASE_DIR="$cases" "$@"
else
    echo "no runtime cases in $cases (tools/make_runtime_cases.py writes them): test_runtime skipped"
fi

make -C "$example_dir" CROSS=aarch64-linux-gnu-
if [ -f "$example_dir/build/digits.xnor" ] && [ -f "$example_dir/build/images.f32" ]; then
    got=$(qemu-aarch64 -L /usr/aarch64-linux-gnu "$example_dir/build/aarch64/digits" "$example_dir/build/digits.xnor" \
          "$example_dir/build/images.f32" "$example_dir/build/labels.u8")
    echo "$got"
    if [ -f "$example_dir/build/accuracy.txt" ]; then   # the Python session's, from tools/ci_runtime.sh
        want=$(cat "$example_dir/build/accuracy.txt")
        case "$got" in
            *"accuracy $want "*) echo "same accuracy as the Python session ($want)" ;;
            *) echo "FAIL: the Python session's accuracy is $want"; exit 1 ;;
        esac
    fi
else
    echo "no digits model or images in $example_dir/build (see examples/c/README.md): the example was only built"
fi
