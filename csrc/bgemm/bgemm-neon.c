/* AArch64 Advanced SIMD (NEON) kernels.  Advanced SIMD is mandatory on AArch64, so no target
 * attributes and no feature test are needed; on other architectures this file compiles to nothing.
 *
 * NEON has no 64-bit popcount, only CNT (vcntq_u8: the popcount of each byte, 0..8).  The chain is
 *   EOR -> CNT -> ADDP tree -> ADD into a byte accumulator, widened now and then:
 *
 * Micro-kernel: MR = 4 rows x NR = 8 columns, outer-product form.  Each k-step loads one word of each
 * of the 8 columns (4 q-registers from the NR-interleaved panel, 2 columns per register) and broadcasts
 * one word of each of the 4 rows of A (vdupq_n_u64).  For a row, the 4 CNT results are folded by a
 * 3-ADDP tree (vpaddq_u8 adds neighbouring bytes) into ONE byte vector whose bytes 2j, 2j+1 belong to
 * column j, so the accumulator lanes are per-column counts and no horizontal reduction is ever needed:
 * vpadalq_u8 later turns the byte pairs into u16 lane j = column j.  Per row and k-step that is
 * 4 EOR + 4 CNT + 3 ADDP + 1 ADD = 12 vector ops for 512 binary MACs, 3 ops per 128-bit vector (the
 * floor: each CNT result needs one op to be merged into an accumulator), and only one byte
 * accumulator per row, so the tile fits the 32 q-registers with room to spare:
 *   4 byte accumulators + 4 u16 accumulators + 8 u32 totals + 4 panel vectors + 1 broadcast + temps.
 *
 * Overflow bounds (they fix the loop structure):
 *   - a byte of CNT is <= 8; after the ADDP tree a byte sums 4 CNT bytes, so it is <= 32 per k-step;
 *     a u8 lane saturates at 255, so a byte accumulator takes at most BLOCK = 7 k-steps (7*32 = 224),
 *     then it is widened with vpadalq_u8 into u16 (adds byte pairs: <= 64 per lane per k-step);
 *   - a u16 lane then takes at most EPOCH = 146 blocks = 1022 k-steps (1022*64 = 65408 <= 65535), then
 *     it is widened into u32 (vaddw_u16), which holds any count (k <= INT32_MAX/2).
 */
#include <string.h>
#include "../dispatch.h" /* outside the guard: on x86 the file is then not an empty translation unit */
#include "bgemm.h"
#include "../bconv/output.h"

#ifdef XNOR_ARM64
#include <arm_neon.h>

#define INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 8")

#define MR 4
#define NR 8
#define BLOCK 7              /* k-steps per byte accumulator (<= 32 per byte per step, 255 max) */
#define EPOCH (146 * BLOCK)  /* k-steps per u16 accumulator (<= 64 per lane per step, 65535 max) */
#define DR 3                 /* rows of the direct kernel handled together (= direct_max_m) */

/* popcount(a ^ b[v]) for v < 4, folded by an ADDP tree into one byte vector: byte q of the result is
 * the sum of CNT bytes 4q..4q+3 of the 64-byte concatenation b[0] b[1] b[2] b[3] (each xored with a),
 * so it is <= 32.  With 2 columns per vector (micro-kernel) bytes 2j, 2j+1 are column j; with 1 column
 * per vector (direct kernel) bytes 4j..4j+3 are column j. */
INLINE uint8x16_t xor_count(uint64x2_t a, const uint64x2_t b[4]) {
    uint8x16_t c0 = vcntq_u8(vreinterpretq_u8_u64(veorq_u64(a, b[0])));
    uint8x16_t c1 = vcntq_u8(vreinterpretq_u8_u64(veorq_u64(a, b[1])));
    uint8x16_t c2 = vcntq_u8(vreinterpretq_u8_u64(veorq_u64(a, b[2])));
    uint8x16_t c3 = vcntq_u8(vreinterpretq_u8_u64(veorq_u64(a, b[3])));
    return vpaddq_u8(vpaddq_u8(c0, c1), vpaddq_u8(c2, c3));
}

/* ---- micro-kernel ------------------------------------------------------------------------------ */

INLINE void store_row(int32_t *c, size_t nr, uint32x4_t lo, uint32x4_t hi, int32_t k, unsigned flags) {
    int32x4_t c0 = vreinterpretq_s32_u32(lo), c1 = vreinterpretq_s32_u32(hi);
    if (nr == NR) {
        if (!(flags & XNOR_UK_FIRST)) {
            c0 = vaddq_s32(c0, vld1q_s32(c));
            c1 = vaddq_s32(c1, vld1q_s32(c + 4));
        }
        if (flags & XNOR_UK_LAST) {
            int32x4_t kv = vdupq_n_s32(k);
            c0 = vsubq_s32(kv, vshlq_n_s32(c0, 1));
            c1 = vsubq_s32(kv, vshlq_n_s32(c1, 1));
        }
        vst1q_s32(c, c0);
        vst1q_s32(c + 4, c1);
    } else {
        int32_t t[NR];
        vst1q_s32(t, c0);
        vst1q_s32(t + 4, c1);
        for (size_t j = 0; j < nr; j++) {
            int64_t count = (int64_t)t[j] + ((flags & XNOR_UK_FIRST) ? 0 : c[j]);
            c[j] = (flags & XNOR_UK_LAST) ? (int32_t)(k - 2 * count) : (int32_t)count;
        }
    }
}

INLINE void tile(const size_t rows, size_t nr, size_t kc, const uint64_t *a, size_t lda,
                 const uint64_t *panel, int32_t *c, size_t ldc, int32_t k, unsigned flags) {
    uint32x4_t lo[MR], hi[MR]; /* columns 0..3 and 4..7 */
    UNROLL for (size_t r = 0; r < rows; r++) lo[r] = hi[r] = vdupq_n_u32(0);
    for (size_t e0 = 0; e0 < kc; e0 += EPOCH) {
        size_t e1 = kc - e0 < EPOCH ? kc : e0 + EPOCH;
        uint16x8_t acc16[MR];
        UNROLL for (size_t r = 0; r < rows; r++) acc16[r] = vdupq_n_u16(0);
        for (size_t b0 = e0; b0 < e1; b0 += BLOCK) {
            size_t b1 = e1 - b0 < BLOCK ? e1 : b0 + BLOCK;
            uint8x16_t acc8[MR];
            UNROLL for (size_t r = 0; r < rows; r++) acc8[r] = vdupq_n_u8(0);
            for (size_t w = b0; w < b1; w++) {
                const uint64_t *pw = panel + w * NR;
                uint64x2_t b[4] = {vld1q_u64(pw), vld1q_u64(pw + 2), vld1q_u64(pw + 4), vld1q_u64(pw + 6)};
                UNROLL for (size_t r = 0; r < rows; r++)
                    acc8[r] = vaddq_u8(acc8[r], xor_count(vdupq_n_u64(a[r * lda + w]), b));
            }
            UNROLL for (size_t r = 0; r < rows; r++) acc16[r] = vpadalq_u8(acc16[r], acc8[r]);
        }
        UNROLL for (size_t r = 0; r < rows; r++) {
            lo[r] = vaddw_u16(lo[r], vget_low_u16(acc16[r]));
            hi[r] = vaddw_high_u16(hi[r], acc16[r]);
        }
    }
    UNROLL for (size_t r = 0; r < rows; r++) store_row(c + r * ldc, nr, lo[r], hi[r], k, flags);
}

static void ukernel_neon(size_t mr, size_t nr, size_t kc, const uint64_t *a, size_t lda,
                         const uint64_t *panel, int32_t *c, size_t ldc, int32_t k, unsigned flags) {
    switch (mr) {
    case 4: tile(4, nr, kc, a, lda, panel, c, ldc, k, flags); break;
    case 3: tile(3, nr, kc, a, lda, panel, c, ldc, k, flags); break;
    case 2: tile(2, nr, kc, a, lda, panel, c, ldc, k, flags); break;
    default: tile(1, nr, kc, a, lda, panel, c, ldc, k, flags); break;
    }
}

/* ---- direct kernel ----------------------------------------------------------------------------- */

/* The last step's words of a row: two words, or one word and a zero lane (the second word would be
 * past the row, so it is not read). */
INLINE uint64x2_t load_last(const uint64_t *p, int two) {
    return two ? vld1q_u64(p) : vcombine_u64(vld1_u64(p), vdup_n_u64(0));
}

/* rows (<= DR) rows of a against 4 columns of b (bp[j]; missing columns repeat a valid one and are
 * not stored), two words per k-step, bytes 4j..4j+3 of the byte accumulator = column j.  The words
 * before the row's last one go through the unmasked loop; the last one or two words are one final
 * step with the last word masked by tail_mask (both a and b may hold garbage there). */
INLINE void direct_block(const size_t rows, size_t nb, size_t words, uint64_t tail_mask,
                         const uint64_t *a, size_t lda, const uint64_t *const bp[4], int32_t *c,
                         size_t ldc, int32_t k) {
    size_t pairs = (words - 1) / 2; /* two-word steps before the one holding the last word */
    uint32x4_t tot[DR];             /* lane j = column j */
    UNROLL for (size_t r = 0; r < rows; r++) tot[r] = vdupq_n_u32(0);
    for (size_t e0 = 0; e0 < pairs; e0 += EPOCH) {
        size_t e1 = pairs - e0 < EPOCH ? pairs : e0 + EPOCH;
        uint16x8_t acc16[DR];
        UNROLL for (size_t r = 0; r < rows; r++) acc16[r] = vdupq_n_u16(0);
        for (size_t s0 = e0; s0 < e1; s0 += BLOCK) {
            size_t s1 = e1 - s0 < BLOCK ? e1 : s0 + BLOCK;
            uint8x16_t acc8[DR];
            UNROLL for (size_t r = 0; r < rows; r++) acc8[r] = vdupq_n_u8(0);
            for (size_t s = s0; s < s1; s++) {
                uint64x2_t b[4] = {vld1q_u64(bp[0] + 2 * s), vld1q_u64(bp[1] + 2 * s),
                                   vld1q_u64(bp[2] + 2 * s), vld1q_u64(bp[3] + 2 * s)};
                UNROLL for (size_t r = 0; r < rows; r++)
                    acc8[r] = vaddq_u8(acc8[r], xor_count(vld1q_u64(a + r * lda + 2 * s), b));
            }
            UNROLL for (size_t r = 0; r < rows; r++) acc16[r] = vpadalq_u8(acc16[r], acc8[r]);
        }
        UNROLL for (size_t r = 0; r < rows; r++) tot[r] = vpadalq_u16(tot[r], acc16[r]);
    }
    /* last step: words 2*pairs .. words-1 (one or two of them), the row's last word masked */
    size_t w = 2 * pairs;
    int two = words - w == 2;
    uint64x2_t mask = two ? vcombine_u64(vdup_n_u64(~UINT64_C(0)), vdup_n_u64(tail_mask))
                          : vcombine_u64(vdup_n_u64(tail_mask), vdup_n_u64(0));
    uint64x2_t b[4];
    UNROLL for (size_t j = 0; j < 4; j++) b[j] = vandq_u64(load_last(bp[j] + w, two), mask);
    int32x4_t kv = vdupq_n_s32(k);
    UNROLL for (size_t r = 0; r < rows; r++) {
        uint64x2_t av = vandq_u64(load_last(a + r * lda + w, two), mask);
        uint32x4_t t = vpadalq_u16(tot[r], vpaddlq_u8(xor_count(av, b)));
        int32x4_t res = vsubq_s32(kv, vshlq_n_s32(vreinterpretq_s32_u32(t), 1));
        if (nb == 4) {
            vst1q_s32(c + r * ldc, res);
        } else {
            int32_t tmp[4];
            vst1q_s32(tmp, res);
            for (size_t j = 0; j < nb; j++) c[r * ldc + j] = tmp[j];
        }
    }
}

static void direct_neon(size_t m, size_t n, size_t words, uint64_t tail_mask, const uint64_t *a,
                        size_t lda, const uint64_t *b, size_t ldb, int32_t *c, size_t ldc, int32_t k) {
    for (size_t j = 0; j < n; j += 4) {
        size_t nb = n - j < 4 ? n - j : 4;
        const uint64_t *bp[4];
        for (size_t q = 0; q < 4; q++) bp[q] = b + (j + (q < nb ? q : nb - 1)) * ldb;
        for (size_t i = 0; i < m; i += DR) {
            const uint64_t *ai = a + i * lda;
            int32_t *ci = c + i * ldc + j;
            switch (m - i) {
            case 1: direct_block(1, nb, words, tail_mask, ai, lda, bp, ci, ldc, k); break;
            case 2: direct_block(2, nb, words, tail_mask, ai, lda, bp, ci, ldc, k); break;
            default: direct_block(3, nb, words, tail_mask, ai, lda, bp, ci, ldc, k); break;
            }
        }
    }
}

/* ---- float32 packing --------------------------------------------------------------------------- */

/* 64 floats -> one word, bit i = (p[i] < 0).  FCMLT against 0 is false for -0.0 and NaN, as the bit
 * convention requires (never the sign bit).  The 16 lane masks are narrowed to 64 mask bytes in order
 * (UZP1 keeps the low half of each lane), weighted 1, 2, 4, ..., 128 within each group of 8, and
 * an ADDP tree sums each group of 8 into one byte (disjoint bits: the sums are ORs). */
INLINE uint64_t pack64(const float *p) {
    static const uint8_t weights[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x16_t wv = vld1q_u8(weights);
    const float32x4_t zero = vdupq_n_f32(0.0f);
    uint8x16_t m[4];
    UNROLL for (size_t q = 0; q < 4; q++) {
        const float *s = p + 16 * q;
        uint32x4_t c0 = vcltq_f32(vld1q_f32(s), zero), c1 = vcltq_f32(vld1q_f32(s + 4), zero);
        uint32x4_t c2 = vcltq_f32(vld1q_f32(s + 8), zero), c3 = vcltq_f32(vld1q_f32(s + 12), zero);
        uint16x8_t h0 = vuzp1q_u16(vreinterpretq_u16_u32(c0), vreinterpretq_u16_u32(c1));
        uint16x8_t h1 = vuzp1q_u16(vreinterpretq_u16_u32(c2), vreinterpretq_u16_u32(c3));
        m[q] = vandq_u8(vuzp1q_u8(vreinterpretq_u8_u16(h0), vreinterpretq_u8_u16(h1)), wv);
    }
    /* bytes 0..3 <- floats 0..15 in groups of 4, 4..7 <- 16..31, ...; then groups of 8 */
    uint8x16_t t = vpaddq_u8(vpaddq_u8(m[0], m[1]), vpaddq_u8(m[2], m[3]));
    t = vpaddq_u8(t, t);
    return vgetq_lane_u64(vreinterpretq_u64_u8(t), 0);
}

static void pack_f32_neon(const float *x, size_t rows, size_t k, uint64_t *out) {
    size_t words = XNOR_WORDS(k);
    for (size_t r = 0; r < rows; r++) {
        const float *row = x + r * k;
        uint64_t *dst = out + r * words;
        size_t w = 0;
        for (; (w + 1) * 64 <= k; w++) dst[w] = pack64(row + w * 64);
        if (w < words) { /* partial last word: copy what the row has, pad with +0.0 (bit 0) */
            float tmp[64] = {0};
            memcpy(tmp, row + w * 64, (k - w * 64) * sizeof(float));
            dst[w] = pack64(tmp);
        }
    }
}

/* ---- peak -------------------------------------------------------------------------------------- */

/* The micro-kernel's inner chain on registers only: 4 "rows" against 4 "panel" vectors per step
 * (16 EOR, 16 CNT, 12 ADDP, 4 ADD = 16 * 128 binary MACs), with the same BLOCK/EPOCH widening. */
static double peak_neon(uint64_t iters, uint64_t *sink) {
    uint64x2_t a0 = vdupq_n_u64(1), a1 = vdupq_n_u64(3), a2 = vdupq_n_u64(7), a3 = vdupq_n_u64(15);
    uint64x2_t b[4] = {vdupq_n_u64(0x55), vdupq_n_u64(0x33), vdupq_n_u64(0x0f), vdupq_n_u64(0xff)};
    uint64_t sum = 0;
    for (uint64_t e0 = 0; e0 < iters; e0 += EPOCH) {
        uint64_t e1 = iters - e0 < EPOCH ? iters : e0 + EPOCH;
        uint16x8_t s0 = vdupq_n_u16(0), s1 = s0, s2 = s0, s3 = s0;
        for (uint64_t i0 = e0; i0 < e1; i0 += BLOCK) {
            uint64_t i1 = e1 - i0 < BLOCK ? e1 : i0 + BLOCK;
            uint8x16_t c0 = vdupq_n_u8(0), c1 = c0, c2 = c0, c3 = c0;
            for (uint64_t i = i0; i < i1; i++) {
                __asm__ volatile("" : "+w"(a0), "+w"(a1), "+w"(a2), "+w"(a3), "+w"(b[0]), "+w"(b[1]),
                                      "+w"(b[2]), "+w"(b[3]));
                c0 = vaddq_u8(c0, xor_count(a0, b));
                c1 = vaddq_u8(c1, xor_count(a1, b));
                c2 = vaddq_u8(c2, xor_count(a2, b));
                c3 = vaddq_u8(c3, xor_count(a3, b));
            }
            s0 = vpadalq_u8(s0, c0); s1 = vpadalq_u8(s1, c1);
            s2 = vpadalq_u8(s2, c2); s3 = vpadalq_u8(s3, c3);
        }
        sum += vaddlvq_u16(s0) + vaddlvq_u16(s1) + vaddlvq_u16(s2) + vaddlvq_u16(s3);
    }
    *sink = sum;
    return (double)iters * 16 * 128;
}

const xnor_kernels xnor_kernels_neon = {
    .name = "neon", .mr = MR, .nr = NR, .direct_max_m = DR,
    .gemm_ukernel = ukernel_neon, .gemm_direct = direct_neon,
    .pack_f32 = pack_f32_neon, .threshold_pack = xnor_threshold_pack_ref, .peak = peak_neon,
};

#endif /* XNOR_ARM64 */
