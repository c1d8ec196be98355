#!/usr/bin/env bash
# The macOS build, checked from Linux: csrc/'s Makefile run with zig's clang (pip install ziglang), which
# carries Apple's libc headers and a Mach-O linker, for arm64 (macOS 11) and x86_64 (macOS 10.15, the
# first with aligned_alloc), warnings as errors: every C file compiled as macOS compiles it, the
# .dylib, the C testers and examples/c's program linked against libSystem.  Nothing runs: this cannot
# replace a Mac (the release workflow's macOS jobs run the tests), but it catches a Linux-only call,
# header or feature macro.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON=${PYTHON:-python3}
"$PYTHON" -m ziglang version > /dev/null 2>&1 || "$PYTHON" -m pip install --quiet ziglang
for target in aarch64-macos.11.0 x86_64-macos.10.15; do
    build="build/macos-$target"
    make -s -C "$root/csrc" -j"$(nproc 2>/dev/null || echo 2)" CC="$PYTHON -m ziglang cc -target $target" \
        AR="$PYTHON -m ziglang ar" BUILD="$build" CFLAGS="-O2 -Werror" \
        "$build/libxnorinfer.a" "$build/libxnorinfer.dylib" "$build/test_kernels" "$build/test_runtime"
    $PYTHON -m ziglang cc -target "$target" -O2 -Werror -std=c11 -Wall -Wextra -I"$root/csrc/include" \
        "$root/examples/c/digits.c" "$root/csrc/$build/libxnorinfer.a" -o "$root/csrc/$build/digits" -lpthread -lm
    echo "macOS $target: $(cd "$root/csrc/$build" && ls libxnorinfer.a libxnorinfer.dylib test_kernels test_runtime digits | tr '\n' ' ')"
done
