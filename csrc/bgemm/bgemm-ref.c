/* Reference binary GEMM kernels: plain loops and a portable popcount, obviously right.
 * Every optimised kernel is tested against these (and against numpy from Python). */
#include "../dispatch.h"
#include "bgemm.h"
#include "../bconv/output.h"
#include "../pack/pack.h"

static void ukernel_ref(size_t mr, size_t nr, size_t kc, const uint64_t *a, size_t lda,
                        const uint64_t *panel, int32_t *c, size_t ldc, int32_t k, unsigned flags) {
    const size_t NR = 8;
    for (size_t r = 0; r < mr; r++) {
        for (size_t j = 0; j < nr; j++) {
            int64_t count = (flags & XNOR_UK_FIRST) ? 0 : c[r * ldc + j];
            for (size_t w = 0; w < kc; w++)
                count += xnor_popcount64_portable(a[r * lda + w] ^ panel[w * NR + j]);
            c[r * ldc + j] = (flags & XNOR_UK_LAST) ? (int32_t)(k - 2 * count) : (int32_t)count;
        }
    }
}

static void direct_ref(size_t m, size_t n, size_t words, uint64_t tail_mask, const uint64_t *a,
                       size_t lda, const uint64_t *b, size_t ldb, int32_t *c, size_t ldc, int32_t k) {
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < n; j++) {
            int64_t count = 0;
            for (size_t w = 0; w < words; w++) {
                uint64_t x = a[i * lda + w] ^ b[j * ldb + w];
                if (w == words - 1) x &= tail_mask;
                count += xnor_popcount64_portable(x);
            }
            c[i * ldc + j] = (int32_t)(k - 2 * count);
        }
    }
}

static double peak_ref(uint64_t iters, uint64_t *sink) {
    uint64_t a0 = 1, a1 = 3, b0 = 0x55, b1 = 0x33, c0 = 0, c1 = 0, c2 = 0, c3 = 0;
    for (uint64_t i = 0; i < iters; i++) {
        c0 += xnor_popcount64_portable(a0 ^ b0);
        c1 += xnor_popcount64_portable(a1 ^ b0);
        c2 += xnor_popcount64_portable(a0 ^ b1);
        c3 += xnor_popcount64_portable(a1 ^ b1);
        a0 += c0 & 1; /* keep the inputs live so the loop is not folded */
    }
    *sink = c0 + c1 + c2 + c3;
    return (double)iters * 4 * 64;
}

const xnor_kernels xnor_kernels_ref = {
    .name = "ref", .mr = 4, .nr = 8, .direct_max_m = 0,
    .gemm_ukernel = ukernel_ref, .gemm_direct = direct_ref,
    .pack_f32 = xnor_pack_f32_ref, .threshold_pack = xnor_threshold_pack_ref, .peak = peak_ref,
};
