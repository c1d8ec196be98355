"""Build: the cffi extension (C kernels) is compiled through cffi_modules; everything else is in
pyproject.toml.  If no C compiler is available the install fails loudly; set
XNORINFER_NO_EXTENSION=1 to install the pure-Python package, which then runs on the Numba backend."""
import os

from setuptools import setup

cffi_modules = [] if os.environ.get("XNORINFER_NO_EXTENSION") else ["xnorinfer/kernels/build_ffi.py:ffibuilder"]
setup(cffi_modules=cffi_modules)
