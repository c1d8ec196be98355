/* AVX-512 kernels with VPOPCNTQ (Ice Lake and later Intel, Zen 4 and later AMD).
 *
 * Micro-kernel: MR rows x NR = 32 columns, outer-product form.  Each k-step loads one word of each of
 * the 32 columns (4 zmm from the panel) and broadcasts one word of each of MR rows of A, so the 64-bit
 * lanes of the 4*MR accumulators already hold per-column counts: no horizontal reductions, and the
 * XOR -> VPOPCNTQ -> VPADDQ chain is the whole inner loop (3 vector uops per 512 binary MACs, the
 * same as the register-only peak loop). */
#include "../dispatch.h"
#include "bgemm.h"
#include "../bconv/output.h"
#include "../fconv/fconv.h"
#include "../fconv/winograd.h"
#ifdef XNOR_X86
#include <immintrin.h>

#define XNOR_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vpopcntdq,popcnt")))
#define INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 32")

#define MR 6
#define NR 32
#define NV (NR / 8)

XNOR_TARGET_AVX512 INLINE void store_row(int32_t *c, size_t nr, __m512i acc[NV], int32_t k,
                                          unsigned flags) {
    UNROLL for (size_t v = 0; v < NV; v++) {
        if (nr <= v * 8) break;
        size_t left = nr - v * 8;
        __mmask8 m = left >= 8 ? 0xff : (__mmask8)((1u << left) - 1);
        __m256i cnt = _mm512_cvtepi64_epi32(acc[v]);
        if (!(flags & XNOR_UK_FIRST)) cnt = _mm256_add_epi32(cnt, _mm256_maskz_loadu_epi32(m, c + v * 8));
        if (flags & XNOR_UK_LAST) cnt = _mm256_sub_epi32(_mm256_set1_epi32(k), _mm256_slli_epi32(cnt, 1));
        _mm256_mask_storeu_epi32(c + v * 8, m, cnt);
    }
}

XNOR_TARGET_AVX512 INLINE void tile(const size_t rows, size_t nr, size_t kc, const uint64_t *a,
                                     size_t lda, const uint64_t *panel, int32_t *c, size_t ldc,
                                     int32_t k, unsigned flags) {
    __m512i acc[MR][NV];
    UNROLL for (size_t r = 0; r < rows; r++)
        UNROLL for (size_t v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_si512();
    for (size_t w = 0; w < kc; w++) {
        const uint64_t *pw = panel + w * NR;
        __m512i b[NV];
        UNROLL for (size_t v = 0; v < NV; v++) b[v] = _mm512_loadu_si512((const void *)(pw + v * 8));
        UNROLL for (size_t r = 0; r < rows; r++) {
            __m512i av = _mm512_set1_epi64((long long)a[r * lda + w]);
            UNROLL for (size_t v = 0; v < NV; v++)
                acc[r][v] = _mm512_add_epi64(acc[r][v], _mm512_popcnt_epi64(_mm512_xor_si512(av, b[v])));
        }
    }
    UNROLL for (size_t r = 0; r < rows; r++) store_row(c + r * ldc, nr, acc[r], k, flags);
}

XNOR_TARGET_AVX512
static void ukernel_avx512(size_t mr, size_t nr, size_t kc, const uint64_t *a, size_t lda,
                           const uint64_t *panel, int32_t *c, size_t ldc, int32_t k, unsigned flags) {
    switch (mr) {
    case 6: tile(6, nr, kc, a, lda, panel, c, ldc, k, flags); break;
    case 5: tile(5, nr, kc, a, lda, panel, c, ldc, k, flags); break;
    case 4: tile(4, nr, kc, a, lda, panel, c, ldc, k, flags); break;
    case 3: tile(3, nr, kc, a, lda, panel, c, ldc, k, flags); break;
    case 2: tile(2, nr, kc, a, lda, panel, c, ldc, k, flags); break;
    default: tile(1, nr, kc, a, lda, panel, c, ldc, k, flags); break;
    }
}

/* Direct kernel for small m: dot products along k, 8 words per zmm, 4 rows of b at a time. */
XNOR_TARGET_AVX512 INLINE void dot_block(const size_t nb, size_t words, __m512i last_mask,
                                          const uint64_t *ar, const uint64_t *b, size_t ldb,
                                          int32_t *c, int32_t k) {
    __m512i acc[4];
    UNROLL for (size_t j = 0; j < nb; j++) acc[j] = _mm512_setzero_si512();
    size_t full = (words - 1) / 8; /* chunks before the one holding the last word */
    for (size_t q = 0; q < full; q++) {
        __m512i av = _mm512_loadu_si512((const void *)(ar + q * 8));
        UNROLL for (size_t j = 0; j < nb; j++) {
            __m512i bv = _mm512_loadu_si512((const void *)(b + j * ldb + q * 8));
            acc[j] = _mm512_add_epi64(acc[j], _mm512_popcnt_epi64(_mm512_xor_si512(av, bv)));
        }
    }
    size_t rest = words - full * 8; /* 1..8 words */
    __mmask8 m = (__mmask8)((1u << rest) - 1);
    __m512i av = _mm512_maskz_loadu_epi64(m, ar + full * 8);
    UNROLL for (size_t j = 0; j < nb; j++) {
        __m512i bv = _mm512_maskz_loadu_epi64(m, b + j * ldb + full * 8);
        __m512i x = _mm512_and_si512(_mm512_xor_si512(av, bv), last_mask);
        acc[j] = _mm512_add_epi64(acc[j], _mm512_popcnt_epi64(x));
        c[j] = k - 2 * (int32_t)_mm512_reduce_add_epi64(acc[j]);
    }
}

XNOR_TARGET_AVX512
static void direct_avx512(size_t m, size_t n, size_t words, uint64_t tail_mask, const uint64_t *a,
                          size_t lda, const uint64_t *b, size_t ldb, int32_t *c, size_t ldc, int32_t k) {
    /* lane (words-1) % 8 of the last chunk holds the row's last word */
    __m512i last_mask = _mm512_mask_set1_epi64(_mm512_set1_epi64(-1), (__mmask8)(1u << ((words - 1) % 8)),
                                               (long long)tail_mask);
    size_t j = 0;
    for (; j + 4 <= n; j += 4)
        for (size_t i = 0; i < m; i++)
            dot_block(4, words, last_mask, a + i * lda, b + j * ldb, ldb, c + i * ldc + j, k);
    for (; j < n; j++)
        for (size_t i = 0; i < m; i++)
            dot_block(1, words, last_mask, a + i * lda, b + j * ldb, ldb, c + i * ldc + j, k);
}

XNOR_TARGET_AVX512
static void pack_f32_avx512(const float *x, size_t rows, size_t k, uint64_t *out) {
    size_t words = XNOR_WORDS(k);
    const __m512 zero = _mm512_setzero_ps();
    for (size_t r = 0; r < rows; r++) {
        const float *row = x + r * k;
        uint64_t *dst = out + r * words;
        size_t w = 0;
        for (; (w + 1) * 64 <= k; w++) {
            const float *p = row + w * 64;
            uint64_t m0 = _mm512_cmp_ps_mask(_mm512_loadu_ps(p), zero, _CMP_LT_OQ);
            uint64_t m1 = _mm512_cmp_ps_mask(_mm512_loadu_ps(p + 16), zero, _CMP_LT_OQ);
            uint64_t m2 = _mm512_cmp_ps_mask(_mm512_loadu_ps(p + 32), zero, _CMP_LT_OQ);
            uint64_t m3 = _mm512_cmp_ps_mask(_mm512_loadu_ps(p + 48), zero, _CMP_LT_OQ);
            dst[w] = m0 | (m1 << 16) | (m2 << 32) | (m3 << 48);
        }
        if (w < words) {
            size_t left = k - w * 64;
            uint64_t bits = 0;
            for (size_t q = 0; q * 16 < left; q++) {
                size_t n = left - q * 16 < 16 ? left - q * 16 : 16;
                __m512 v = _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), row + w * 64 + q * 16);
                bits |= (uint64_t)_mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ) << (q * 16);
            }
            dst[w] = bits;
        }
    }
}

/* Packed output: 16 compares per instruction straight into mask bits. */
XNOR_TARGET_AVX512
static void threshold_pack_avx512(const int32_t *acc, const int32_t *thresholds, const uint64_t *flip_bits,
                                  size_t n, uint64_t *out) {
    size_t w = 0;
    for (; (w + 1) * 64 <= n; w++) {
        const int32_t *a = acc + w * 64, *t = thresholds + w * 64;
        uint64_t bits = 0;
        UNROLL for (size_t q = 0; q < 4; q++)
            bits |= (uint64_t)_mm512_cmplt_epi32_mask(_mm512_loadu_si512(a + q * 16), _mm512_loadu_si512(t + q * 16))
                    << (q * 16);
        out[w] = flip_bits ? bits ^ flip_bits[w] : bits;
    }
    for (; w * 64 < n; w++) { /* the last, partial word */
        uint64_t bits = 0;
        for (size_t q = 0; q < 4; q++) {
            size_t base = w * 64 + q * 16;
            if (base >= n) break;
            __mmask16 valid = n - base >= 16 ? 0xffff : (__mmask16)((1u << (n - base)) - 1);
            __m512i a = _mm512_maskz_loadu_epi32(valid, acc + base);
            __m512i t = _mm512_maskz_loadu_epi32(valid, thresholds + base);
            bits |= (uint64_t)_mm512_mask_cmplt_epi32_mask(valid, a, t) << (q * 16);
        }
        out[w] = flip_bits ? bits ^ flip_bits[w] : bits;
    }
}

/* The micro-kernel's inner chain on registers only: 12 independent XOR-POPCNT-ADD chains. */
XNOR_TARGET_AVX512
static double peak_avx512(uint64_t iters, uint64_t *sink) {
    __m512i a0 = _mm512_set1_epi64(1), a1 = _mm512_set1_epi64(3), a2 = _mm512_set1_epi64(7);
    __m512i b0 = _mm512_set1_epi64(0x55), b1 = _mm512_set1_epi64(0x33), b2 = _mm512_set1_epi64(0x0f);
    __m512i acc[12];
    for (int i = 0; i < 12; i++) acc[i] = _mm512_setzero_si512();
    for (uint64_t it = 0; it < iters; it++) {
        __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(b0), "+v"(b1), "+v"(b2));
#define STEP(i, x, y) acc[i] = _mm512_add_epi64(acc[i], _mm512_popcnt_epi64(_mm512_xor_si512(x, y)));
        STEP(0, a0, b0) STEP(1, a1, b0) STEP(2, a2, b0) STEP(3, a0, b1) STEP(4, a1, b1) STEP(5, a2, b1)
        STEP(6, a0, b2) STEP(7, a1, b2) STEP(8, a2, b2) STEP(9, a0, a1) STEP(10, a1, a2) STEP(11, b0, b2)
#undef STEP
    }
    __m512i s = acc[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_epi64(s, acc[i]);
    *sink = (uint64_t)_mm512_reduce_add_epi64(s);
    return (double)iters * 12 * 512;
}

const xnor_kernels xnor_kernels_avx512 = {
    .name = "avx512", .mr = MR, .nr = NR, .direct_max_m = 3,
    .gemm_ukernel = ukernel_avx512, .gemm_direct = direct_avx512,
    .pack_f32 = pack_f32_avx512, .threshold_pack = threshold_pack_avx512, .peak = peak_avx512,
    .float_row = xnor_float_row_avx2,
    .depthwise_row = xnor_depthwise_row_avx2, .pool_row = xnor_pool_row_avx2,
    .winograd_input = xnor_winograd_input_avx2, .winograd_output = xnor_winograd_output_avx2,
    .fconv_block = xnor_fconv_block_avx2, /* every AVX-512 CPU has AVX2 and FMA */
};
#endif /* XNOR_X86 */
