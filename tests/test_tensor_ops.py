"""The C float tensor ops (xnor_arith_f32, xnor_where_f32, xnor_unary_f32, xnor_batchnorm_f32,
xnor_softmax_f32, xnor_mean_f32, xnor_transpose) against numpy, and the float executor's Softmax /
ReduceMean / GlobalAveragePool, which call them.

Elementwise ops and batch norm must equal numpy's float32 ufuncs bit for bit (NaN where numpy has NaN,
and the same sign of zero where numpy's is deterministic); softmax and mean are defined by their own
exact formulas (double sums in index order, the library's exp) and must be within float32 rounding of
float64 numpy; transpose is a copy.  The special values (NaN, +-inf, -0.0, subnormals, float32's
largest) are drawn often."""
import math
import platform

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from xnorinfer import kernels
from xnorinfer.operators import apply
from xnorinfer.operators.quant import ROUNDING
from xnorinfer.operators.reduce import batchnorm

try:
    C = kernels.load_backend("c")
except kernels.CLibraryMissing:  # pragma: no cover - the pure-Python install
    C = None
needs_c = pytest.mark.skipif(C is None, reason="the C library is not built")

F32 = np.float32
COMPARISONS = {"greater", "greater_equal", "less", "less_equal", "equal"}  # these write uint8 0/1
SPECIALS = [0.0, -0.0, np.nan, -np.nan, np.inf, -np.inf, 1e-45, -1e-45, 1.1754942e-38, 3.4028235e38,
            -3.4028235e38, 0.5, -0.5, 1.5, -2.5, 0.49999997, 8388608.5, 16777216.0, 1.0, -1.0]
floats = st.one_of(st.sampled_from(SPECIALS).map(F32), st.floats(width=32), st.floats(-100, 100, width=32))
finite = st.floats(-30, 30, width=32)
# numpy's max/min return the second operand of equal ones (+0.0 vs -0.0) on x86-64 (maxps/minps); other
# platforms' numpy may not, so the sign of zero of max/min ties is compared there only
X86 = platform.machine().lower() in ("x86_64", "amd64")


def arrays(shape, elements=floats):
    return hnp.arrays(F32, shape, elements=elements)


def assert_same(got, want, zero_sign=True):
    """Equal as numpy float32 (NaN where NaN), and zeros of the same sign."""
    assert got.shape == want.shape and got.dtype == want.dtype
    assert np.array_equal(got, want, equal_nan=True), (got, want)
    if zero_sign and got.dtype.kind == "f":
        zeros = want == 0
        assert np.array_equal(np.signbit(got[zeros]), np.signbit(want[zeros]))


# ---- arith ops and where -----------------------------------------------------------------------------

NUMPY_ARITH = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "max": np.maximum,
    "min": np.minimum, "prelu": lambda a, b: np.where(a < 0, a * b, a),
    "greater": np.greater, "greater_equal": np.greater_equal, "less": np.less, "less_equal": np.less_equal,
    "equal": np.equal,
}


@st.composite
def broadcast_operands(draw, n):
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=n, min_dims=0, max_dims=6, max_side=5))
    return [draw(arrays(s)) for s in shapes.input_shapes], shapes.result_shape


@needs_c
@settings(max_examples=150)
@given(ops=broadcast_operands(2), op=st.sampled_from(sorted(NUMPY_ARITH)), tie=st.booleans())
def test_arith_equals_numpy(ops, op, tie):
    (a, b), shape = ops
    if tie and a.shape == b.shape:  # equal operands (and zeros of both signs): max/min's tie rule
        b = np.where(np.arange(b.size).reshape(b.shape) % 2 == 0, a, -a).astype(F32)
    with np.errstate(all="ignore"):
        want = np.asarray(NUMPY_ARITH[op](a, b))
    if op in COMPARISONS:
        want = want.astype(np.uint8)
    out = np.empty(shape, want.dtype)
    C.arith_f32(op, a, b, out)
    assert_same(out, want.reshape(shape), zero_sign=X86 or op not in ("max", "min"))


@needs_c
@pytest.mark.parametrize("a_shape, b_shape", [((2, 3, 4, 5), ()), ((), (2, 3, 4, 5)), ((2, 3, 4, 5), (2, 3, 4, 5)),
                                              ((2, 3, 4, 5), (5,)), ((2, 3, 4, 5), (1, 3, 1, 1)),
                                              ((1, 3, 1, 1), (2, 3, 4, 5)), ((4, 1), (1, 6)), ((7, 1, 3), (1, 5, 1))])
def test_arith_layouts(a_shape, b_shape):
    """The fast paths (scalar, same shape, last-axis and middle-axis vectors, outer products), every op."""
    rng = np.random.default_rng(sum(a_shape) * 31 + sum(b_shape))
    a, b = rng.standard_normal(a_shape).astype(F32), rng.standard_normal(b_shape).astype(F32)
    a.reshape(-1)[:3], b.reshape(-1)[:1] = [0.0, -0.0, np.nan][: a.size], [-0.0]
    shape = np.broadcast_shapes(a_shape, b_shape)
    for op, fn in NUMPY_ARITH.items():
        with np.errstate(all="ignore"):
            want = np.asarray(fn(a, b))
        want = want.astype(np.uint8) if op in COMPARISONS else want
        out = np.empty(shape, want.dtype)
        C.arith_f32(op, a, b, out)
        assert_same(out, want, zero_sign=X86 or op not in ("max", "min"))


@needs_c
def test_max_min_ties_and_relu_zero():
    """The documented rule: of equal operands the second; ReLU(-0.0) = +0.0, as np.maximum(x, 0)."""
    z, nz = np.array([0.0], F32), np.array([-0.0], F32)
    out = np.empty(1, F32)
    for op, a, b, sign in (("max", nz, z, False), ("max", z, nz, True), ("min", nz, z, False), ("min", z, nz, True)):
        C.arith_f32(op, a, b, out)
        assert out[0] == 0 and bool(np.signbit(out[0])) == sign
    C.unary_f32("relu", nz, out)
    assert out[0] == 0 and not np.signbit(out[0])
    assert not np.signbit(apply("Relu", [nz], {})[0][0])


@needs_c
@settings(max_examples=80)
@given(ops=broadcast_operands(3), data=st.data())
def test_where_equals_numpy(ops, data):
    (c, a, b), shape = ops
    cond = data.draw(hnp.arrays(np.uint8, c.shape, elements=st.sampled_from([0, 1, 2, 255])))
    want = np.where(cond, a, b).astype(F32)
    out = np.empty(shape, F32)
    C.where_f32(cond, a, b, out)
    assert np.array_equal(out.view(np.uint32), want.reshape(shape).view(np.uint32))  # a copy: every bit


# ---- unary ops and batch norm ----------------------------------------------------------------------------

NUMPY_UNARY = {
    "relu": lambda x: np.maximum(x, np.zeros((), x.dtype)), "neg": np.negative, "abs": np.abs, "round": np.round,
    "floor": np.floor, "ceil": np.ceil, "trunc": np.trunc,
    # the executor's QONNX rounding modes themselves
    "round_up": ROUNDING["UP"][0], "round_half_up": ROUNDING["HALF_UP"][0], "round_half_down": ROUNDING["HALF_DOWN"][0],
}


@needs_c
@settings(max_examples=120)
@given(x=arrays(st.integers(1, 300)))
def test_sigmoid_rounds_the_double_result_once(x):
    """sigmoid = 1 / (1 + exp(-x)) in double, one rounding to float32: within one ulp of float64 numpy
    (whose exp may differ from the library's in a double's last bit), exact at the saturation ends."""
    with np.errstate(all="ignore"):
        want = (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(F32)
    out = np.empty_like(x)
    C.unary_f32("sigmoid", x, out)
    finite = ~np.isnan(want)
    assert np.array_equal(np.isnan(out), ~finite)
    assert np.all(np.abs(out[finite].view(np.int32).astype(np.int64) - want[finite].view(np.int32)) <= 1)
    assert np.array_equal(out[x >= 104], np.ones_like(out[x >= 104])) and np.all(out[x <= -104] == 0)


@needs_c
@settings(max_examples=120)
@given(x=arrays(st.integers(1, 300)), op=st.sampled_from(sorted(NUMPY_UNARY)))
def test_unary_equals_numpy(x, op):
    with np.errstate(all="ignore"):
        want = np.asarray(NUMPY_UNARY[op](x))
    assert want.dtype == F32
    out = np.empty_like(x)
    C.unary_f32(op, x, out)
    assert_same(out, want)
    C.unary_f32(op, x, x)  # in place
    assert_same(x, want)


@needs_c
@settings(max_examples=80)
@given(shape=hnp.array_shapes(min_dims=2, max_dims=5, max_side=6), data=st.data())
def test_batchnorm_equals_executor(shape, data):
    """xnor_batchnorm_f32 with denom = sqrt(var + eps) equals float_ops.batchnorm (ONNX's formula)."""
    axis = data.draw(st.integers(1, len(shape) - 1))
    c = shape[axis]
    x = data.draw(arrays(shape))
    scale, bias, mean = (data.draw(arrays(c, st.one_of(finite, floats))) for _ in range(3))
    var = data.draw(arrays(c, st.one_of(st.floats(0, 10, width=32), floats)))
    eps = data.draw(st.sampled_from([1e-5, 1e-3, 0.0]))
    with np.errstate(all="ignore"):
        want = batchnorm(x, scale, bias, mean, var, eps, axis=axis)
        denom = np.sqrt(var + F32(eps))
    out = np.empty_like(x)
    C.batchnorm_f32(x, mean, denom, scale, bias, math.prod(shape[:axis]), c, math.prod(shape[axis + 1:]), out)
    assert_same(out, want)


# ---- softmax and mean ----------------------------------------------------------------------------------

def softmax_f64(x, axis):
    """numpy's formula, exp and sums in float64 on the float32 difference x - max (the one rounding
    the spec shares with numpy's float32 softmax)."""
    with np.errstate(all="ignore"):
        d = (x - x.max(axis=axis, keepdims=True)).astype(np.float64)
        e = np.exp(d)
        return e / e.sum(axis=axis, keepdims=True)


def as_3d(shape, begin, end):
    return math.prod(shape[:begin]), math.prod(shape[begin:end]), math.prod(shape[end:])


@needs_c
@settings(max_examples=120)
@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, max_side=9), data=st.data())
def test_softmax_close_to_float64(shape, data):
    axis = data.draw(st.integers(0, len(shape) - 1))
    special = data.draw(st.booleans())
    x = data.draw(arrays(shape, floats if special else st.floats(-40, 40, width=32)))
    out = np.empty_like(x)
    C.softmax_f32(x, *as_3d(shape, axis, axis + 1), out)
    want = softmax_f64(x, axis)
    np.testing.assert_allclose(out, want, rtol=1e-6, atol=3e-45)
    assert np.array_equal(np.isnan(out), np.isnan(want))
    y = x.copy()
    C.softmax_f32(y, *as_3d(shape, axis, axis + 1), y)  # in place: the same bits
    assert np.array_equal(y.view(np.uint32)[~np.isnan(y)], out.view(np.uint32)[~np.isnan(out)])


@needs_c
@pytest.mark.parametrize("shape, axis", [((3, 4000), 1), ((2, 1500, 5), 1), ((1, 1000, 300), 1)])
def test_softmax_long_axes(shape, axis):
    """Long axes (a classifier's 1000 classes and more): a float32 sum would drift past rtol 1e-6."""
    x = (np.random.default_rng(1).standard_normal(shape) * 2).astype(F32)
    out = np.empty_like(x)
    C.softmax_f32(x, *as_3d(shape, axis, axis + 1), out)
    np.testing.assert_allclose(out, softmax_f64(x, axis), rtol=1e-6, atol=3e-45)


@needs_c
def test_softmax_special_rows():
    """numpy's exp(x - max) / sum: NaN, +inf or only -inf in a row gives NaN; -inf beside finite gives 0;
    a constant row gives exactly 1/n."""
    x = np.array([[1, np.inf, 2], [1, np.nan, 2], [-np.inf] * 3, [np.inf, np.inf, 0], [-np.inf, 0, -np.inf],
                  [-3.75] * 3], F32)
    out = np.empty_like(x)
    C.softmax_f32(x, 6, 3, 1, out)
    assert np.isnan(out[:4]).all()
    assert out[4].tolist() == [0.0, 1.0, 0.0] and not np.signbit(out[4]).any()
    assert (out[5] == F32(1 / 3)).all()
    with np.errstate(all="ignore"):
        e = np.exp(x - x.max(axis=1, keepdims=True))
        assert np.array_equal(np.isnan(e / e.sum(axis=1, keepdims=True)), np.isnan(out))


@needs_c
@settings(max_examples=120)
@given(shape=hnp.array_shapes(min_dims=1, max_dims=5, max_side=8), data=st.data())
def test_mean_close_to_float64(shape, data):
    begin = data.draw(st.integers(0, len(shape) - 1))
    end = data.draw(st.integers(begin + 1, len(shape)))
    x = data.draw(arrays(shape, data.draw(st.sampled_from([floats, finite]))))
    outer, n, inner = as_3d(shape, begin, end)
    out = np.empty(outer * inner, F32)
    C.mean_f32(x, outer, n, inner, out)
    x3 = x.reshape(outer, n, inner).astype(np.float64)
    with np.errstate(all="ignore"):
        # the documented formula: a double sum in index order (cumsum is sequential), one rounding
        exact = (np.cumsum(x3, axis=1)[:, -1, :] / n).astype(F32).reshape(-1)
        ref = x3.mean(axis=1).reshape(-1)
        mag = np.abs(x3).mean(axis=1).reshape(-1)
        ok = np.isnan(ref) | (out == ref) | (np.abs(out - ref) <= 1e-6 * np.abs(ref) + 1e-12 * mag + 1e-45)
    assert np.array_equal(out, exact, equal_nan=True)
    assert ok.all(), (out[~ok], ref[~ok])


# ---- transpose -----------------------------------------------------------------------------------------

@needs_c
@settings(max_examples=120)
@given(shape=hnp.array_shapes(min_dims=1, max_dims=6, max_side=6), dtype=st.sampled_from([np.uint8, np.float16,
       np.int16, np.float32, np.int32, np.float64, np.int64]), data=st.data())
def test_transpose_equals_numpy(shape, dtype, data):
    perm = data.draw(st.permutations(range(len(shape))))
    x = data.draw(hnp.arrays(np.dtype(dtype), shape))
    want = np.ascontiguousarray(np.transpose(x, perm))
    out = np.empty(want.shape, x.dtype)
    C.transpose(x, perm, out)
    assert out.tobytes() == want.tobytes()


@needs_c
@pytest.mark.parametrize("shape, perm", [((1, 64, 56, 56), (0, 2, 3, 1)), ((1, 56, 56, 64), (0, 3, 1, 2)),
                                         ((3, 17, 33), (2, 0, 1)), ((2, 3, 5, 7, 2, 3), (5, 3, 1, 4, 0, 2))])
def test_transpose_activations(shape, perm):
    x = np.random.default_rng(0).standard_normal(shape).astype(F32)
    out = np.empty(np.transpose(x, perm).shape, F32)
    C.transpose(x, perm, out)
    assert np.array_equal(out, np.transpose(x, perm))


@needs_c
def test_bad_arguments_raise():
    f = np.zeros((2, 3), F32)
    with pytest.raises(ValueError, match="neither 1 nor"):
        C.arith_f32("add", f, np.zeros((2, 2), F32), np.empty((2, 3), F32))
    with pytest.raises(ValueError, match=">= 1"):
        C.unary_f32("abs", np.zeros(0, F32), np.zeros(0, F32))
    with pytest.raises(ValueError, match="permutation"):
        C.transpose(f, (0, 0), np.empty((2, 3), F32))
    with pytest.raises(ValueError, match="rank"):
        C.transpose(np.zeros((1,) * 7, F32), tuple(range(7)), np.empty((1,) * 7, F32))
    with pytest.raises(ValueError, match=">= 1"):
        C.softmax_f32(f, 0, 3, 1, f)
    with pytest.raises(ValueError, match="unknown op"):
        C._check(C.lib.xnor_unary_f32(99, C.ffi.NULL, C.ffi.NULL, 1))


# ---- the float executor's ops -------------------------------------------------------------------------

BACKENDS = ["c", "numba"] if C is not None else ["numba"]


def assert_mean_close(out, x, axes, keepdims, backend):
    """Within float32 rounding of the float64 mean; the numpy fallback (the Numba backend) sums in
    float32, pairwise, so its error scales with the mean magnitude (cancellation), not the mean."""
    x64 = x.astype(np.float64)
    want = x64.mean(axis=axes, keepdims=keepdims)
    mag = np.abs(x64).mean(axis=axes, keepdims=keepdims)
    assert out.shape == want.shape and out.dtype == F32
    slack = 1e-12 if backend.name == "c" else 1e-6
    assert (np.abs(out - want) <= 1e-6 * np.abs(want) + slack * mag + 1e-38).all(), (out, want)


@pytest.fixture(params=BACKENDS)
def backend(request):
    with kernels.use_backend(request.param) as b:
        yield b


@settings(max_examples=60)
@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, max_side=7), data=st.data())
def test_softmax_op(backend, shape, data):
    """ONNX Softmax (opset 13: one axis; opset 11: the trailing axes flattened), negative axes too; on
    the C backend the bits are those of xnor_softmax_f32."""
    rank = len(shape)
    axis = data.draw(st.integers(-rank, rank - 1))
    opset = data.draw(st.sampled_from([11, 13]))
    x = data.draw(arrays(shape, st.floats(-20, 20, width=32)))
    out = apply("Softmax", [x], {"axis": axis}, opset=opset)[0]
    a = axis % rank
    if opset < 13:
        want = softmax_f64(x.reshape(math.prod(shape[:a]), -1), 1).reshape(shape)
        dims = as_3d(shape, a, rank)
    else:
        want = softmax_f64(x, a)
        dims = as_3d(shape, a, a + 1)
    assert out.shape == x.shape and out.dtype == F32
    np.testing.assert_allclose(out, want, rtol=1e-5 if backend.name == "numba" else 1e-6, atol=1e-38)
    if backend.name == "c":
        direct = np.empty_like(x)
        backend.softmax_f32(x, *dims, direct)
        assert out.tobytes() == direct.tobytes()


@settings(max_examples=80)
@given(shape=hnp.array_shapes(min_dims=1, max_dims=5, max_side=6), data=st.data())
def test_reduce_mean_op(backend, shape, data):
    """ONNX ReduceMean: axes (negative from the end, from the attribute or the opset-18 input, none =
    all), keepdims 0/1; the C kernel's bits in place when the axes are one contiguous run, after a
    transpose that puts them last otherwise."""
    rank = len(shape)
    axes = data.draw(st.none() | st.lists(st.integers(-rank, rank - 1), min_size=1, max_size=rank,
                                          unique_by=lambda a: a % rank))
    keep = data.draw(st.sampled_from([0, 1]))
    x = data.draw(arrays(shape, st.floats(-1000, 1000, width=32)))
    as_input = axes is not None and data.draw(st.booleans())
    inputs = [x, np.array(axes, np.int64)] if as_input else [x]
    attrs = {"keepdims": keep} if as_input or axes is None else {"axes": axes, "keepdims": keep}
    out = apply("ReduceMean", inputs, attrs)[0]
    norm = tuple(range(rank)) if axes is None else tuple(sorted(a % rank for a in axes))
    assert_mean_close(out, x, norm, bool(keep), backend)
    contiguous = norm == tuple(range(norm[0], norm[-1] + 1))
    if backend.name == "c":
        direct = np.empty(out.size, F32)
        if contiguous:
            backend.mean_f32(x, *as_3d(shape, norm[0], norm[-1] + 1), direct)
        else:
            kept = [a for a in range(rank) if a not in norm]
            moved = np.ascontiguousarray(np.transpose(x, kept + list(norm)))
            backend.mean_f32(moved, moved.size // math.prod(shape[a] for a in norm), math.prod(shape[a] for a in norm), 1, direct)
        assert out.tobytes() == direct.tobytes()


def test_reduce_mean_cancellation_over_split_axes(backend):
    """Axes 0 and 2 around a size-1 axis, values that cancel: float32 partial sums lose the result
    (1 + 7.99999 rounds in float32), the C path sums in double whatever the axes (a CI failure once)."""
    x = np.array([[[1.0, 7.99999, -9.0]]], F32)
    for axes in ([0, 2], [2, 0], [-1, 0]):
        out = apply("ReduceMean", [x], {"axes": axes, "keepdims": 0})[0]
        want = x.astype(np.float64).mean()
        assert out.shape == (1,)
        if backend.name == "c":
            assert out[0] == np.float32(want)
        else:
            assert abs(out[0] - want) <= 1e-6 * 9


def test_reduce_mean_noop_and_errors(backend):
    x = np.arange(24, dtype=F32).reshape(2, 3, 4)
    assert apply("ReduceMean", [x, np.array([], np.int64)], {"noop_with_empty_axes": 1})[0] is x
    assert apply("ReduceMean", [x, np.array([], np.int64)], {})[0].shape == (1, 1, 1)
    assert apply("ReduceMean", [x], {"axes": [0, 2], "keepdims": 0})[0].tolist() == [7.5, 11.5, 15.5]
    with pytest.raises(Exception):  # out of range: numpy's error, not a silent wrap
        apply("ReduceMean", [x], {"axes": [3]})
    # other dtypes keep numpy's path and dtype
    assert apply("ReduceMean", [x.astype(np.float64)], {"axes": [1]})[0].dtype == np.float64


@settings(max_examples=40)
@given(shape=hnp.array_shapes(min_dims=3, max_dims=5, max_side=7), nhwc=st.booleans(), data=st.data())
def test_global_average_pool_op(backend, shape, nhwc, data):
    assume(not nhwc or len(shape) == 4)
    x = data.draw(arrays(shape, st.floats(-1000, 1000, width=32)))
    attrs = {"nhwc": 1} if nhwc else {}
    axes = (1, 2) if nhwc else tuple(range(2, len(shape)))
    out = apply("GlobalAveragePool", [x], attrs)[0]
    assert_mean_close(out, x, axes, True, backend)
    if backend.name == "c":
        direct = np.empty(out.size, F32)
        backend.mean_f32(x, *as_3d(shape, axes[0], axes[-1] + 1), direct)
        assert out.tobytes() == direct.tobytes()
