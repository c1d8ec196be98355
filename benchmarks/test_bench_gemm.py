"""Binary GEMM against numpy float32 matmul on the same shapes and thread counts.

    pytest benchmarks/ --benchmark-columns=min,mean,rounds

The summary at the end prints the ratios (binary / float32) and the fraction of the CPU's popcount peak.
"""
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import xnorinfer
from xnorinfer.tools.bench import gemm_operands

SHAPES = [(1024, 1024, 4096), (1, 4096, 4096), (3136, 256, 2304), (64, 64, 64)]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("m,n,k", SHAPES, ids=[f"{m}x{n}x{k}" for m, n, k in SHAPES])
def test_binary_gemm(benchmark, record, m, n, k, threads):
    _, _, a, b = gemm_operands(m, n, k)
    out = np.empty((m, n), np.int32)
    benchmark.group = f"{m}x{n}x{k} threads={threads}"
    benchmark(xnorinfer.bgemm, a, b, k, out=out, num_threads=threads)
    record((f"{m}x{n}x{k}", threads), "binary", m * n * k / benchmark.stats.stats.min / 1e9)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("m,n,k", SHAPES, ids=[f"{m}x{n}x{k}" for m, n, k in SHAPES])
def test_numpy_float32_matmul(benchmark, record, m, n, k, threads):
    a, b, _, _ = gemm_operands(m, n, k)
    out = np.empty((m, n), np.float32)
    benchmark.group = f"{m}x{n}x{k} threads={threads}"
    with threadpool_limits(limits=threads, user_api="blas"):
        benchmark(np.matmul, a, b.T, out=out)
    record((f"{m}x{n}x{k}", threads), "float32", m * n * k / benchmark.stats.stats.min / 1e9)


def test_pack_float32(benchmark):
    x = np.random.default_rng(0).standard_normal((4096, 4096), dtype=np.float32)
    benchmark(xnorinfer.pack, x)
    benchmark.extra_info["GB/s"] = x.nbytes / benchmark.stats.stats.min / 1e9


def test_call_overhead_1x64x64(benchmark):
    _, _, a, b = gemm_operands(1, 64, 64)
    benchmark(xnorinfer.bgemm, a, b, 64)
