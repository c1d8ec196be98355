"""Check what `python -m build` made, before anything is uploaded (.ci/run runs it on every build).

    python tools/check_dist.py dist/xnorinfer-*.whl dist/xnorinfer-*.tar.gz

The wheel must hold the compiled extension, py.typed, the licence, the demo model and its data, and
nothing of the source tree that is not the package (tests, csrc/, build objects).  The sdist must hold
every C source, header and template under csrc/ (as this checkout has them, build/ aside), the cffi
build script, setup.py, pyproject.toml, the licence and the test suite with its fixtures: everything
a wheel is built and tested from.  Exits 1 naming every problem found.
"""
import argparse
import fnmatch
import os
import sys
import tarfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def check_wheel(path):
    names = zipfile.ZipFile(path).namelist()
    problems = []

    def need(pattern, what):
        if not any(fnmatch.fnmatchcase(n, pattern) for n in names):
            problems.append(f"{what} ({pattern}) is missing")

    need("xnorinfer/kernels/clib*.so", "the compiled C extension")
    need("xnorinfer/py.typed", "the PEP 561 marker")
    need("xnorinfer-*.dist-info/licenses/LICENSE", "the licence")
    need("xnorinfer/demo/digits_bnn.onnx", "the demo model")
    need("xnorinfer/demo/digits_test.npz", "the demo data")
    need("xnorinfer/__init__.py", "the package")
    stray = [n for n in names if not (n.startswith("xnorinfer/") or fnmatch.fnmatchcase(n, "xnorinfer-*.dist-info/*")
                                      or fnmatch.fnmatchcase(n, "xnorinfer.libs/*"))]
    stray += [n for n in names if n.endswith((".o", ".c", ".h", ".inc", ".d", ".pyc")) or "/tests/" in n
              or n.startswith(("tests/", "csrc/")) or "__pycache__" in n]
    problems += [f"{n} does not belong in the wheel" for n in sorted(set(stray))]
    return problems, len(names)


def _repo_files(top, suffixes):
    found = []
    for base, dirs, files in os.walk(os.path.join(ROOT, top)):
        dirs[:] = [d for d in dirs if d not in ("build", "__pycache__")]
        found += [os.path.relpath(os.path.join(base, f), ROOT) for f in files if f.endswith(suffixes)]
    return sorted(found)


def check_sdist(path):
    with tarfile.open(path) as tar:
        members = tar.getnames()
    prefix = members[0].split("/")[0] + "/"
    names = {m[len(prefix):] for m in members if m.startswith(prefix)}
    problems = []
    wanted = _repo_files("csrc", (".c", ".h", ".inc")) + ["csrc/Makefile", "xnorinfer/kernels/build_ffi.py",
                                                          "xnorinfer/runtime/schema.py", "setup.py", "pyproject.toml",
                                                          "LICENSE", "README.md", "tests/conftest.py"]
    wanted += _repo_files("tests", (".py", ".onnx", ".tflite", ".npz", ".json"))
    problems += [f"{f} is missing" for f in wanted if f not in names]
    problems += [f"{n} does not belong in the sdist" for n in sorted(names)
                 if n.startswith("csrc/build/") or n.endswith((".o", ".so", ".d", ".pyc")) or "__pycache__" in n]
    return problems, len(names)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="wheels (.whl) and sdists (.tar.gz)")
    args = parser.parse_args()
    failed = False
    for path in args.files:
        if path.endswith(".whl"):
            problems, count = check_wheel(path)
        elif path.endswith(".tar.gz"):
            problems, count = check_sdist(path)
        else:
            parser.error(f"{path}: not a .whl or a .tar.gz")
        for p in problems:
            print(f"FAIL {os.path.basename(path)}: {p}")
        if not problems:
            print(f"ok   {os.path.basename(path)}: {count} files, contents as required")
        failed |= bool(problems)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
