"""Binary convolution (packed and int32 output) against onnxruntime's float32 Conv, same shape and threads.

    pip install onnxruntime onnx && pytest benchmarks/test_bench_conv.py

The session summary prints the ratios; `xnorinfer bench conv` prints the same comparison interleaved.
"""
import numpy as np
import pytest

import xnorinfer
from xnorinfer.tools.bench import _ort_conv_session
from xnorinfer.ops import BConv2d

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is the float32 baseline of this benchmark")
CONVS = [(56, 56, 256, 256, 3, 1), (14, 14, 512, 512, 3, 1), (56, 56, 256, 256, 1, 1), (28, 28, 256, 256, 3, 2)]


def conv_id(c):
    return f"{c[0]}x{c[1]}x{c[2]}-{c[3]}-k{c[4]}s{c[5]}"


def operands(h, w, ci, co, k):
    rng = np.random.default_rng(0)
    return (rng.standard_normal((1, h, w, ci), dtype=np.float32),
            rng.standard_normal((co, k, k, ci), dtype=np.float32),
            rng.standard_normal(co, dtype=np.float32), rng.standard_normal(co, dtype=np.float32))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("output", ["packed", "int32"])
@pytest.mark.parametrize("conv", CONVS, ids=conv_id)
def test_binary_conv(benchmark, record, conv, output, threads):
    h, w, ci, co, k, s = conv
    x, wt, scale, bias = operands(h, w, ci, co, k)
    kwargs = dict(scale=scale, bias=bias) if output == "packed" else {}
    layer = BConv2d(xnorinfer.pack(wt), ci, stride=s, padding=k // 2, output=output, **kwargs)
    xp = xnorinfer.pack(x)
    benchmark.group = f"conv {conv_id(conv)} threads={threads}"
    benchmark(layer, xp, threads)
    record((f"conv {conv_id(conv)}", threads), f"binary-{output}", benchmark.stats.stats.min * 1e3)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("conv", CONVS, ids=conv_id)
def test_onnxruntime_float32_conv(benchmark, record, conv, threads):
    h, w, ci, co, k, s = conv
    x, wt, _, _ = operands(h, w, ci, co, k)
    sess = _ort_conv_session(ci, co, k, s, k // 2, threads, np.ascontiguousarray(wt.transpose(0, 3, 1, 2)))
    feed = {"x": np.ascontiguousarray(x.transpose(0, 3, 1, 2))}
    benchmark.group = f"conv {conv_id(conv)} threads={threads}"
    benchmark(sess.run, None, feed)
    record((f"conv {conv_id(conv)}", threads), "ort-float32", benchmark.stats.stats.min * 1e3)
