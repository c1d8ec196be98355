"""Side by side with bnn-lab 1.0.0 (the packed binary GEMM on PyPI), on the same packed operands.

bnn-lab pins torch<2.13 and numpy<2, so it is not installed next to xnorinfer: its wheel is unpacked and
its native kernel called directly through ctypes (the same entry point its Python wrapper calls):

    pip download --no-deps -d /tmp/bnnlab bnn-lab==1.0.0
    mkdir -p /tmp/bnnx && unzip -q -o /tmp/bnnlab/*.whl -d /tmp/bnnx
    OMP_WAIT_POLICY=passive python benchmarks/compare_bnn_lab.py /tmp/bnnx

OMP_WAIT_POLICY=passive stops bnn-lab's OpenMP threads from spinning while xnorinfer runs (and so
stealing its second core); xnorinfer's own workers sleep after ~0.1 ms.  Both produce the same
results (checked) in the same +-1 bit convention (bit 1 = -1).
"""
import ctypes
import glob
import sys

import numpy as np

import xnorinfer
from xnorinfer.tools.bench import gemm_operands, interleaved_best


def load_bnn_lab(root):
    for dep in sorted(glob.glob(f"{root}/bnn_lab.libs/*.so*")):
        ctypes.CDLL(dep, mode=ctypes.RTLD_GLOBAL)
    (so,) = glob.glob(f"{root}/bnn/kernels/_binary_gemm_native*.so")
    lib = ctypes.CDLL(so)
    p64 = ctypes.POINTER(ctypes.c_uint64)
    lib.binary_gemm_u64.argtypes = [p64, p64, ctypes.POINTER(ctypes.c_float)] + [ctypes.c_int] * 4
    lib.binary_gemm_set_num_threads.argtypes = [ctypes.c_int]
    return lib


def main(root):
    lib = load_bnn_lab(root)
    p64, pf = ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(ctypes.c_float)
    print(f"xnorinfer {xnorinfer.backend_info()}")
    for m, n, k in [(1024, 1024, 4096), (1, 4096, 4096)]:
        _, _, a, b = gemm_operands(m, n, k)
        y_bnn, y_ours = np.empty((m, n), np.float32), np.empty((m, n), np.int32)
        pa, pb, py = a.ctypes.data_as(p64), b.ctypes.data_as(p64), y_bnn.ctypes.data_as(pf)
        for threads in (1, 2):
            lib.binary_gemm_set_num_threads(threads)

            def run_bnn():
                lib.binary_gemm_u64(pa, pb, py, m, n, a.shape[1], k)

            def run_ours():
                xnorinfer.bgemm(a, b, k, out=y_ours, num_threads=threads)

            run_bnn()
            run_ours()
            assert (y_bnn == y_ours).all(), "results differ"
            t_bnn, t_ours = interleaved_best([run_bnn, run_ours], 7)
            macs = m * n * k
            print(f"{m}x{n}x{k} threads={threads}: bnn-lab {macs / t_bnn / 1e9:7.1f} GMAC/s   "
                  f"xnorinfer {macs / t_ours / 1e9:7.1f} GMAC/s   xnorinfer/bnn-lab {t_bnn / t_ours:5.2f}x")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
