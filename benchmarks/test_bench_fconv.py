"""Float convs that Winograd F(4x4, 3x3) computes, against the direct conv (the same C library, same
shape and threads) and onnxruntime's float32 Conv.

    pip install onnxruntime onnx && pytest benchmarks/test_bench_fconv.py

The session summary prints the ratios measured side by side in this run.
"""
import numpy as np
import pytest

from xnorinfer import ops
from xnorinfer.kernels import get_backend
from xnorinfer.tools.bench import _ort_conv_session

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is the float32 baseline of this benchmark")
# (h, w, c_in, c_out, kernel, stride, pad): AlexNet's stem (224x224x3, 11x11 stride 4 -> 56x56x64 with
# TFLite's SAME padding), and 3x3 stride-1 convs of VGG-like widths
CONVS = [(224, 224, 3, 64, 11, 4, 3), (56, 56, 64, 64, 3, 1, 1), (28, 28, 128, 128, 3, 1, 1)]


def conv_id(c):
    return f"{c[0]}x{c[1]}x{c[2]}-{c[3]}-k{c[4]}s{c[5]}"


def operands(h, w, ci, co, k):
    rng = np.random.default_rng(0)
    return (rng.standard_normal((1, h, w, ci), dtype=np.float32), rng.standard_normal((co, k, k, ci), dtype=np.float32),
            rng.standard_normal(co, dtype=np.float32))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("algorithm", ["winograd", "direct"])
@pytest.mark.parametrize("conv", CONVS, ids=conv_id)
def test_float_conv(benchmark, record, conv, algorithm, threads):
    h, w, ci, co, k, s, pad = conv
    x, wt, bias = operands(h, w, ci, co, k)
    layer = ops.Conv2d(wt, bias, stride=s, padding=pad)
    layer(x, threads)  # prepares the Winograd weights
    if algorithm == "winograd":
        assert any(v is not None for v in layer._prepared.values()), "this conv does not run Winograd on this ISA path"
        fn = lambda: layer(x, threads)  # noqa: E731
    else:
        backend, out = get_backend(), np.empty(layer(x, threads).shape, np.float32)
        geometry = ops._geometry(x.shape, ci, co, (k, k), s, pad, 1, 1, 0)[0]
        fn = lambda: backend.conv2d_f32(x, layer._direct_weights, layer._direct_bias, geometry, out, threads)  # noqa: E731
    benchmark.group = f"fconv {conv_id(conv)} threads={threads}"
    benchmark(fn)
    record((f"fconv {conv_id(conv)}", threads), algorithm, benchmark.stats.stats.min * 1e3)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("conv", CONVS, ids=conv_id)
def test_onnxruntime_float32_conv(benchmark, record, conv, threads):
    h, w, ci, co, k, s, pad = conv
    x, wt, _ = operands(h, w, ci, co, k)
    sess = _ort_conv_session(ci, co, k, s, pad, threads, np.ascontiguousarray(wt.transpose(0, 3, 1, 2)))
    feed = {"x": np.ascontiguousarray(x.transpose(0, 3, 1, 2))}
    benchmark.group = f"fconv {conv_id(conv)} threads={threads}"
    benchmark(sess.run, None, feed)
    record((f"fconv {conv_id(conv)}", threads), "ort", benchmark.stats.stats.min * 1e3)
