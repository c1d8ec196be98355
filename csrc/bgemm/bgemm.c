/* Binary GEMM driver (BLIS/ruy structure): validation, B packed into NR-wide panels, cache blocking
 * over k (a panel's k-block stays in L1) and m, threads over panels or rows.  The ISA only supplies
 * the micro-kernel; this file is the same for every path. */
#include <stdlib.h>
#include <string.h>
#include "../dispatch.h"
#include "bgemm.h"

#define L1_PANEL_BYTES (32 * 1024)   /* one panel k-block, read MR rows at a time */
#define L2_A_BYTES (1024 * 1024)     /* the rows of A swept across a panel */
#define MIN_WORK_PER_THREAD 32768    /* m*n*words below which threading does not pay */

void xnor_pack_panel(const uint64_t *b, size_t ldb, size_t j0, size_t n, size_t nr_panel, size_t w0,
                     size_t kc, size_t k, int split, uint64_t *panel) {
    size_t words = XNOR_WORDS(k), cols = n - j0 < nr_panel ? n - j0 : nr_panel;
    uint64_t tail = XNOR_TAIL_MASK(k);
    for (size_t w = 0; w < kc; w++) {
        uint64_t mask = (w0 + w == words - 1) ? tail : ~UINT64_C(0);
        uint64_t *dst = panel + w * nr_panel * (split ? 2 : 1);
        for (size_t j = 0; j < nr_panel; j++) {
            uint64_t v = j < cols ? b[(j0 + j) * ldb + w0 + w] & mask : 0;
            if (split) {
                dst[j] = v & XNOR_NIBBLES_LO;
                dst[nr_panel + j] = (v >> 4) & XNOR_NIBBLES_LO;
            } else {
                dst[j] = v;
            }
        }
    }
}

VECTORIZE void xnor_split_nibbles(const uint64_t *src, size_t n, uint64_t *dst) {
    for (size_t i = 0; i < n; i++) {
        dst[2 * i] = src[i] & XNOR_NIBBLES_LO;
        dst[2 * i + 1] = (src[i] >> 4) & XNOR_NIBBLES_LO;
    }
}

typedef struct {
    const xnor_kernels *kern;
    const uint64_t *a, *b;
    int32_t *c;
    size_t m, n, k, words, kc, mc, panels;
    uint64_t *packed;           /* panels * NR * words (twice that when split) */
    const uint64_t *a_split;    /* A nibble-split (m * 2 * words), or NULL: the plain layout */
    int split_panels;           /* 1: threads own panel ranges; 0: threads own row ranges */
} gemm_job;

static void pack_task(void *ctx, int t, int nt) {
    gemm_job *job = ctx;
    size_t NR = job->kern->nr, p0, p1;
    xnor_split(job->panels, 1, t, nt, &p0, &p1);
    int split = job->a_split != NULL;
    for (size_t p = p0; p < p1; p++)
        xnor_pack_panel(job->b, job->words, p * NR, job->n, NR, 0, job->words, job->k, split,
                        job->packed + p * NR * job->words * (split ? 2 : 1));
}

static void split_task(void *ctx, int t, int nt) {
    gemm_job *job = ctx;
    size_t r0, r1;
    xnor_split(job->m, 1, t, nt, &r0, &r1);
    xnor_split_nibbles(job->a + r0 * job->words, (r1 - r0) * job->words, (uint64_t *)job->a_split + r0 * 2 * job->words);
}

static void compute_task(void *ctx, int t, int nt) {
    gemm_job *job = ctx;
    const xnor_kernels *kern = job->kern;
    size_t MR = kern->mr, NR = kern->nr, W = job->words;
    size_t p0 = 0, p1 = job->panels, r0 = 0, r1 = job->m;
    /* the split layout has two words per word in both operands */
    size_t s = job->a_split ? 2 : 1;
    const uint64_t *a = job->a_split ? job->a_split : job->a;
    xnor_gemm_ukernel_fn ukernel = job->a_split ? kern->gemm_ukernel_split : kern->gemm_ukernel;
    if (job->split_panels) xnor_split(job->panels, 1, t, nt, &p0, &p1);
    else xnor_split(job->m, MR, t, nt, &r0, &r1);
    for (size_t w0 = 0; w0 < W; w0 += job->kc) {
        size_t kc = W - w0 < job->kc ? W - w0 : job->kc;
        unsigned flags = (w0 == 0 ? XNOR_UK_FIRST : 0) | (w0 + kc == W ? XNOR_UK_LAST : 0);
        for (size_t i0 = r0; i0 < r1; i0 += job->mc) {
            size_t i1 = r1 - i0 < job->mc ? r1 : i0 + job->mc;
            for (size_t p = p0; p < p1; p++) {
                const uint64_t *panel = job->packed + s * (p * NR * W + w0 * NR);
                size_t j0 = p * NR, nr = job->n - j0 < NR ? job->n - j0 : NR;
                for (size_t i = i0; i < i1; i += MR) {
                    size_t mr = i1 - i < MR ? i1 - i : MR;
                    ukernel(mr, nr, kc, a + s * (i * W + w0), s * W, panel, job->c + i * job->n + j0, job->n,
                            (int32_t)job->k, flags);
                }
            }
        }
    }
}

typedef struct {
    const xnor_kernels *kern;
    const uint64_t *a, *b;
    int32_t *c;
    size_t m, n, k, words;
} direct_job;

static void direct_task(void *ctx, int t, int nt) {
    direct_job *job = ctx;
    size_t j0, j1;
    xnor_split(job->n, 8, t, nt, &j0, &j1);
    if (j0 < j1)
        job->kern->gemm_direct(job->m, j1 - j0, job->words, XNOR_TAIL_MASK(job->k), job->a,
                               job->words, job->b + j0 * job->words, job->words, job->c + j0,
                               job->n, (int32_t)job->k);
}

/* Garbage tail bits in a row of A add popcount(garbage) to every count of that row (the panels'
 * tails are cleared), so remove it afterwards instead of masking inside every micro-kernel. */
static void correct_a_tails(const uint64_t *a, int32_t *c, size_t m, size_t n, size_t k) {
    uint64_t garbage_mask = ~XNOR_TAIL_MASK(k);
    size_t W = XNOR_WORDS(k);
    if (!garbage_mask) return;
    for (size_t i = 0; i < m; i++) {
        int32_t g = (int32_t)xnor_popcount64_portable(a[i * W + W - 1] & garbage_mask);
        if (g)
            for (size_t j = 0; j < n; j++) c[i * n + j] += 2 * g;
    }
}

xnor_status xnor_bgemm(const uint64_t *a, const uint64_t *b, int32_t *c, size_t m, size_t n,
                       size_t k, int num_threads) {
    xnor_status st = xnor_init();
    if (st != XNOR_OK) return st;
    if (!a || !b || !c) return xnor_fail(XNOR_EINVAL, "bgemm: null pointer");
    if (k == 0 || k > INT32_MAX / 2)
        return xnor_fail(XNOR_EINVAL, "bgemm: k=%zu out of range [1, %d]", k, INT32_MAX / 2);
    if (m == 0 || n == 0) return XNOR_OK;
    size_t W = XNOR_WORDS(k);
    if (m > SIZE_MAX / W / 16 || n > SIZE_MAX / W / 8 || m > SIZE_MAX / n / 4)
        return xnor_fail(XNOR_EINVAL, "bgemm: m=%zu n=%zu k=%zu overflow the address space", m, n, k);
    const xnor_kernels *kern = xnor_active();

    if (m <= kern->direct_max_m) {
        direct_job job = {kern, a, b, c, m, n, k, W};
        xnor_parallel(xnor_threads_for(m * n * W, MIN_WORK_PER_THREAD, num_threads), direct_task, &job);
        return XNOR_OK;
    }

    size_t NR = kern->nr, MR = kern->mr, panels = (n + NR - 1) / NR;
    if (panels > SIZE_MAX / NR / W / 16) return xnor_fail(XNOR_EINVAL, "bgemm: n*k too large");
    /* split A is a separate pass over A here (the conv splits each block in L1): worth it when every
     * row meets at least 16 panels (3136x64x576 ran no faster split, 256x256x4096 ~1.3x) */
    int split = kern->gemm_ukernel_split && m >= XNOR_SPLIT_MIN_PIXELS && n >= 16 * NR;
    size_t s = split ? 2 : 1;
    size_t b_bytes = (s * panels * NR * W * sizeof(uint64_t) + 63) & ~(size_t)63;
    size_t a_bytes = split ? (2 * m * W * sizeof(uint64_t) + 63) & ~(size_t)63 : 0;
    uint64_t *packed = aligned_alloc(64, b_bytes + a_bytes);
    if (!packed) return xnor_fail(XNOR_ENOMEM, "bgemm: cannot allocate %zu bytes for packed operands", b_bytes + a_bytes);

    gemm_job job = {kern, a, b, c, m, n, k, W, 0, 0, panels, packed, split ? packed + b_bytes / 8 : NULL, 0};
    job.kc = L1_PANEL_BYTES / (NR * sizeof(uint64_t) * s); /* split words take twice the bytes */
    if (job.kc < 8) job.kc = 8;
    if (W <= job.kc + job.kc / 2) job.kc = W;   /* a short last block is not worth a second pass */
    job.mc = L2_A_BYTES / (job.kc * sizeof(uint64_t) * s);
    job.mc = job.mc < MR ? MR : job.mc - job.mc % MR;
    int nt = xnor_threads_for(m * n * W, MIN_WORK_PER_THREAD, num_threads);
    job.split_panels = panels >= (size_t)nt * 2 || (m + MR - 1) / MR < (size_t)nt * 2;
    xnor_parallel(panels >= 2 ? nt : 1, pack_task, &job);
    if (split) xnor_parallel(nt, split_task, &job);
    xnor_parallel(nt, compute_task, &job);
    free(packed);
    correct_a_tails(a, c, m, n, k);
    return XNOR_OK;
}
