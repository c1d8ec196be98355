"""cffi build script (out-of-line API mode): compiles every C file of csrc/ into xnorinfer.kernels.clib.

The C declarations are read from the one public header, so the binding cannot drift from it.
Each ISA path carries its own target attributes; nothing here asks for -march=native.
"""
import glob
import os
import re

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CSRC = os.path.join(ROOT, "csrc")
HEADER = os.path.join(CSRC, "include", "xnorinfer.h")


def _cdef_from_header(text):
    """The header minus comments, preprocessor lines, the C++ guard and the export macro."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"#ifdef __cplusplus.*?#endif", "", text, flags=re.S)
    text = "\n".join(line for line in text.splitlines()
                     if not line.lstrip().startswith("#") or re.fullmatch(r"#define \w+ \d+\s*", line))
    return text.replace("XNOR_API ", "")


def _sources():
    files = [os.path.join(CSRC, "dispatch.c"), os.path.join(CSRC, "threadpool.c")]
    for sub in ("pack", "bgemm", "bconv", "fconv", "fops", "runtime"):
        files += sorted(glob.glob(os.path.join(CSRC, sub, "*.c")))
    # setuptools wants paths relative to setup.py
    return [os.path.relpath(f, ROOT) for f in files]


ffibuilder = FFI()
with open(HEADER) as f:
    ffibuilder.cdef(_cdef_from_header(f.read()))
ffibuilder.set_source(
    "xnorinfer.kernels.clib",
    '#include "xnorinfer.h"',
    sources=_sources(),
    include_dirs=[os.path.relpath(os.path.join(CSRC, "include"), ROOT),
                  os.path.relpath(CSRC, ROOT)],
    extra_compile_args=["-O2", "-std=gnu11", "-fvisibility=hidden", "-ffp-contract=off"],
    libraries=["pthread", "m"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
