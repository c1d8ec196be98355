"""cffi build script (out-of-line API mode): compiles every C file of csrc/ into xnorinfer.kernels.clib.

The C declarations are read from the public header, xnorinfer.h, and the headers it includes, so the
binding cannot drift from them; the C files generated from the runtime's op schema must be those of
xnorinfer/runtime/schema.py, or the build stops.
Each ISA path carries its own target attributes; the build never targets the building machine's CPU.
"""
import glob
import importlib.util
import os
import re

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CSRC = os.path.join(ROOT, "csrc")
INCLUDE = os.path.join(CSRC, "include")
HEADER = os.path.join(INCLUDE, "xnorinfer.h")
LOCAL_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"]+)"[^\n]*$', re.M)


def _header_text(path, seen):
    """The header's text with each local #include "..." replaced by that header's text, found as the
    compiler finds it (beside the including file, then in csrc/include); a header already read becomes
    nothing, as its include guard makes it.  Comments go first, so a commented-out include is not read."""
    path = os.path.normpath(path)
    if path in seen:
        return ""
    seen.add(path)
    with open(path) as f:
        text = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)

    def included(match):
        for base in (os.path.dirname(path), INCLUDE):
            name = os.path.join(base, match.group(1))
            if os.path.isfile(name):
                return _header_text(name, seen)
        raise FileNotFoundError(f'{path}: #include "{match.group(1)}" not found')

    return LOCAL_INCLUDE.sub(included, text)


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
        files += sorted(glob.glob(os.path.join(CSRC, sub, "**", "*.c"), recursive=True))
    # setuptools wants paths relative to setup.py
    return [os.path.relpath(f, ROOT) for f in files]


def _check_schema():
    """The op schema's generated C must match the schema (read by path: the build has no numpy)."""
    spec = importlib.util.spec_from_file_location("schema", os.path.join(ROOT, "xnorinfer", "runtime", "schema.py"))
    schema = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(schema)
    stale = schema.stale_files(CSRC)
    if stale:
        raise RuntimeError(f"{', '.join(stale)} do not match xnorinfer/runtime/schema.py: run "
                           "`python xnorinfer/runtime/schema.py --write` and rebuild")


_check_schema()
ffibuilder = FFI()
ffibuilder.cdef(_cdef_from_header(_header_text(HEADER, set())))
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
