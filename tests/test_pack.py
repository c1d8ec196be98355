import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import xnorinfer
from reference import pack_ref, unpack_ref

AWKWARD_K = [1, 2, 63, 64, 65, 127, 128, 511, 512, 513, 1000, 4097]
DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64]


def special_values(dtype):
    if np.dtype(dtype).kind == "f":
        return np.array([0.0, -0.0, np.nan, -np.nan, np.inf, -np.inf, 1e-30, -1e-30, 1.0, -1.0],
                        dtype=dtype)
    info = np.iinfo(dtype)
    return np.array([0, -1, 1, info.min, info.max], dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("k", AWKWARD_K)
def test_pack_matches_reference(kernel_path, dtype, k):
    rng = np.random.default_rng(k)
    x = rng.normal(size=(3, k)) * 100
    x = x.astype(dtype)
    specials = special_values(dtype)
    x.flat[rng.integers(0, x.size, size=min(x.size, 20))] = rng.choice(specials, size=min(x.size, 20))
    packed = xnorinfer.pack(x)
    assert packed.dtype == np.uint64 and packed.shape == (3, (k + 63) // 64)
    np.testing.assert_array_equal(packed, pack_ref(x))


def test_negative_zero_and_nan_pack_to_plus_one(kernel_path):
    x = np.array([-0.0, 0.0, np.nan, -np.nan, -1.0], dtype=np.float32)
    assert int(xnorinfer.pack(x)[0]) == 0b10000


def test_pack_keeps_leading_axes(kernel_path):
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 70)).astype(np.float32)
    packed = xnorinfer.pack(x)
    assert packed.shape == (2, 3, 4, 2)
    np.testing.assert_array_equal(packed, pack_ref(x))


def test_pack_non_contiguous_input(kernel_path):
    x = np.random.default_rng(1).normal(size=(70, 9)).astype(np.float32).T  # a transposed view
    np.testing.assert_array_equal(xnorinfer.pack(x), pack_ref(x))


@pytest.mark.parametrize("k", AWKWARD_K)
def test_unpack_round_trip(kernel_path, k):
    x = np.random.default_rng(k).normal(size=(2, k)).astype(np.float32)
    back = xnorinfer.unpack(xnorinfer.pack(x), k)
    assert back.dtype == np.float32 and back.shape == x.shape
    np.testing.assert_array_equal(back, np.where(x < 0, -1.0, 1.0))


def test_unpack_ignores_garbage_tail_bits(kernel_path):
    words = np.array([[np.uint64(2**64 - 1)]], dtype=np.uint64)
    np.testing.assert_array_equal(xnorinfer.unpack(words, 5), -np.ones((1, 5), np.float32))


def test_unpack_dtype(kernel_path):
    words = xnorinfer.pack(np.array([[-1.0, 2.0, -3.0]]))
    out = xnorinfer.unpack(words, 3, dtype=np.int8)
    assert out.dtype == np.int8
    np.testing.assert_array_equal(out, [[-1, 1, -1]])


@pytest.mark.parametrize("dtype", [np.float32, np.float16], ids=lambda d: np.dtype(d).name)
def test_pack_unpack_large_arrays(kernel_path, dtype):
    """Arrays large enough (over 4M elements) for pack and unpack to split their rows across threads."""
    rng = np.random.default_rng(12)
    x = rng.normal(size=(1100, 4001)).astype(dtype)
    x.flat[rng.integers(0, x.size, size=1000)] = rng.choice(special_values(dtype), size=1000)
    packed = xnorinfer.pack(x)
    np.testing.assert_array_equal(packed, pack_ref(x))
    np.testing.assert_array_equal(xnorinfer.unpack(packed, 4001), np.where(x < 0, -1.0, 1.0).astype(np.float32))


@pytest.mark.parametrize("num_threads", [1, 2, 3])
def test_pack_num_threads(kernel_path, num_threads):
    """A thread count (a session's intra_op_num_threads) gives the same bits, whatever the split."""
    rng = np.random.default_rng(13)
    x = rng.normal(size=(2001, 130)).astype(np.float32)
    x.flat[rng.integers(0, x.size, size=500)] = rng.choice(special_values(np.float32), size=500)
    np.testing.assert_array_equal(xnorinfer.pack(x, num_threads=num_threads), pack_ref(x))


def test_pack_num_threads_validated():
    with pytest.raises(ValueError, match="num_threads"):
        xnorinfer.pack(np.ones((2, 3), np.float32), num_threads=0)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_pack_property(kernel_path, data):
    dtype = data.draw(st.sampled_from(DTYPES))
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=300))
    x = data.draw(hnp.arrays(dtype, shape))
    packed = xnorinfer.pack(x)
    np.testing.assert_array_equal(packed, pack_ref(x))
    np.testing.assert_array_equal(xnorinfer.unpack(packed, shape[-1], dtype=np.int64), unpack_ref(packed, shape[-1]))
