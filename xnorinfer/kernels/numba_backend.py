"""The Numba backend: the kernel core and the binary layers compiled by Numba (numba_core.py,
numba_pack.py, numba_gemm.py, numba_conv.py), for installs without the C library or
XNORINFER_BACKEND=numba."""
import dataclasses
import os

import numpy as np


class NumbaBackend:
    name = "numba"

    def __init__(self):
        from . import numba_gemm, numba_pack
        self.pack_rows = numba_pack.pack_rows
        self.unpack_rows = numba_pack.unpack_rows
        self._bgemm = numba_gemm.bgemm

    def bgemm(self, a, b, k, out, num_threads):
        self._bgemm(a, b, k, out, num_threads or self.num_threads())

    # Binary layers live in their own module (imported, and so compiled, only when used).
    def layout_key(self):
        return ("numba",)

    def prepare_bconv(self, w, geometry):
        from . import numba_conv
        return numba_conv.prepare_bconv(w, geometry)

    def bconv2d(self, x, prepared, geometry, transform, out, num_threads):
        from . import numba_conv
        numba_conv.bconv2d(x, prepared, geometry, transform, out, num_threads or self.num_threads())

    def bconv_plan(self, prepared, geometry, transform):
        def run(x, out, num_threads, residual=None):
            if residual is None:
                return self.bconv2d(x, prepared, geometry, transform, out, num_threads)
            # the fused shortcut in numpy: the transform without its clamp, the add, then the clamp
            unclamped = dataclasses.replace(transform, clamp=(-np.inf, np.inf))
            self.bconv2d(x, prepared, geometry, unclamped, out, num_threads)
            np.add(out, residual, out=out)
            lo, hi = transform.clamp
            if lo > -np.inf or hi < np.inf:
                np.clip(out, lo, hi, out=out)
        return run

    def bmaxpool2d(self, x, geometry, out, num_threads):
        from . import numba_conv
        numba_conv.bmaxpool2d(x, geometry, out, num_threads or self.num_threads())

    def num_threads(self):
        import numba
        env = os.environ.get("XNORINFER_NUM_THREADS", "")
        if env.isdigit() and int(env) >= 1:
            return min(int(env), numba.config.NUMBA_NUM_THREADS)
        return numba.config.NUMBA_NUM_THREADS

    def info(self):
        from . import numba_core
        info = {"backend": "numba", "isa": None, "supported_isas": [],
                "num_threads": self.num_threads()}
        info.update(numba_core.info())
        return info
