#!/usr/bin/env bash
# Cross-compile the kernel library for AArch64 and run the C kernel tester under qemu-aarch64.
# Installs the cross toolchain and qemu (Debian/Ubuntu packages) when they are missing; CI runs this
# as root.  Usage: csrc/tests/run-aarch64.sh [extra make arguments]
set -euo pipefail

csrc_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if ! command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || ! command -v qemu-aarch64 >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
fi

make -C "$csrc_dir" CROSS=aarch64-linux-gnu- test "$@"
