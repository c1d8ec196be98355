"""Float layers around the binary ones (ops.conv2d, the float pools of the graph executor) on every
path: the C direct / depthwise conv and pools on each ISA, and numpy/BLAS under the Numba backend,
against plain float64 loops.  Convs agree to float32 rounding (sums run in another order, with FMA);
max pooling exactly; average pooling exactly on the C paths (double sums in tap order, one division)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from xnorinfer import ops
from xnorinfer.operators import apply


def conv_f64(x, w_ohwi, bias, stride, pads, dilation, groups):
    n, h, wd, c = x.shape
    o, kh, kw, cg = w_ohwi.shape
    (sh, sw), (dh, dw), (top, bottom, left, right) = stride, dilation, pads
    xp = np.pad(x.astype(np.float64), ((0, 0), (top, bottom), (left, right), (0, 0)))
    oh = (h + top + bottom - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + left + right - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, oh, ow, o)) + (0 if bias is None else bias)
    mag = np.zeros((n, oh, ow, o)) + (0 if bias is None else np.abs(bias))
    og = o // groups
    for ky in range(kh):
        for kx in range(kw):
            tap = xp[:, ky * dh: ky * dh + sh * (oh - 1) + 1: sh, kx * dw: kx * dw + sw * (ow - 1) + 1: sw, :]
            for g in range(groups):
                wg = w_ohwi[g * og:(g + 1) * og, ky, kx, :].astype(np.float64)
                part = tap[..., g * cg:(g + 1) * cg]
                out[..., g * og:(g + 1) * og] += np.einsum("nhwc,oc->nhwo", part, wg)
                mag[..., g * og:(g + 1) * og] += np.einsum("nhwc,oc->nhwo", np.abs(part), np.abs(wg))
    return out, mag


def pool_f64(x, kind, kernel, stride, pads, dilation):
    """Tap-order float64 sums and maxima over the taps inside the input."""
    n, h, w, c = x.shape
    (kh, kw), (sh, sw), (dh, dw), (top, bottom, left, right) = kernel, stride, dilation, pads
    oh = (h + top + bottom - dh * (kh - 1) - 1) // sh + 1
    ow = (w + left + right - dw * (kw - 1) - 1) // sw + 1
    out = np.empty((n, oh, ow, c), np.float32)
    for oy in range(oh):
        for ox in range(ow):
            total, count, best = np.zeros((n, c)), 0, np.full((n, c), -np.inf, np.float32)
            for ky in range(kh):
                for kx in range(kw):
                    iy, ix = oy * sh + ky * dh - top, ox * sw + kx * dw - left
                    if 0 <= iy < h and 0 <= ix < w:
                        total += x[:, iy, ix, :].astype(np.float64)
                        best = np.maximum(best, x[:, iy, ix, :])
                        count += 1
            if kind == "max":
                out[:, oy, ox] = best
            else:
                with np.errstate(invalid="ignore", divide="ignore"):
                    out[:, oy, ox] = (total / (kh * kw if kind == "avg_include_pad" else count)).astype(np.float32)
    return out


geometry = st.fixed_dictionaries(dict(
    n=st.integers(1, 2), h=st.integers(1, 11), w=st.integers(1, 11), c=st.integers(1, 40),
    o=st.integers(1, 40), kh=st.integers(1, 5), kw=st.integers(1, 5), stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)), pads=st.tuples(*[st.integers(0, 2)] * 4),
    depthwise=st.booleans(), bias=st.booleans(), threads=st.integers(1, 2)))


def _fits(g):
    return g["h"] + g["pads"][0] + g["pads"][1] >= g["dilation"][0] * (g["kh"] - 1) + 1 and \
        g["w"] + g["pads"][2] + g["pads"][3] >= g["dilation"][1] * (g["kw"] - 1) + 1


@settings(max_examples=60)
@given(g=geometry, seed=st.integers(0, 2**32 - 1))
def test_conv2d_against_float64(kernel_path, g, seed):
    if not _fits(g):
        return
    rng = np.random.default_rng(seed)
    c = g["c"]
    o, groups = (c, c) if g["depthwise"] else (g["o"], 1)
    x = rng.normal(size=(g["n"], g["h"], g["w"], c)).astype(np.float32)
    w = rng.normal(size=(o, g["kh"], g["kw"], c // groups)).astype(np.float32)
    bias = rng.normal(size=o).astype(np.float32) if g["bias"] else None
    got = ops.conv2d(x, w, bias, stride=g["stride"], padding=g["pads"], dilation=g["dilation"], groups=groups,
                     num_threads=g["threads"])
    want, mag = conv_f64(x, w, bias, g["stride"], g["pads"], g["dilation"], groups)
    assert got.shape == want.shape and got.dtype == np.float32
    assert np.all(np.abs(got - want) <= 1e-5 * mag + 1e-6)


# Convs Winograd's F(4x4, 3x3) takes on the C paths other than ref: a 3x3 kernel per stride phase
# (k in [2s+1, 3s] for stride s), enough channels, outputs of at least 8x8.
winograd_geometry = st.fixed_dictionaries(dict(
    n=st.integers(1, 2), oh=st.integers(8, 21), ow=st.integers(8, 21), c=st.integers(1, 20), o=st.integers(16, 50),
    stride=st.tuples(st.integers(1, 4), st.integers(1, 4)), kpick=st.tuples(st.integers(0, 3), st.integers(0, 3)),
    pads=st.tuples(*[st.integers(0, 3)] * 4), bias=st.booleans(), threads=st.integers(1, 2)))


def _winograd_case(g):
    (sh, sw), (ah, aw) = g["stride"], g["kpick"]
    kh, kw = 2 * sh + 1 + ah % sh, 2 * sw + 1 + aw % sw
    pads = tuple(min(p, k - 1) for p, k in zip(g["pads"], (kh, kh, kw, kw)))
    h = max(1, (g["oh"] - 1) * sh + kh - pads[0] - pads[1])
    w = max(1, (g["ow"] - 1) * sw + kw - pads[2] - pads[3])
    c = max(g["c"], -(-8 // (sh * sw)))  # at least 8 phase channels
    return kh, kw, pads, h, w, c


@settings(max_examples=40)
@given(g=winograd_geometry, seed=st.integers(0, 2**32 - 1))
def test_winograd_convs_against_float64(kernel_path, g, seed):
    kh, kw, pads, h, w, c = _winograd_case(g)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(g["n"], h, w, c)).astype(np.float32)
    wt = rng.normal(size=(g["o"], kh, kw, c)).astype(np.float32)
    bias = rng.normal(size=g["o"]).astype(np.float32) if g["bias"] else None
    layer = ops.Conv2d(wt, bias, stride=g["stride"], padding=pads)
    got = layer(x, num_threads=g["threads"])
    want, mag = conv_f64(x, wt, bias, g["stride"], pads, (1, 1), 1)
    assert got.shape == want.shape
    # Winograd's rounding scales with the whole 4x4 output tile's inputs: an output at a padded border
    # with few terms of its own shares its tile's error, so the bound is the tile's largest sum of |products|
    n, oh, ow, o = mag.shape
    padded = np.zeros((n, -(-oh // 4) * 4, -(-ow // 4) * 4, o))
    padded[:, :oh, :ow] = mag
    tile = padded.reshape(n, padded.shape[1] // 4, 4, padded.shape[2] // 4, 4, o).max(axis=(2, 4))
    tile_mag = np.repeat(np.repeat(tile, 4, 1), 4, 2)[:, :oh, :ow]
    assert np.all(np.abs(got - want) <= 1e-5 * tile_mag + 1e-6)
    uses = kernel_path.name == "c" and kernel_path.isa() != "ref" and got.shape[1] >= 8 and got.shape[2] >= 8
    assert any(v is not None for v in layer._prepared.values()) == uses  # Winograd ran where it applies, and only there
    np.testing.assert_array_equal(layer(x, num_threads=g["threads"]), got)  # the cached weights: same bits
    # +-1 / 0 inputs and power-of-two weights: every sum is exact, and stays exact (no Winograd rounding)
    xe = rng.integers(-1, 2, size=x.shape).astype(np.float32)
    we = np.where(rng.random(wt.shape) < 0.5, -0.5, 0.5).astype(np.float32)
    exact, _ = conv_f64(xe, we, None, g["stride"], pads, (1, 1), 1)
    np.testing.assert_array_equal(ops.Conv2d(we, None, stride=g["stride"], padding=pads)(xe), exact.astype(np.float32))


@settings(max_examples=60)
@given(g=geometry, seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(["max", "avg", "avg_include_pad"]))
def test_nhwc_pools_against_float64(kernel_path, g, seed, kind):
    """The graph executor's MaxPool / AveragePool in NHWC (what passes/nhwc.py plans)."""
    if not _fits(g):
        return
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(g["n"], g["h"], g["w"], g["c"])).astype(np.float32)
    top, bottom, left, right = g["pads"]
    attrs = dict(kernel_shape=[g["kh"], g["kw"]], strides=list(g["stride"]), dilations=list(g["dilation"]),
                 pads=[top, left, bottom, right], nhwc=1)
    if kind != "max":
        if g["dilation"] != (1, 1):
            return  # ONNX AveragePool has dilations only from opset 19; the numpy path has none
        attrs["count_include_pad"] = int(kind == "avg_include_pad")
    got = apply("MaxPool" if kind == "max" else "AveragePool", [x], attrs, num_threads=g["threads"])[0]
    want = pool_f64(x, kind, (g["kh"], g["kw"]), g["stride"], (top, bottom, left, right), g["dilation"])
    assert got.shape == want.shape
    if kind == "max" or kernel_path.name == "c":
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


@settings(max_examples=30)
@given(n=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9), c=st.integers(1, 70), o=st.integers(1, 70),
       threads=st.integers(1, 2), seed=st.integers(0, 2**32 - 1))
def test_pointwise_conv_and_dense(kernel_path, n, h, w, c, o, threads, seed):
    """1x1 convs with unit strides and no padding (and Dense) run as one product over all pixels."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, h, w, c)).astype(np.float32)
    wt = rng.normal(size=(o, 1, 1, c)).astype(np.float32)
    bias = rng.normal(size=o).astype(np.float32)
    want, mag = conv_f64(x, wt, bias, (1, 1), (0, 0, 0, 0), (1, 1), 1)
    got = ops.conv2d(x, wt, bias, num_threads=threads)
    assert np.all(np.abs(got - want) <= 1e-5 * mag + 1e-6)
    flat = ops.dense(x.reshape(-1, c), wt[:, 0, 0, :], bias, num_threads=threads)
    assert np.all(np.abs(flat - want.reshape(-1, o)) <= 1e-5 * mag.reshape(-1, o) + 1e-6)


def test_float_conv_rejects_what_c_does_not_cover(kernel_path):
    """Grouped (not depthwise) and float64 convs take the BLAS path and still compute the right thing."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 6, 6, 8)).astype(np.float32)
    w = rng.normal(size=(4, 3, 3, 4)).astype(np.float32)
    got = ops.conv2d(x, w, padding=1, groups=2)
    want, mag = conv_f64(x, w, None, (1, 1), (1, 1, 1, 1), (1, 1), 2)
    assert np.all(np.abs(got - want) <= 1e-5 * mag + 1e-6)
    got64 = ops.conv2d(x.astype(np.float64), w.astype(np.float64), padding=1, groups=2)
    assert got64.dtype == np.float64 and np.allclose(got64, want)


@pytest.mark.parametrize("bad", [dict(stride=0), dict(padding=-1), dict(groups=3)])
def test_float_conv_bad_arguments(kernel_path, bad):
    x = np.zeros((1, 5, 5, 6), np.float32)
    w = np.zeros((6, 3, 3, 1 if bad.get("groups") else 6), np.float32)
    with pytest.raises(ValueError):
        ops.conv2d(x, w, **bad)


@pytest.mark.parametrize("c_shape", [None, (), (7,), (1, 7), (7, 1), (7, 7)])
@pytest.mark.parametrize("trans_b", [0, 1])
def test_prepared_gemm_matches_onnx_semantics(kernel_path, c_shape, trans_b):
    """Gemm with a constant B (and C of any broadcastable shape) prepared once: ONNX's y = A B + C."""
    from xnorinfer import executor
    from xnorinfer.ir import Graph, Node, ValueInfo
    from xnorinfer.operators.nn import GemmAttrs
    rng = np.random.default_rng(3)
    a = rng.normal(size=(7, 9)).astype(np.float32)  # M = N: a (M, 1) C must not pass for a per-column one
    b = rng.normal(size=(7, 9) if trans_b else (9, 7)).astype(np.float32)
    consts = {"b": b}
    inputs = ["a", "b"]
    if c_shape is not None:
        consts["c"] = rng.normal(size=c_shape).astype(np.float32)
        inputs.append("c")
    g = Graph([Node("Gemm", inputs, ["y"], GemmAttrs(transB=trans_b), "gemm")], [ValueInfo("a", (7, 9), np.dtype(np.float32))],
              [ValueInfo("y", None, np.dtype(np.float32))], consts)
    (got,) = executor.execute(executor.build(g), g.constants, {"a": a}, ["y"])
    want = a.astype(np.float64) @ (b.T if trans_b else b) + (consts["c"] if c_shape is not None else 0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
