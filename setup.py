"""Build: the cffi extension (C kernels) is compiled through cffi_modules; everything else is in
pyproject.toml.  If no C compiler is available the install fails loudly; set
XNORINFER_NO_EXTENSION=1 to install the pure-Python package, which then runs on the Numba backend.

cffi compiles the extension against CPython's stable ABI (it defines Py_LIMITED_API and names the
library clib.abi3.so), so the wheel is tagged cp39-abi3: one wheel per platform serves every CPython
from 3.9 on, as one wheel per architecture serves every CPU (the ISA is chosen at run time).  A
free-threaded CPython has no stable ABI: there the wheel keeps its version-specific tag."""
import os
import sysconfig

from setuptools import setup

extension = not os.environ.get("XNORINFER_NO_EXTENSION")
cffi_modules = ["xnorinfer/kernels/build_ffi.py:ffibuilder"] if extension else []
options = {}
if extension and not sysconfig.get_config_var("Py_GIL_DISABLED"):
    options["bdist_wheel"] = {"py_limited_api": "cp39"}
setup(cffi_modules=cffi_modules, options=options)
