"""The Numba backend: the complete fallback for when the compiled C library is missing (or for
XNORINFER_BACKEND=numba).

It covers every kernel of the C library that the Python package calls: pack (float16/32/64, int8/16/
32/64) and unpack, the binary GEMM, and the binary layers -- the convolution (so the dense layer, a 1x1
convolution) with the fused output transforms int32, float32 (scale, bias, clamp, accumulator clamp,
a fused shortcut's residual) and packed sign bits by thresholds, and bit max-pooling.  Every result is
bit for bit the C library's (csrc/include/xnorinfer.h states the semantics); the test suite runs every
kernel test on both.

What it deliberately does not do: the float layers and float tensor ops (conv2d_f32 with its Winograd
path, float pooling, the elementwise ops) and the C runtime that runs a whole program in one call are
C-only; without the library the float layers and ops run in numpy (the convolutions through BLAS),
and a session uses its Python executor.

Modules: numba_core.py (compile options, intrinsics, the thread policy, the micro-kernels that GEMM and
the convolution share), numba_pack.py, numba_gemm.py, numba_conv.py (the binary layers).  Numba
compiles each kernel on its first call (then caches it on disk).
"""
import os


class NumbaBackend:
    name = "numba"

    def __init__(self):
        from . import numba_gemm, numba_pack
        self.pack_rows = numba_pack.pack_rows
        self.unpack_rows = numba_pack.unpack_rows
        self._bgemm = numba_gemm.bgemm

    def bgemm(self, a, b, k, out, num_threads):
        self._bgemm(a, b, k, out, num_threads or self.num_threads())

    # The binary layers' module is imported, and so compiled, only when a layer runs.
    def layout_key(self):
        return ("numba",)

    def prepare_bconv(self, w, geometry):
        from . import numba_conv
        return numba_conv.prepare_bconv(w, geometry)

    def bconv2d(self, x, prepared, geometry, transform, out, num_threads):
        from . import numba_conv
        numba_conv.bconv2d(x, prepared, geometry, transform, out, num_threads or self.num_threads())

    def bconv_plan(self, prepared, geometry, transform):
        from . import numba_conv
        layer = numba_conv.plan(prepared, geometry, transform)

        def run(x, out, num_threads, residual=None):
            layer(x, out, num_threads or self.num_threads(), residual)
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
