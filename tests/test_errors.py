"""Bad input gets a clear Python exception naming the problem, never a crash."""
import numpy as np
import pytest

import xnorinfer


def test_pack_rejects_unsupported_dtypes(kernel_path):
    for bad in (np.zeros(4, np.uint8), np.zeros(4, bool), np.zeros(4, np.complex64), np.array(["a"])):
        with pytest.raises(TypeError, match="dtype"):
            xnorinfer.pack(bad)


def test_pack_rejects_scalars(kernel_path):
    with pytest.raises(ValueError, match="dimension"):
        xnorinfer.pack(np.float32(1.0))


def test_unpack_validates(kernel_path):
    with pytest.raises(ValueError, match="words"):
        xnorinfer.unpack(np.zeros((2, 3), np.uint64), 64)
    with pytest.raises(TypeError, match="uint64"):
        xnorinfer.unpack(np.zeros((2, 1), np.int64), 64)
    with pytest.raises(ValueError, match="k"):
        xnorinfer.unpack(np.zeros((2, 1), np.uint64), -1)
    with pytest.raises(TypeError, match="dtype"):
        xnorinfer.unpack(np.zeros((2, 1), np.uint64), 3, dtype=np.uint8)


@pytest.mark.parametrize("a,b,k,err,match", [
    (np.zeros((2, 1), np.int64), np.zeros((2, 1), np.uint64), 64, TypeError, "uint64"),
    ([[0]], np.zeros((2, 1), np.uint64), 64, TypeError, "numpy array"),
    (np.zeros((2, 1), np.uint64), np.zeros((2, 2), np.uint64), 64, ValueError, "words per row"),
    (np.zeros((2, 1), np.uint64), np.zeros((2, 1), np.uint64), 65, ValueError, "words per row"),
    (np.zeros((2, 1), np.uint64), np.zeros((2, 1), np.uint64), 0, ValueError, "k="),
    (np.zeros((2, 1), np.uint64), np.zeros((2, 1), np.uint64), -5, ValueError, "k="),
    (np.zeros((2, 1), np.uint64), np.zeros((2, 1), np.uint64), 2.5, TypeError, "integer"),
    (np.zeros(1, np.uint64), np.zeros((2, 1), np.uint64), 64, ValueError, "2-D"),
    (np.zeros((1, 1, 1), np.uint64), np.zeros((2, 1), np.uint64), 64, ValueError, "2-D"),
])
def test_bgemm_rejects_bad_arguments(kernel_path, a, b, k, err, match):
    with pytest.raises(err, match=match):
        xnorinfer.bgemm(a, b, k)


def test_bgemm_rejects_bad_out(kernel_path):
    a, b = np.zeros((2, 1), np.uint64), np.zeros((3, 1), np.uint64)
    with pytest.raises(TypeError, match="int32"):
        xnorinfer.bgemm(a, b, 64, out=np.zeros((2, 3), np.int64))
    with pytest.raises(ValueError, match="shape"):
        xnorinfer.bgemm(a, b, 64, out=np.zeros((3, 2), np.int32))
    with pytest.raises(ValueError, match="contiguous"):
        xnorinfer.bgemm(a, b, 64, out=np.zeros((3, 2), np.int32).T)
    readonly = np.zeros((2, 3), np.int32)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        xnorinfer.bgemm(a, b, 64, out=readonly)


def test_bgemm_rejects_overlapping_out(kernel_path):
    store = np.zeros(16, np.uint64)
    a = store[:2].reshape(2, 1)
    b = store[2:5].reshape(3, 1)
    out = store[:3].view(np.int32).reshape(2, 3)
    with pytest.raises(ValueError, match="overlap"):
        xnorinfer.bgemm(a, b, 64, out=out)


def test_bgemm_rejects_bad_thread_counts(kernel_path):
    a = np.zeros((1, 1), np.uint64)
    with pytest.raises(ValueError, match="num_threads"):
        xnorinfer.bgemm(a, a, 64, num_threads=0)
    with pytest.raises(TypeError, match="num_threads"):
        xnorinfer.bgemm(a, a, 64, num_threads="2")


def test_bgemm_rejects_k_too_large_for_int32(kernel_path):
    words = (2**31 + 63) // 64
    with pytest.raises(ValueError, match="k="):
        xnorinfer.bgemm(np.zeros((1, 1), np.uint64), np.zeros((1, 1), np.uint64), words * 64)


def test_empty_operands(kernel_path):
    a = np.zeros((0, 2), np.uint64)
    b = np.zeros((3, 2), np.uint64)
    assert xnorinfer.bgemm(a, b, 100).shape == (0, 3)
    assert xnorinfer.pack(np.zeros((0, 5), np.float32)).shape == (0, 1)
