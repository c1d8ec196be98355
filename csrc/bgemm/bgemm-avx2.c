/* AVX2 kernels (Haswell and later Intel, Zen and later AMD).
 *
 * AVX2 has no vector popcount, so each byte is counted with two 16-entry table lookups (VPSHUFB on its
 * low and high nibble) and the counts are summed in byte counters, widened to 64-bit lanes with VPSADBW
 * only every BYTE_STEPS k-steps.  The micro-kernel is the outer-product form of the AVX-512 one: MR = 4
 * rows x NR = 8 columns, each k-step loads one word of each of the 8 columns (from the panel) and
 * broadcasts one word of each of the 4 rows, so the 8 byte counters hold per-column counts.  Two forms:
 * on plain words the inner loop is XOR, AND, SHIFT, AND, 2 x VPSHUFB, 2 x ADD per 256 binary MACs; on
 * nibble-split operands (bgemm.h; the drivers use it where weights are reused over many pixels) it
 * is 2 x (XOR, VPSHUFB, ADD), ~1.3x faster.  Both fit the 16 ymm registers. */
#include "../dispatch.h"
#include "bgemm.h"
#include "../bconv/output.h"
#include "../fconv/fconv.h"
#include "../fconv/winograd.h"
#ifdef XNOR_X86
#include <immintrin.h>

#define XNOR_TARGET_AVX2 __attribute__((target("avx2,popcnt")))
#define INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 32")
/* The 64-bit totals are touched once per BYTE_STEPS k-steps.  Handing the whole array to an asm as a
 * memory operand (with a memory clobber) keeps it on the stack, which leaves the ymm registers to the
 * byte counters of the hot loop; otherwise GCC keeps the totals in registers and spills counters. */
#define KEEP_IN_MEMORY(array) __asm__ volatile("" : : "m"(array) : "memory")

#define MR 4
#define NR 8
#define NV (NR / 4)

/* A k-step adds at most 8 to a byte counter (one 8-bit slice of a word), so 31 steps
 * (8 * 31 = 248) are the most a byte can take before it must be widened. */
#define BYTE_STEPS 31

/* Per-byte popcount of x: nibble_counts[x & 15] + nibble_counts[x >> 4], in every byte.  There is no
 * byte shift, so the high nibbles are shifted down in 16-bit lanes and the bits that come in from the
 * neighbouring byte are masked off (VPSHUFB also needs bit 7 of each index clear). */
XNOR_TARGET_AVX2 INLINE __m256i popcount_bytes(__m256i x) {
    const __m256i nibble_counts = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                                   0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low_nibbles = _mm256_set1_epi8(0x0f);
    __m256i lo = _mm256_and_si256(x, low_nibbles);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), low_nibbles);
    return _mm256_add_epi8(_mm256_shuffle_epi8(nibble_counts, lo), _mm256_shuffle_epi8(nibble_counts, hi));
}

/* Byte counters -> the sum of each 64-bit lane's 8 bytes. */
XNOR_TARGET_AVX2 INLINE __m256i widen_bytes(__m256i byte_counts) {
    return _mm256_sad_epu8(byte_counts, _mm256_setzero_si256());
}

XNOR_TARGET_AVX2 INLINE uint64_t sum_lanes(__m256i x) {
    __m128i s = _mm_add_epi64(_mm256_castsi256_si128(x), _mm256_extracti128_si256(x, 1));
    return (uint64_t)_mm_cvtsi128_si64(_mm_add_epi64(s, _mm_unpackhi_epi64(s, s)));
}

/* Write one row of the tile: 64-bit column counts cols 0-3 and 4-7 -> 8 int32 (counts < 2^31). */
_Static_assert(NR == 8, "store_row writes the NR = 8 columns of two ymm of counts");
XNOR_TARGET_AVX2 INLINE void store_row(int32_t *c, size_t nr, __m256i cols0_3, __m256i cols4_7,
                                        int32_t k, unsigned flags) {
    /* low halves of the 64-bit lanes in the order 0 1 4 5 | 2 3 6 7, then the middle pair swapped */
    __m256i even = _mm256_castps_si256(_mm256_shuffle_ps(_mm256_castsi256_ps(cols0_3),
                                                         _mm256_castsi256_ps(cols4_7), _MM_SHUFFLE(2, 0, 2, 0)));
    __m256i count = _mm256_permute4x64_epi64(even, _MM_SHUFFLE(3, 1, 2, 0));
    if (nr == NR) { /* a full panel: plain moves (AMD cores run masked stores as long microcode) */
        if (!(flags & XNOR_UK_FIRST)) count = _mm256_add_epi32(count, _mm256_loadu_si256((const __m256i *)c));
        if (flags & XNOR_UK_LAST) count = _mm256_sub_epi32(_mm256_set1_epi32(k), _mm256_slli_epi32(count, 1));
        _mm256_storeu_si256((__m256i *)c, count);
        return;
    }
    __m256i keep = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)nr), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    if (!(flags & XNOR_UK_FIRST)) count = _mm256_add_epi32(count, _mm256_maskload_epi32(c, keep));
    if (flags & XNOR_UK_LAST) count = _mm256_sub_epi32(_mm256_set1_epi32(k), _mm256_slli_epi32(count, 1));
    _mm256_maskstore_epi32(c, keep, count);
}

/* rows x NR tile of counts, on plain words or (split) on nibble-split operands (bgemm.h): there the
 * XOR of two split words is the lookup index, so a product costs XOR, VPSHUFB, ADD per nibble half, 6
 * vector ops per 256 binary MACs instead of 8 (registers: 8 counters, the table, 2 x 2 panel vectors, 2
 * broadcasts, a temporary).  A k-step adds at most 8 to a byte either way.  One flat k-loop with a
 * countdown to the next widening, rather than a loop per BYTE_STEPS chunk: with the nested form GCC
 * copied and spilled byte counters in the inner loop. */
XNOR_TARGET_AVX2 INLINE void tile(const int split, const size_t rows, size_t nr, size_t kc, const uint64_t *a,
                                   size_t lda, const uint64_t *panel, int32_t *c, size_t ldc,
                                   int32_t k, unsigned flags) {
    const __m256i nibble_counts = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                                   0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    __m256i total[MR][NV], bytes[MR][NV];
    UNROLL for (size_t r = 0; r < MR; r++)
        UNROLL for (size_t v = 0; v < NV; v++) total[r][v] = bytes[r][v] = _mm256_setzero_si256();
    KEEP_IN_MEMORY(total);
    size_t until_widen = BYTE_STEPS;
    for (size_t w = 0; w < kc; w++) {
        if (split) {
            const uint64_t *pw = panel + w * 2 * NR;
            __m256i lo[NV], hi[NV];
            UNROLL for (size_t v = 0; v < NV; v++) {
                lo[v] = _mm256_loadu_si256((const __m256i *)(pw + v * 4));
                hi[v] = _mm256_loadu_si256((const __m256i *)(pw + NR + v * 4));
            }
            UNROLL for (size_t r = 0; r < rows; r++) {
                __m256i a_lo = _mm256_set1_epi64x((long long)a[r * lda + 2 * w]);
                __m256i a_hi = _mm256_set1_epi64x((long long)a[r * lda + 2 * w + 1]);
                UNROLL for (size_t v = 0; v < NV; v++) {
                    bytes[r][v] = _mm256_add_epi8(bytes[r][v], _mm256_shuffle_epi8(nibble_counts, _mm256_xor_si256(a_lo, lo[v])));
                    bytes[r][v] = _mm256_add_epi8(bytes[r][v], _mm256_shuffle_epi8(nibble_counts, _mm256_xor_si256(a_hi, hi[v])));
                }
            }
        } else {
            const uint64_t *pw = panel + w * NR;
            /* the plain form serves layers with few pixels (a dense layer at batch 1), whose weights
             * stream from DRAM once per run: ask for them 4 KB ahead, into L2 (BinaryAlexNet's three
             * dense layers ~25% faster in the runtime, a 19 MB one 1.5x; measured A/B) */
            _mm_prefetch((const char *)(pw + 64 * NR), _MM_HINT_T2);
            __m256i b[NV];
            UNROLL for (size_t v = 0; v < NV; v++) b[v] = _mm256_loadu_si256((const __m256i *)(pw + v * 4));
            UNROLL for (size_t r = 0; r < rows; r++) {
                __m256i av = _mm256_set1_epi64x((long long)a[r * lda + w]);
                UNROLL for (size_t v = 0; v < NV; v++)
                    bytes[r][v] = _mm256_add_epi8(bytes[r][v], popcount_bytes(_mm256_xor_si256(av, b[v])));
            }
        }
        if (--until_widen == 0) {
            UNROLL for (size_t r = 0; r < rows; r++)
                UNROLL for (size_t v = 0; v < NV; v++) {
                    total[r][v] = _mm256_add_epi64(total[r][v], widen_bytes(bytes[r][v]));
                    bytes[r][v] = _mm256_setzero_si256();
                }
            until_widen = BYTE_STEPS;
        }
    }
    UNROLL for (size_t r = 0; r < rows; r++)
        UNROLL for (size_t v = 0; v < NV; v++) total[r][v] = _mm256_add_epi64(total[r][v], widen_bytes(bytes[r][v]));
    UNROLL for (size_t r = 0; r < rows; r++) store_row(c + r * ldc, nr, total[r][0], total[r][1], k, flags);
}

/* mr rows with the row count a compile-time constant of tile(). */
XNOR_TARGET_AVX2 INLINE void tile_rows(const int split, size_t mr, size_t nr, size_t kc, const uint64_t *a,
                                        size_t lda, const uint64_t *panel, int32_t *c, size_t ldc, int32_t k,
                                        unsigned flags) {
    switch (mr) {
    case 4: tile(split, 4, nr, kc, a, lda, panel, c, ldc, k, flags); break;
    case 3: tile(split, 3, nr, kc, a, lda, panel, c, ldc, k, flags); break;
    case 2: tile(split, 2, nr, kc, a, lda, panel, c, ldc, k, flags); break;
    default: tile(split, 1, nr, kc, a, lda, panel, c, ldc, k, flags); break;
    }
}

XNOR_TARGET_AVX2
static void ukernel_avx2(size_t mr, size_t nr, size_t kc, const uint64_t *a, size_t lda,
                         const uint64_t *panel, int32_t *c, size_t ldc, int32_t k, unsigned flags) {
    tile_rows(0, mr, nr, kc, a, lda, panel, c, ldc, k, flags);
}

XNOR_TARGET_AVX2
static void ukernel_split_avx2(size_t mr, size_t nr, size_t kc, const uint64_t *a, size_t lda,
                               const uint64_t *panel, int32_t *c, size_t ldc, int32_t k, unsigned flags) {
    tile_rows(1, mr, nr, kc, a, lda, panel, c, ldc, k, flags);
}

/* Direct kernel for small m: dot products along k, 4 words per ymm, 4 rows of b at a time (they stay
 * in L1 while the m rows of a pass over them).  Used up to m = 4 (= MR): at n = k = 4096 it is ~2x the
 * packed path for m = 3..4, whose cost there is mostly packing B for a single row tile. */
XNOR_TARGET_AVX2 INLINE void dot_block(const size_t nb, size_t words, __m256i last_mask,
                                        const uint64_t *ar, const uint64_t *b, size_t ldb,
                                        int32_t *c, int32_t k) {
    __m256i total[4], bytes[4];
    UNROLL for (size_t j = 0; j < 4; j++) total[j] = bytes[j] = _mm256_setzero_si256();
    KEEP_IN_MEMORY(total);
    size_t full = (words - 1) / 4, until_widen = BYTE_STEPS; /* full: chunks before the last word's */
    for (size_t q = 0; q < full; q++) {
        __m256i av = _mm256_loadu_si256((const __m256i *)(ar + q * 4));
        UNROLL for (size_t j = 0; j < nb; j++) {
            __m256i bv = _mm256_loadu_si256((const __m256i *)(b + j * ldb + q * 4));
            bytes[j] = _mm256_add_epi8(bytes[j], popcount_bytes(_mm256_xor_si256(av, bv)));
        }
        if (--until_widen == 0) {
            UNROLL for (size_t j = 0; j < nb; j++) {
                total[j] = _mm256_add_epi64(total[j], widen_bytes(bytes[j]));
                bytes[j] = _mm256_setzero_si256();
            }
            until_widen = BYTE_STEPS;
        }
    }
    /* the last 1..4 words: masked loads read nothing past the row's end (unread lanes are 0) */
    size_t rest = words - full * 4;
    __m256i in_row = _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)rest), _mm256_setr_epi64x(0, 1, 2, 3));
    __m256i av = _mm256_maskload_epi64((const long long *)(ar + full * 4), in_row);
    UNROLL for (size_t j = 0; j < nb; j++) {
        __m256i bv = _mm256_maskload_epi64((const long long *)(b + j * ldb + full * 4), in_row);
        __m256i x = _mm256_and_si256(_mm256_xor_si256(av, bv), last_mask);
        bytes[j] = _mm256_add_epi8(bytes[j], popcount_bytes(x)); /* until_widen >= 1 step was left */
        c[j] = k - 2 * (int32_t)sum_lanes(_mm256_add_epi64(total[j], widen_bytes(bytes[j])));
    }
}

XNOR_TARGET_AVX2
static void direct_avx2(size_t m, size_t n, size_t words, uint64_t tail_mask, const uint64_t *a,
                        size_t lda, const uint64_t *b, size_t ldb, int32_t *c, size_t ldc, int32_t k) {
    /* lane (words-1) % 4 of the last chunk holds the row's last word */
    __m256i is_last = _mm256_cmpeq_epi64(_mm256_set1_epi64x((long long)((words - 1) % 4)),
                                         _mm256_setr_epi64x(0, 1, 2, 3));
    __m256i last_mask = _mm256_blendv_epi8(_mm256_set1_epi64x(-1), _mm256_set1_epi64x((long long)tail_mask), is_last);
    size_t j = 0;
    for (; j + 4 <= n; j += 4)
        for (size_t i = 0; i < m; i++)
            dot_block(4, words, last_mask, a + i * lda, b + j * ldb, ldb, c + i * ldc + j, k);
    for (; j < n; j++)
        for (size_t i = 0; i < m; i++)
            dot_block(1, words, last_mask, a + i * lda, b + j * ldb, ldb, c + i * ldc + j, k);
}

/* 8 floats -> 8 bits: bit i set when v[i] < 0 (ordered compare, so NaN and -0.0 give 0). */
XNOR_TARGET_AVX2 INLINE uint64_t negative_bits(__m256 v) {
    return (uint64_t)(unsigned)_mm256_movemask_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ));
}

XNOR_TARGET_AVX2
static void pack_f32_avx2(const float *x, size_t rows, size_t k, uint64_t *out) {
    size_t words = XNOR_WORDS(k);
    const __m256i lane_index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (size_t r = 0; r < rows; r++) {
        const float *row = x + r * k;
        uint64_t *dst = out + r * words;
        size_t w = 0;
        for (; (w + 1) * 64 <= k; w++) {
            const float *p = row + w * 64;
            uint64_t bits = 0;
            UNROLL for (size_t q = 0; q < 8; q++) bits |= negative_bits(_mm256_loadu_ps(p + q * 8)) << (q * 8);
            dst[w] = bits;
        }
        if (w < words) { /* 1..63 floats left: masked loads, unread lanes are 0.0f and give bit 0 */
            size_t left = k - w * 64;
            uint64_t bits = 0;
            for (size_t q = 0; q * 8 < left; q++) {
                __m256i in_row = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(left - q * 8)), lane_index);
                bits |= negative_bits(_mm256_maskload_ps(row + w * 64 + q * 8, in_row)) << (q * 8);
            }
            dst[w] = bits;
        }
    }
}

/* The split micro-kernel's inner chain on registers only: per iteration 8 products of 256 bits, each
 * two XOR-VPSHUFB-ADDs (low and high nibbles), as in one k-step of tile_split().  They go into 4 byte
 * counters (8 counters plus the sources would not fit in 16 registers), so the counters are widened
 * every 15 iterations (4 * 4 * 15 < 256).  The empty asm after each add keeps GCC from reassociating
 * the adds, which computes all the lookups first and spills them. */
#define PEAK_BYTE_STEPS 15
XNOR_TARGET_AVX2
static double peak_avx2(uint64_t iters, uint64_t *sink) {
    const __m256i nibble_counts = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                                   0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    __m256i a0 = _mm256_set1_epi64x(1), a1 = _mm256_set1_epi64x(3), a2 = _mm256_set1_epi64x(7);
    __m256i b0 = _mm256_set1_epi64x(0x05), b1 = _mm256_set1_epi64x(0x03);
    __m256i total = _mm256_setzero_si256(), c0 = total, c1 = total, c2 = total, c3 = total;
    unsigned until_widen = PEAK_BYTE_STEPS;
    for (uint64_t it = 0; it < iters; it++) {
        __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(b0), "+x"(b1));
#define STEP(acc, x, y) acc = _mm256_add_epi8(acc, _mm256_shuffle_epi8(nibble_counts, _mm256_xor_si256(x, y))); __asm__("" : "+x"(acc));
        STEP(c0, a0, b0) STEP(c1, a0, b1) STEP(c2, a1, b0) STEP(c3, a1, b1)
        STEP(c0, a2, b0) STEP(c1, a2, b1) STEP(c2, a0, a1) STEP(c3, a1, a2)
        STEP(c0, a1, b0) STEP(c1, a1, b1) STEP(c2, a2, b0) STEP(c3, a2, b1)
        STEP(c0, a0, a2) STEP(c1, a0, a1) STEP(c2, a2, a1) STEP(c3, b0, b1)
#undef STEP
        if (--until_widen == 0) {
            total = _mm256_add_epi64(total, _mm256_add_epi64(_mm256_add_epi64(widen_bytes(c0), widen_bytes(c1)),
                                                             _mm256_add_epi64(widen_bytes(c2), widen_bytes(c3))));
            c0 = c1 = c2 = c3 = _mm256_setzero_si256();
            until_widen = PEAK_BYTE_STEPS;
        }
    }
    total = _mm256_add_epi64(total, _mm256_add_epi64(_mm256_add_epi64(widen_bytes(c0), widen_bytes(c1)),
                                                     _mm256_add_epi64(widen_bytes(c2), widen_bytes(c3))));
    *sink = sum_lanes(total);
    return (double)iters * 8 * 256;
}

/* Packed output: 8 compares per instruction, their sign bits gathered by movemask. */
XNOR_TARGET_AVX2
static void threshold_pack_avx2(const int32_t *acc, const int32_t *thresholds, const uint64_t *flip_bits,
                                size_t n, uint64_t *out) {
    for (size_t w = 0; w * 64 < n; w++) {
        size_t base = w * 64, cnt = n - base < 64 ? n - base : 64, i = 0;
        uint64_t bits = 0;
        for (; i + 8 <= cnt; i += 8) {
            __m256i a = _mm256_loadu_si256((const __m256i *)(acc + base + i));
            __m256i t = _mm256_loadu_si256((const __m256i *)(thresholds + base + i));
            bits |= (uint64_t)(unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(t, a))) << i;
        }
        for (; i < cnt; i++) bits |= (uint64_t)(acc[base + i] < thresholds[base + i]) << i;
        out[w] = flip_bits ? bits ^ flip_bits[w] : bits;
    }
}

const xnor_kernels xnor_kernels_avx2 = {
    .name = "avx2", .mr = MR, .nr = NR, .direct_max_m = 4,
    .gemm_ukernel = ukernel_avx2, .gemm_ukernel_split = ukernel_split_avx2, .gemm_direct = direct_avx2,
    .pack_f32 = pack_f32_avx2, .threshold_pack = threshold_pack_avx2, .peak = peak_avx2,
    .float_row = xnor_float_row_avx2,
    .depthwise_row = xnor_depthwise_row_avx2, .pool_row = xnor_pool_row_avx2,
    .winograd_input = xnor_winograd_input_avx2, .winograd_output = xnor_winograd_output_avx2,
    .fconv_block = xnor_fconv_block_avx2,
};
#endif /* XNOR_X86 */
