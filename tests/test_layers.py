"""Binary layers (xnorinfer.ops) against plain numpy references, on every ISA path and on Numba."""
import zlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import xnorinfer
from xnorinfer import ops
from reference import conv_ref, maxpool_ref, pack_ref, transform_ref, unpack_ref


def signs(rng, shape):
    return np.where(rng.random(shape) < 0.5, -1, 1).astype(np.int64)


def garbage_tails(words, channels, rng):
    """Set the unused bits of each pixel's last word at random: kernels must ignore them."""
    if channels % 64:
        noise = rng.integers(0, 2**64, size=words.shape[:-1], dtype=np.uint64)
        words = words.copy()
        words[..., -1] |= noise & ~np.uint64((1 << (channels % 64)) - 1)
    return words


def run_conv(rng, n, h, w, c, o, k, stride, padding, dilation, groups, pad_value, output, threads=None,
             garbage=True):
    x = signs(rng, (n, h, w, c))
    wt = signs(rng, (o, k[0], k[1], c // groups))
    xp, wp = pack_ref(x.astype(np.float32)), pack_ref(wt.astype(np.float32))
    if garbage:
        xp, wp = garbage_tails(xp, c, rng), garbage_tails(wp, c // groups, rng)
    acc = conv_ref(x, wt, stride, padding, dilation, groups, pad_value)
    scale = bias = clamp = None
    if output != "int32":
        scale = rng.normal(size=o).astype(np.float32) * rng.choice([1, 1, 0.01, 100], size=o).astype(np.float32)
        scale[rng.random(o) < 0.15] = 0.0
        bias = (rng.normal(size=o) * np.sqrt(k[0] * k[1] * c / groups)).astype(np.float32)
        ties = rng.random(o) < 0.3  # thresholds exactly at reachable accumulator values
        bias[ties] = -scale[ties] * rng.integers(-4, 5, size=ties.sum())
    if output == "float32" and rng.random() < 0.5:
        clamp = (-1.0, 1.0)
    got = ops.bconv2d(xp, wp, c, stride=stride, padding=padding, dilation=dilation, groups=groups,
                      pad_value=pad_value, scale=scale, bias=bias, clamp=clamp, output=output,
                      num_threads=threads)
    want = transform_ref(acc, output, scale, bias, clamp)
    np.testing.assert_array_equal(got, want)


CASES = [  # n, h, w, c, o, kernel, stride, padding (t, b, l, r), dilation, groups, pad_value
    (1, 8, 8, 64, 64, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, 0),
    (1, 8, 8, 64, 64, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, 1),
    (2, 7, 9, 100, 33, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1, 0),
    (1, 5, 5, 1, 7, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, 0),
    (1, 9, 6, 130, 65, (3, 2), (1, 2), (2, 0, 1, 3), (2, 1), 1, 0),
    (3, 6, 6, 96, 96, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 3, 0),
    (1, 6, 6, 12, 12, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 12, 1),
    (1, 11, 11, 256, 40, (7, 7), (3, 3), (3, 3, 3, 3), (1, 1), 1, 0),
    (1, 4, 4, 600, 70, (2, 2), (1, 1), (0, 1, 0, 1), (1, 1), 2, 1),
]


@pytest.mark.parametrize("output", ["int32", "float32", "packed"])
@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_bconv2d_cases(kernel_path, case, output):
    rng = np.random.default_rng(zlib.crc32(repr((case, output)).encode()))  # the same seed in every process
    n, h, w, c, o, k, stride, padding, dilation, groups, pad_value = case
    run_conv(rng, n, h, w, c, o, k, stride, padding, dilation, groups, pad_value, output)


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_bconv2d_property(kernel_path, data):
    groups = data.draw(st.sampled_from([1, 1, 1, 2, 3, 4]))
    cg = data.draw(st.integers(1, 600 // groups))
    og = data.draw(st.integers(1, 80 // groups + 1))
    kh, kw = data.draw(st.integers(1, 7)), data.draw(st.integers(1, 7))
    dh, dw = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))
    pads = tuple(data.draw(st.integers(0, 3)) for _ in range(4))
    min_h, min_w = max(1, dh * (kh - 1) + 1 - pads[0] - pads[1]), max(1, dw * (kw - 1) + 1 - pads[2] - pads[3])
    h, w = data.draw(st.integers(min_h, min_h + 8)), data.draw(st.integers(min_w, min_w + 8))
    stride = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    run_conv(np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))), data.draw(st.integers(1, 3)),
             h, w, cg * groups, og * groups, (kh, kw), stride, pads, (dh, dw), groups,
             data.draw(st.sampled_from([0, 1])), data.draw(st.sampled_from(["int32", "float32", "packed"])),
             threads=data.draw(st.sampled_from([1, 2, None])))


def test_bconv2d_larger_threads(kernel_path):
    rng = np.random.default_rng(5)
    for threads in (1, 2):
        run_conv(rng, 1, 20, 20, 256, 96, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, 0, "packed", threads)


def test_bconv2d_matches_float_conv_of_signs(kernel_path):
    """The contract as a user reads it: pack(x_nhwc), pack(w_ohwi), zero padding = Conv of signs."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 10, 10, 70)).astype(np.float32)
    w = rng.normal(size=(32, 3, 3, 70)).astype(np.float32)
    got = ops.bconv2d(xnorinfer.pack(x), xnorinfer.pack(w), 70, padding=1, stride=2)
    want = ops.conv2d(np.sign(x).astype(np.float64) + (x == 0), np.where(w < 0, -1.0, 1.0), padding=1, stride=2)
    np.testing.assert_array_equal(got, want.astype(np.int32))


@pytest.mark.parametrize("output", ["int32", "float32", "packed"])
# (5, 100001, 70): rows of 1563 words, past Numba's 1536 too, so cut into k-blocks
@pytest.mark.parametrize("batch,k,o", [(1, 1, 1), (1, 4096, 300), (3, 65, 64), (7, 1000, 129), (40, 513, 70),
                                       (5, 100001, 70)])
def test_bdense(kernel_path, batch, k, o, output):
    rng = np.random.default_rng(batch * 7 + k + o)
    x, w = signs(rng, (batch, k)), signs(rng, (o, k))
    xp, wp = pack_ref(x.astype(np.float32)), pack_ref(w.astype(np.float32))
    xp, wp = garbage_tails(xp, k, rng), garbage_tails(wp, k, rng)
    scale = bias = None
    if output != "int32":
        scale = rng.normal(size=o).astype(np.float32)
        bias = rng.normal(size=o).astype(np.float32) * 3
    got = ops.bdense(xp, wp, k, scale=scale, bias=bias, output=output)
    np.testing.assert_array_equal(got, transform_ref(x @ w.T, output, scale, bias))


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_bmaxpool2d_property(kernel_path, data):
    c = data.draw(st.integers(1, 200))
    kh, kw = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    dil = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)))
    pads = tuple(data.draw(st.integers(0, 2)) for _ in range(4))
    min_h, min_w = max(1, dil[0] * (kh - 1) + 1 - pads[0] - pads[1]), max(1, dil[1] * (kw - 1) + 1 - pads[2] - pads[3])
    h, w = data.draw(st.integers(min_h, min_h + 6)), data.draw(st.integers(min_w, min_w + 6))
    stride = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = signs(rng, (data.draw(st.integers(1, 2)), h, w, c))
    x[rng.random(x.shape) < 0.4] = -1  # mostly -1 so that all--1 windows occur
    xp = garbage_tails(pack_ref(x.astype(np.float32)), c, rng)
    got = ops.bmaxpool2d(xp, c, (kh, kw), stride=stride, padding=pads, dilation=dil)
    want = maxpool_ref(x, (kh, kw), stride, pads, dil)
    np.testing.assert_array_equal(got, pack_ref(want.astype(np.float32)))


def test_bmaxpool2d_large_threads(kernel_path):
    """Enough work for the pool to be split across threads.  The reference is computed last: its
    temporaries hold the right answer, and a freed one could become a kernel's np.empty output."""
    rng = np.random.default_rng(9)
    x = signs(rng, (2, 40, 40, 300))
    x[rng.random(x.shape) < 0.6] = -1
    xp = garbage_tails(pack_ref(x.astype(np.float32)), 300, rng)
    got = [ops.bmaxpool2d(xp, 300, (3, 3), stride=1, padding=1, num_threads=threads) for threads in (2, 1)]
    want = pack_ref(maxpool_ref(x, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)).astype(np.float32))
    for g in got:
        np.testing.assert_array_equal(g, want)


def test_sign_thresholds_exhaustive():
    """Thresholds reproduce float32 sign(acc*scale + bias) for every reachable acc, ties included."""
    rng = np.random.default_rng(0)
    k = 300
    scale = np.concatenate([rng.normal(size=200), [0.0, -0.0, 1e-30, -1e-30, 1e30, np.inf, -np.inf, np.nan,
                                                   1.0, -1.0, 0.1, -0.1]]).astype(np.float32)
    bias = np.concatenate([rng.normal(size=200) * 20, [1.0, -1.0, 0.5, -0.5, 3.0, 0.0, 0.0, 0.0,
                                                       0.0, 0.0, 0.3, -0.3]]).astype(np.float32)
    bias[:50] = -scale[:50] * rng.integers(-k, k + 1, size=50)  # exact ties
    thresholds, flip = ops.sign_thresholds(scale, bias, k)
    acc = np.arange(-k, k + 1)[:, None]
    with np.errstate(invalid="ignore", over="ignore"):
        want = (acc.astype(np.float32) * scale + bias) < 0
    got = (acc < thresholds) ^ flip.astype(bool)
    np.testing.assert_array_equal(got, want)


def test_float_layers_against_numpy():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 9, 9, 3)).astype(np.float32)
    w = rng.normal(size=(8, 3, 3, 3)).astype(np.float32)
    y = ops.conv2d(x, w, np.arange(8, dtype=np.float32), padding=1, stride=2)
    # reference: explicit loops
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    want = np.zeros((2, 5, 5, 8), np.float64)
    for oy in range(5):
        for ox in range(5):
            patch = xp[:, 2 * oy:2 * oy + 3, 2 * ox:2 * ox + 3, :]
            want[:, oy, ox, :] = np.einsum("nhwc,ohwc->no", patch, w) + np.arange(8)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    pooled = ops.avg_pool2d(x, 3, stride=2, padding=1)
    assert pooled.shape == (2, 5, 5, 3)
    np.testing.assert_allclose(pooled[:, 1, 1], x[:, 1:4, 1:4].mean(axis=(1, 2)), rtol=1e-6)
    np.testing.assert_allclose(pooled[:, 0, 0], x[:, 0:2, 0:2].mean(axis=(1, 2)), rtol=1e-6)
    np.testing.assert_allclose(ops.global_avg_pool(x), x.mean(axis=(1, 2)), rtol=1e-6)
    np.testing.assert_array_equal(ops.prelu(x, 0.25), np.where(x < 0, 0.25 * x, x))
    np.testing.assert_array_equal(ops.hardtanh(x), np.clip(x, -1, 1))
    np.testing.assert_array_equal(ops.relu(x), np.maximum(x, 0))
    wd = rng.normal(size=(5, 243)).astype(np.float32)
    np.testing.assert_allclose(ops.dense(x.reshape(2, -1), wd, np.ones(5, np.float32)),
                               np.einsum("nk,ok->no", x.reshape(2, -1).astype(np.float64), wd) + 1, rtol=1e-4)


def test_pack_unpack_nhwc():
    x = np.random.default_rng(3).normal(size=(2, 3, 4, 70)).astype(np.float32)
    np.testing.assert_array_equal(ops.unpack_nhwc(ops.pack_nhwc(x), 70), np.where(x < 0, -1.0, 1.0))


@pytest.mark.parametrize("kwargs,err,match", [
    (dict(output="bits"), ValueError, "output"),
    (dict(scale=[1.0]), ValueError, "output='float32'"),
    (dict(output="float32", scale=np.ones(3)), ValueError, "scale"),
    (dict(output="packed", clamp=(0, 1)), ValueError, "clamp"),
    (dict(groups=3), ValueError, "divisible"),
    (dict(pad_value=2), ValueError, "pad_value"),
    (dict(stride=0), ValueError, "stride"),
    (dict(padding=(1, 2, 3)), ValueError, "padding"),
])
def test_bconv2d_rejects_bad_arguments(kernel_path, kwargs, err, match):
    x = np.zeros((1, 4, 4, 1), np.uint64)
    w = np.zeros((8, 3, 3, 1), np.uint64)
    with pytest.raises(err, match=match):
        ops.bconv2d(x, w, 64, **kwargs)


def test_bconv2d_rejects_bad_shapes(kernel_path):
    with pytest.raises(ValueError, match="words per pixel"):
        ops.bconv2d(np.zeros((1, 4, 4, 2), np.uint64), np.zeros((8, 3, 3, 1), np.uint64), 64)
    with pytest.raises(ValueError, match="words per tap"):
        ops.bconv2d(np.zeros((1, 4, 4, 1), np.uint64), np.zeros((8, 3, 3, 2), np.uint64), 64)
    with pytest.raises(ValueError, match="does not fit"):
        ops.bconv2d(np.zeros((1, 2, 2, 1), np.uint64), np.zeros((8, 3, 3, 1), np.uint64), 64)
    with pytest.raises(ValueError, match="NHWC"):
        ops.bconv2d(np.zeros((4, 4, 1), np.uint64), np.zeros((8, 3, 3, 1), np.uint64), 64)
    with pytest.raises(TypeError, match="uint64"):
        ops.bconv2d(np.zeros((1, 4, 4, 1), np.float32), np.zeros((8, 3, 3, 1), np.uint64), 64)


def test_packed_output_without_scale_or_bias(kernel_path):
    """sign(acc) itself: acc < 0 -> -1, acc >= 0 -> +1."""
    rng = np.random.default_rng(9)
    x, w = signs(rng, (1, 5, 5, 10)), signs(rng, (7, 2, 2, 10))
    got = ops.bconv2d(pack_ref(x.astype(np.float32)), pack_ref(w.astype(np.float32)), 10, output="packed")
    acc = conv_ref(x, w, (1, 1), (0, 0, 0, 0), (1, 1), 1, 0)
    np.testing.assert_array_equal(got, pack_ref(np.where(acc < 0, -1.0, 1.0)))
