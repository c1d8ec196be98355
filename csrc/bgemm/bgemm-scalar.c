/* Scalar kernels with the hardware popcount (x86 POPCNT, AArch64 CNT via the builtin): the fallback
 * for CPUs without a SIMD path, and the baseline the SIMD paths are measured against. */
#include "../internal.h"

#if defined(XNOR_X86)
#define XNOR_TARGET_SCALAR __attribute__((target("popcnt")))
#else
#define XNOR_TARGET_SCALAR
#endif

#define MR 4
#define NR 4

XNOR_TARGET_SCALAR
static void ukernel_scalar(size_t mr, size_t nr, size_t kc, const uint64_t *a, size_t lda,
                           const uint64_t *panel, int32_t *c, size_t ldc, int32_t k, unsigned flags) {
    uint64_t acc[MR][NR] = {{0}};
    if (mr == MR) {
        for (size_t w = 0; w < kc; w++) {
            const uint64_t *bw = panel + w * NR;
            for (size_t r = 0; r < MR; r++) {
                uint64_t av = a[r * lda + w];
                for (size_t j = 0; j < NR; j++) acc[r][j] += (uint64_t)__builtin_popcountll(av ^ bw[j]);
            }
        }
    } else {
        for (size_t w = 0; w < kc; w++) {
            const uint64_t *bw = panel + w * NR;
            for (size_t r = 0; r < mr; r++) {
                uint64_t av = a[r * lda + w];
                for (size_t j = 0; j < NR; j++) acc[r][j] += (uint64_t)__builtin_popcountll(av ^ bw[j]);
            }
        }
    }
    for (size_t r = 0; r < mr; r++)
        for (size_t j = 0; j < nr; j++) {
            int64_t count = (int64_t)acc[r][j] + ((flags & XNOR_UK_FIRST) ? 0 : c[r * ldc + j]);
            c[r * ldc + j] = (flags & XNOR_UK_LAST) ? (int32_t)(k - 2 * count) : (int32_t)count;
        }
}

XNOR_TARGET_SCALAR
static void direct_scalar(size_t m, size_t n, size_t words, uint64_t tail_mask, const uint64_t *a,
                          size_t lda, const uint64_t *b, size_t ldb, int32_t *c, size_t ldc, int32_t k) {
    for (size_t i = 0; i < m; i++) {
        const uint64_t *ar = a + i * lda;
        for (size_t j = 0; j < n; j++) {
            const uint64_t *br = b + j * ldb;
            uint64_t c0 = 0, c1 = 0;
            size_t w = 0;
            for (; w + 2 < words; w += 2) {
                c0 += (uint64_t)__builtin_popcountll(ar[w] ^ br[w]);
                c1 += (uint64_t)__builtin_popcountll(ar[w + 1] ^ br[w + 1]);
            }
            for (; w < words - 1; w++) c0 += (uint64_t)__builtin_popcountll(ar[w] ^ br[w]);
            c0 += (uint64_t)__builtin_popcountll((ar[words - 1] ^ br[words - 1]) & tail_mask);
            c[i * ldc + j] = (int32_t)(k - 2 * (int64_t)(c0 + c1));
        }
    }
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
    .name = "scalar", .mr = MR, .nr = NR, .direct_max_m = 2,
    .gemm_ukernel = ukernel_scalar, .gemm_direct = direct_scalar,
    .pack_f32 = pack_f32_scalar, .peak = peak_scalar,
};
