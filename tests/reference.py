"""Plain numpy references, written independently of xnorinfer: the tests compare every path with these."""
import numpy as np


def pack_ref(x):
    """x < 0 -> bit 1; little bit order within each uint64 word; tail bits 0."""
    x = np.asarray(x)
    k = x.shape[-1]
    words = (k + 63) // 64
    bits = np.zeros(x.shape[:-1] + (words * 64,), dtype=np.uint8)
    bits[..., :k] = x < 0
    packed = np.packbits(bits, axis=-1, bitorder="little")
    return np.ascontiguousarray(packed).view("<u8").astype(np.uint64)


def unpack_ref(words, k):
    """uint64 words -> +-1 int64 values, ignoring bits past k."""
    as_bytes = np.ascontiguousarray(words.astype("<u8")).view(np.uint8)
    bits = np.unpackbits(as_bytes, axis=-1, bitorder="little")[..., :k]
    return 1 - 2 * bits.astype(np.int64)


def bgemm_ref(a_words, b_words, k):
    return (unpack_ref(a_words, k) @ unpack_ref(b_words, k).T).astype(np.int32)


def random_words(rng, rows, k, garbage_tail=True):
    """Random packed rows; with garbage_tail the bits past k are random too (kernels must ignore them)."""
    words = rng.integers(0, 2**64, size=(rows, (k + 63) // 64), dtype=np.uint64)
    if not garbage_tail and k % 64:
        words[:, -1] &= np.uint64((1 << (k % 64)) - 1)
    return words
