/* Scalar kernels with the hardware popcount (x86 POPCNT, AArch64 CNT via the builtin): the fallback
 * for CPUs without a SIMD path, and the baseline the SIMD paths are measured against.
 * Only the direct (dot-product) kernel: with a handful of general registers a register-tiled
 * outer-product micro-kernel spills, and measured here it ran at 2/3 of the speed of 2x2 dot products. */
#include "../dispatch.h"
#include "../bconv/output.h"

#if defined(XNOR_X86)
#define XNOR_TARGET_SCALAR __attribute__((target("popcnt")))
#else
#define XNOR_TARGET_SCALAR
#endif

/* Dot products of up to 2 rows of a with 2 rows of b: each loaded word feeds two popcounts. */
XNOR_TARGET_SCALAR
static inline __attribute__((always_inline)) void dot_2x2(size_t rows, size_t cols, size_t words,
                                                          uint64_t tail_mask, const uint64_t *a,
                                                          size_t lda, const uint64_t *b, size_t ldb,
                                                          int32_t *c, size_t ldc, int32_t k) {
    const uint64_t *a0 = a, *a1 = rows > 1 ? a + lda : a, *b0 = b, *b1 = cols > 1 ? b + ldb : b;
    uint64_t c00 = 0, c01 = 0, c10 = 0, c11 = 0;
    for (size_t w = 0; w + 1 < words; w++) {
        uint64_t x0 = a0[w], x1 = a1[w], y0 = b0[w], y1 = b1[w];
        c00 += (uint64_t)__builtin_popcountll(x0 ^ y0);
        c01 += (uint64_t)__builtin_popcountll(x0 ^ y1);
        c10 += (uint64_t)__builtin_popcountll(x1 ^ y0);
        c11 += (uint64_t)__builtin_popcountll(x1 ^ y1);
    }
    size_t w = words - 1;
    c00 += (uint64_t)__builtin_popcountll((a0[w] ^ b0[w]) & tail_mask);
    c01 += (uint64_t)__builtin_popcountll((a0[w] ^ b1[w]) & tail_mask);
    c10 += (uint64_t)__builtin_popcountll((a1[w] ^ b0[w]) & tail_mask);
    c11 += (uint64_t)__builtin_popcountll((a1[w] ^ b1[w]) & tail_mask);
    c[0] = (int32_t)(k - 2 * (int64_t)c00);
    if (cols > 1) c[1] = (int32_t)(k - 2 * (int64_t)c01);
    if (rows > 1) {
        c[ldc] = (int32_t)(k - 2 * (int64_t)c10);
        if (cols > 1) c[ldc + 1] = (int32_t)(k - 2 * (int64_t)c11);
    }
}

XNOR_TARGET_SCALAR
static void direct_scalar(size_t m, size_t n, size_t words, uint64_t tail_mask, const uint64_t *a,
                          size_t lda, const uint64_t *b, size_t ldb, int32_t *c, size_t ldc, int32_t k) {
    for (size_t i = 0; i < m; i += 2)
        for (size_t j = 0; j < n; j += 2)
            dot_2x2(m - i < 2 ? 1 : 2, n - j < 2 ? 1 : 2, words, tail_mask, a + i * lda, lda,
                    b + j * ldb, ldb, c + i * ldc + j, ldc, k);
}

XNOR_TARGET_SCALAR
static void pack_f32_scalar(const float *x, size_t rows, size_t k, uint64_t *out) {
    size_t words = XNOR_WORDS(k);
    for (size_t r = 0; r < rows; r++) {
        const float *row = x + r * k;
        for (size_t w = 0; w < words; w++) {
            size_t base = w * 64, n = k - base < 64 ? k - base : 64;
            uint64_t bits = 0;
            for (size_t i = 0; i < n; i++) bits |= (uint64_t)(row[base + i] < 0.0f) << i;
            out[r * words + w] = bits;
        }
    }
}

XNOR_TARGET_SCALAR
static double peak_scalar(uint64_t iters, uint64_t *sink) {
    uint64_t a0 = 1, a1 = 3, b0 = 0x55, b1 = 0x33, c0 = 0, c1 = 0, c2 = 0, c3 = 0;
    for (uint64_t i = 0; i < iters; i++) {
        __asm__ volatile("" : "+r"(a0), "+r"(a1), "+r"(b0), "+r"(b1));
        c0 += (uint64_t)__builtin_popcountll(a0 ^ b0);
        c1 += (uint64_t)__builtin_popcountll(a1 ^ b0);
        c2 += (uint64_t)__builtin_popcountll(a0 ^ b1);
        c3 += (uint64_t)__builtin_popcountll(a1 ^ b1);
    }
    *sink = c0 + c1 + c2 + c3;
    return (double)iters * 4 * 64;
}

const xnor_kernels xnor_kernels_scalar = {
    .name = "scalar", .direct_max_m = SIZE_MAX,
    .gemm_ukernel = NULL, .gemm_direct = direct_scalar,
    .pack_f32 = pack_f32_scalar, .threshold_pack = xnor_threshold_pack_ref, .peak = peak_scalar,
};
