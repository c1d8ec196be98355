import threading

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import xnorinfer
from reference import bgemm_ref, random_words

AWKWARD_K = [1, 63, 64, 65, 511, 513, 4097]
AWKWARD_MN = [(1, 1), (1, 33), (2, 7), (3, 64), (5, 31), (7, 33), (13, 65), (1, 100), (70, 3)]


@pytest.mark.parametrize("k", AWKWARD_K)
@pytest.mark.parametrize("m,n", AWKWARD_MN)
def test_bgemm_awkward_shapes_with_garbage_tails(kernel_path, m, n, k):
    rng = np.random.default_rng(m * 1000003 + n * 1009 + k)
    a, b = random_words(rng, m, k), random_words(rng, n, k)
    np.testing.assert_array_equal(xnorinfer.bgemm(a, b, k), bgemm_ref(a, b, k))


def test_bgemm_is_a_matmul_of_signs(kernel_path):
    rng = np.random.default_rng(7)
    x, w = rng.normal(size=(9, 300)), rng.normal(size=(11, 300))
    expected = (np.where(x < 0, -1, 1) @ np.where(w < 0, -1, 1).T).astype(np.int32)
    np.testing.assert_array_equal(xnorinfer.bgemm(xnorinfer.pack(x), xnorinfer.pack(w), 300), expected)


def test_bgemm_extremes(kernel_path):
    k = 777
    ones = np.zeros((3, 13), np.uint64)
    minus = np.full((4, 13), np.uint64(2**64 - 1))
    assert (xnorinfer.bgemm(ones, ones, k) == k).all()
    assert (xnorinfer.bgemm(ones, minus, k) == -k).all()
    assert (xnorinfer.bgemm(minus, minus, k) == k).all()


# (9, 70, 100001): rows of 1563 words, past Numba's 1536 too, so cut into k-blocks whose counts accumulate
@pytest.mark.parametrize("m,n,k", [(200, 300, 20000), (130, 70, 9000), (1, 4096, 640), (64, 1, 4097), (9, 70, 100001)])
def test_bgemm_larger_multi_block_and_threads(kernel_path, m, n, k):
    rng = np.random.default_rng(m + n + k)
    a, b = random_words(rng, m, k), random_words(rng, n, k)
    expected = bgemm_ref(a, b, k)
    for threads in (1, 2, None):
        np.testing.assert_array_equal(xnorinfer.bgemm(a, b, k, num_threads=threads), expected)


def test_bgemm_out_argument(kernel_path):
    rng = np.random.default_rng(3)
    a, b = random_words(rng, 5, 100), random_words(rng, 6, 100)
    out = np.full((5, 6), 12345, np.int32)
    result = xnorinfer.bgemm(a, b, 100, out=out)
    assert result is out
    np.testing.assert_array_equal(out, bgemm_ref(a, b, 100))


def test_bgemm_non_contiguous_inputs(kernel_path):
    rng = np.random.default_rng(4)
    a = random_words(rng, 10, 200)[::2]
    b = np.asfortranarray(random_words(rng, 7, 200))
    np.testing.assert_array_equal(xnorinfer.bgemm(a, b, 200), bgemm_ref(a, b, 200))


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 40), n=st.integers(1, 80), k=st.integers(1, 3000),
       garbage=st.booleans(), seed=st.integers(0, 2**32 - 1), threads=st.sampled_from([1, 2, None]))
def test_bgemm_property(kernel_path, m, n, k, garbage, seed, threads):
    rng = np.random.default_rng(seed)
    a, b = random_words(rng, m, k, garbage), random_words(rng, n, k, garbage)
    np.testing.assert_array_equal(xnorinfer.bgemm(a, b, k, num_threads=threads), bgemm_ref(a, b, k))


def test_bgemm_from_many_python_threads(kernel_path):
    """Several Python threads at once (the GIL is released; the pool serves one caller at a time)."""
    rng = np.random.default_rng(11)
    problems = []
    for i in range(6):
        m, n, k = 40 + i, 300 + 7 * i, 2000 + 33 * i
        a, b = random_words(rng, m, k), random_words(rng, n, k)
        problems.append((a, b, k, bgemm_ref(a, b, k)))
    errors = []

    def worker(idx):
        a, b, k, expected = problems[idx % len(problems)]
        for _ in range(5):
            if not np.array_equal(xnorinfer.bgemm(a, b, k), expected):
                errors.append(idx)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
