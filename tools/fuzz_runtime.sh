#!/usr/bin/env bash
# Fuzz the C runtime (csrc/runtime/) with mutated .xnor files under ASan + UBSan (and LSan at exit).
#
#   tools/fuzz_runtime.sh [CASES] [JOBS]      default 100000 cases, split over JOBS processes (nproc)
#
# Seeds: every fixture model converted by tools/make_runtime_cases.py (the digits demo, tests/fixtures/*/*/
# model.onnx|tflite; models without a C runtime program are skipped), into csrc/build/fuzz-seeds/, unless
# SEED_DIR names a directory that already holds them (any *.xnor below it).  Builds csrc/tests/
# fuzz_runtime.c with `make -C csrc fuzz-build`, runs job j with seed FUZZ_SEED + j, and prints the
# cases, how many opened and how many ran.  A sanitizer report or a failed check stops that job: its
# log is printed, the case is saved under CRASH_DIR (default /tmp/fuzz_crashes) and the exit status
# is non-zero.  PYTHON: the interpreter with xnorinfer installed (default python3).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cases=${1:-100000}
jobs=${2:-$(nproc)}
base=${FUZZ_SEED:-1}
crash_dir=${CRASH_DIR:-/tmp/fuzz_crashes}

if [ -z "${SEED_DIR:-}" ]; then
    SEED_DIR="$root/csrc/build/fuzz-seeds"
    "${PYTHON:-python3}" "$root/tools/make_runtime_cases.py" "$SEED_DIR" --isa scalar > "$SEED_DIR.log" 2>&1 ||
        { cat "$SEED_DIR.log"; exit 1; }
fi
mapfile -t seeds < <(find "$SEED_DIR" -name '*.xnor' | sort)
[ "${#seeds[@]}" -gt 0 ] || { echo "no .xnor seeds under $SEED_DIR"; exit 1; }

make -s -C "$root/csrc" -j"$jobs" fuzz-build
harness="$root/csrc/build/$(gcc -dumpmachine | cut -d- -f1)-asan/fuzz_runtime"

export ASAN_OPTIONS="detect_leaks=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:${UBSAN_OPTIONS:-}"
logs="$(mktemp -d)"
start=$(date +%s%N)
pids=()
for ((j = 0; j < jobs; j++)); do
    n=$((cases / jobs + (j < cases % jobs ? 1 : 0)))
    "$harness" -n "$n" -s $((base + j)) -o "$crash_dir" "${seeds[@]}" > "$logs/$j.log" 2>&1 &
    pids+=($!)
done
failed=0
for ((j = 0; j < jobs; j++)); do
    if ! wait "${pids[$j]}"; then
        failed=1
        echo "== job $j (seed $((base + j))) FAILED:"
        cat "$logs/$j.log"
    fi
done
seconds=$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
cat "$logs"/*.log | grep '^seed ' || true
# "seed S: N cases from F seed files: O opened, R ran (...)"
cat "$logs"/*.log | awk -v jobs="$jobs" -v seeds="${#seeds[@]}" -v secs="$seconds" -v failed="$failed" '
    /^seed / { n += $3; o += $9; r += $11 }
    END { printf "fuzz_runtime: %d cases (%d jobs, %d seed files) in %.1f s: %d opened, %d ran, %s\n",
                 n, jobs, seeds, secs, o, r, failed ? "CRASHED (see above)" : "0 crashes, no leaks" }'
rm -rf "$logs"
exit $failed
