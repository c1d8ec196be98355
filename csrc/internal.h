/* Internal declarations shared by the kernel files: the per-ISA kernel table and its contracts. */
#ifndef XNOR_INTERNAL_H
#define XNOR_INTERNAL_H

#include "xnorinfer.h"

#if defined(__x86_64__) || defined(_M_X64)
#define XNOR_X86 1
#endif
#if defined(__aarch64__)
#define XNOR_ARM64 1
#endif

/* Loops worth vectorising that GCC's -O2 cost model leaves scalar (clang vectorises them anyway). */
#if defined(__GNUC__) && !defined(__clang__)
#define VECTORIZE __attribute__((optimize("tree-vectorize")))
#else
#define VECTORIZE
#endif

#define XNOR_WORDS(k) (((k) + 63) / 64)
/* Mask of the valid bits of a row's last word. */
#define XNOR_TAIL_MASK(k) (((k) % 64) ? ((UINT64_C(1) << ((k) % 64)) - 1) : ~UINT64_C(0))

/* The largest micro-tile any kernel uses; drivers size their stack buffers with these. */
#define XNOR_MAX_MR 8
#define XNOR_MAX_NR 64

/* Flags of a GEMM micro-kernel call. */
#define XNOR_UK_FIRST 1u  /* first k-block: start the count at 0 instead of reading c */
#define XNOR_UK_LAST 2u   /* last k-block: write k - 2*count instead of the running count */

/*
 * GEMM micro-kernel.  For r < mr (mr <= kernel's MR) and j < nr (nr <= kernel's NR):
 *   count = sum over w < kc of popcount(a[r*lda + w] ^ panel[w*NR + j])
 *   (plus c[r*ldc + j] unless XNOR_UK_FIRST);
 *   c[r*ldc + j] = XNOR_UK_LAST ? k - 2*count : count.
 * `panel` holds kc words of NR columns interleaved (see xnor_pack_panel); its columns >= nr and tail
 * bits are zero.  Neither panel nor a need be aligned (prepared weights may live in numpy arrays).  Rows of `a` are read as they are (the driver corrects garbage tail bits of a).
 * Columns >= nr of c are never written.
 */
typedef void (*xnor_gemm_ukernel_fn)(size_t mr, size_t nr, size_t kc, const uint64_t *a, size_t lda,
                                     const uint64_t *panel, int32_t *c, size_t ldc, int32_t k,
                                     unsigned flags);

/*
 * Nibble-split operands, for kernels that count bits with 4-bit table lookups (AVX2's VPSHUFB): each
 * word x of a row or a panel is stored as the two words x & 0x0f0f... and (x >> 4) & 0x0f0f..., so the
 * XOR of two split words is already a lookup index and the kernel spends no mask or shift per product.
 * Counts are unchanged (popcount(a ^ b) is the sum over the two halves).  Split layout, kc words:
 *   row r:  a[r*lda + 2*w] low nibbles, a[r*lda + 2*w + 1] high nibbles (lda counts split words);
 *   panel:  panel[w*2*NR + j] low nibbles, panel[w*2*NR + NR + j] high nibbles.
 * It doubles the bytes of both operands, so drivers use it only where the weights are reused over
 * many pixels (XNOR_SPLIT_MIN_PIXELS); a dense layer at batch 1 streams its weights and stays plain.
 */
#define XNOR_NIBBLES_LO UINT64_C(0x0f0f0f0f0f0f0f0f)
#define XNOR_SPLIT_MIN_PIXELS 8
void xnor_split_nibbles(const uint64_t *src, size_t n, uint64_t *dst);

/*
 * Direct (unpacked) kernel for small m: c[i*ldc + j] = k - 2 * sum over w < words of
 * popcount((a[i*lda + w] ^ b[j*ldb + w]) & (w == words-1 ? tail_mask : ~0)) for i < m, j < n.
 * Both a and b may carry garbage tail bits.
 */
typedef void (*xnor_gemm_direct_fn)(size_t m, size_t n, size_t words, uint64_t tail_mask,
                                    const uint64_t *a, size_t lda, const uint64_t *b, size_t ldb,
                                    int32_t *c, size_t ldc, int32_t k);

/* Pack `rows` contiguous rows of k float32 into rows * ceil(k/64) words (tail bits 0). */
typedef void (*xnor_pack_f32_fn)(const float *x, size_t rows, size_t k, uint64_t *out);

/* Packed output of a row of n accumulators: bit o = (acc[o] < thresholds[o]) XOR bit o of flip_bits,
 * 64 per word, tail bits 0. */
typedef void (*xnor_threshold_pack_fn)(const int32_t *acc, const int32_t *thresholds,
                                       const uint64_t *flip_bits, size_t n, uint64_t *out);

/* Float direct-conv block (fconv/fconv.c): npix output pixels, pixel q's tap (ky0, kx0) at
 * x + q*pixel_stride, tap (ky, kx) a further (ky-ky0)*tap_h_stride + (kx-kx0)*tap_w_stride floats on;
 * for o < out_c: out[q*out_stride + o] = bias[o] + sum over taps in [ky0,ky1)x[kx0,kx1) and ci of
 * x * w[((ky*kernel_w + kx)*in_c + ci)*w_stride + o] (w: HWIO rows of w_stride >= out_c floats, so a
 * caller can compute a slice of the output channels).  npix <= 6. */
typedef void (*xnor_fconv_block_fn)(const float *x, size_t pixel_stride, size_t npix, size_t tap_h_stride,
                                    size_t tap_w_stride, size_t ky0, size_t ky1, size_t kx0, size_t kx1,
                                    size_t kernel_w, size_t in_c, const float *w, size_t w_stride, size_t out_c,
                                    const float *bias, float *out, size_t out_stride);
void xnor_fconv_block_ref(const float *x, size_t pixel_stride, size_t npix, size_t tap_h_stride,
                          size_t tap_w_stride, size_t ky0, size_t ky1, size_t kx0, size_t kx1,
                          size_t kernel_w, size_t in_c, const float *w, size_t w_stride, size_t out_c, const float *bias,
                          float *out, size_t out_stride);
#ifdef XNOR_X86
void xnor_fconv_block_avx2(const float *x, size_t pixel_stride, size_t npix, size_t tap_h_stride,
                           size_t tap_w_stride, size_t ky0, size_t ky1, size_t kx0, size_t kx1,
                           size_t kernel_w, size_t in_c, const float *w, size_t w_stride, size_t out_c, const float *bias,
                           float *out, size_t out_stride);
#endif

/* Winograd F(4x4, 3x3) transforms (fconv/winograd.c has the contract and the portable loops). */
typedef void (*xnor_winograd_input_fn)(const float *strip, size_t row_stride, size_t n, size_t cp, float *v,
                                       size_t v_stride);
typedef void (*xnor_winograd_output_fn)(const float *m, size_t m_stride, size_t ldm, size_t n, size_t nch,
                                        const float *bias, float *const out[4], size_t ld, size_t cols);
void xnor_winograd_input_ref(const float *strip, size_t row_stride, size_t n, size_t cp, float *v, size_t v_stride);
void xnor_winograd_output_ref(const float *m, size_t m_stride, size_t ldm, size_t n, size_t nch, const float *bias,
                              float *const out[4], size_t ld, size_t cols);
#ifdef XNOR_X86
void xnor_winograd_input_avx2(const float *strip, size_t row_stride, size_t n, size_t cp, float *v, size_t v_stride);
void xnor_winograd_output_avx2(const float *m, size_t m_stride, size_t ldm, size_t n, size_t nch, const float *bias,
                               float *const out[4], size_t ld, size_t cols);
#endif

/* Depthwise-conv and pooling output rows (fconv/rows.inc). */
typedef void (*xnor_depthwise_row_fn)(const float *x, const xnor_conv_params *p, size_t oy, size_t out_w,
                                      size_t lo, size_t hi, const float *w, const float *bias, float *out);
typedef void (*xnor_pool_row_fn)(const float *x, const xnor_conv_params *p, size_t oy, size_t out_w, size_t lo,
                                 size_t hi, int kind, double *sum, float *out);
void xnor_fconv_rows(const xnor_conv_params *p, size_t oy, size_t *ky0, size_t *ky1);
void xnor_fconv_cols(const xnor_conv_params *p, size_t ox, size_t *kx0, size_t *kx1);
void xnor_depthwise_row_ref(const float *x, const xnor_conv_params *p, size_t oy, size_t out_w, size_t lo,
                            size_t hi, const float *w, const float *bias, float *out);
void xnor_pool_row_ref(const float *x, const xnor_conv_params *p, size_t oy, size_t out_w, size_t lo, size_t hi,
                       int kind, double *sum, float *out);
#ifdef XNOR_X86
void xnor_depthwise_row_avx2(const float *x, const xnor_conv_params *p, size_t oy, size_t out_w, size_t lo,
                             size_t hi, const float *w, const float *bias, float *out);
void xnor_pool_row_avx2(const float *x, const xnor_conv_params *p, size_t oy, size_t out_w, size_t lo, size_t hi,
                        int kind, double *sum, float *out);
#endif

/* Float output transform of a row (bconv/float-row.inc): see xnor_output_row. */
typedef void (*xnor_float_row_fn)(const xnor_output_transform *t, const int32_t *acc, size_t n,
                                  const float *residual, float *dst);
void xnor_float_row_ref(const xnor_output_transform *t, const int32_t *acc, size_t n, const float *residual,
                        float *dst);
#ifdef XNOR_X86
void xnor_float_row_avx2(const xnor_output_transform *t, const int32_t *acc, size_t n, const float *residual,
                         float *dst);
#endif

/* Register-only peak loop; returns binary MACs performed. */
typedef double (*xnor_peak_fn)(uint64_t iters, uint64_t *sink);

typedef struct {
    const char *name;
    size_t mr, nr;              /* micro-tile of gemm_ukernel; nr is the panel width */
    size_t direct_max_m;        /* xnor_bgemm uses gemm_direct when m <= this (SIZE_MAX: always,
                                   and then gemm_ukernel may be NULL) */
    xnor_gemm_ukernel_fn gemm_ukernel;
    xnor_gemm_ukernel_fn gemm_ukernel_split; /* gemm_ukernel's contract on nibble-split a and panel;
                                                NULL: this ISA has none */
    xnor_gemm_direct_fn gemm_direct;
    xnor_pack_f32_fn pack_f32;
    xnor_threshold_pack_fn threshold_pack;
    xnor_peak_fn peak;
    xnor_fconv_block_fn fconv_block; /* float direct conv; NULL: the portable loop */
    xnor_float_row_fn float_row;     /* float output transform; NULL: the portable loop */
    xnor_depthwise_row_fn depthwise_row; /* float depthwise conv rows; NULL: the portable loop */
    xnor_pool_row_fn pool_row;       /* float pooling rows; NULL: the portable loop */
    xnor_winograd_input_fn winograd_input;   /* Winograd transforms; NULL: the portable loops */
    xnor_winograd_output_fn winograd_output;
} xnor_kernels;

/* Winograd F(4x4, 3x3) float conv (fconv/winograd.c), strided convs by polyphase decomposition: applies
 * to groups-1, undilated convs whose kernel is 3x3 per stride phase, outputs of at least 8x8, on every ISA
 * path but ref.
 * u: xnor_winograd_weights_floats(p) floats from xnor_winograd_prepare (HWIO weights); workspace:
 * xnor_winograd_workspace_bytes(p, num_threads), 64-byte aligned. */
int xnor_winograd_applies(const xnor_conv_params *p, const xnor_kernels *kern);
size_t xnor_winograd_weights_floats(const xnor_conv_params *p);
size_t xnor_winograd_workspace_bytes(const xnor_conv_params *p, int num_threads);
void xnor_winograd_prepare(const float *w, const xnor_conv_params *p, float *u);
/* xnor_conv2d_f32_run_prepared with caller scratch (the runtime's arena; prepared non-NULL: its header
 * is checked, then Winograd runs in workspace of xnor_winograd_workspace_bytes(p, threads)). */
xnor_status xnor_fconv_run_prepared_ws(const float *x, const float *w, const float *prepared, const float *bias,
                                       const xnor_conv_params *p, float *out, int num_threads, void *workspace,
                                       size_t workspace_bytes);
xnor_status xnor_winograd_run(const float *x, const float *u, const float *bias, const xnor_conv_params *p,
                              float *out, int num_threads, void *workspace, size_t workspace_bytes);


/* The kernels of the active ISA (filled once by xnor_init). */
const xnor_kernels *xnor_active(void);

/* Per-ISA tables, each defined in its own file; NULL where the build has no such path. */
extern const xnor_kernels xnor_kernels_ref;
extern const xnor_kernels xnor_kernels_scalar;
#ifdef XNOR_X86
extern const xnor_kernels xnor_kernels_avx2;
extern const xnor_kernels xnor_kernels_avx512;
#endif
#ifdef XNOR_ARM64
extern const xnor_kernels xnor_kernels_neon;
#endif

/* Copy n rows of b (columns of the product) starting at row j0, words [w0, w0+kc), into an
 * NR-interleaved panel (nibble-split when split != 0: 2*kc*NR words); rows past n are zero, and bits
 * past k in the row's last word are cleared. */
void xnor_pack_panel(const uint64_t *b, size_t ldb, size_t j0, size_t n, size_t nr_panel, size_t w0,
                     size_t kc, size_t k, int split, uint64_t *panel);

/* Fused output transform of one row of n accumulators (see xnor_output_transform); flip_bits is the
 * transform's flip array as bits (NULL if none), used for packed output; residual (float output only,
 * or NULL) is the row of n values added before the clamp. */
void xnor_output_row(const xnor_output_transform *t, const uint64_t *flip_bits, const int32_t *acc,
                     size_t n, const float *residual, void *out);
void xnor_threshold_pack_ref(const int32_t *acc, const int32_t *thresholds, const uint64_t *flip_bits,
                             size_t n, uint64_t *out);
size_t xnor_output_row_bytes(const xnor_output_transform *t, size_t n);
xnor_status xnor_check_transform(const xnor_output_transform *t);

/* The binary conv with caller-provided scratch (the runtime's arena), so a run allocates nothing:
 * workspace of at least xnor_bconv_workspace_size(p, num_threads) bytes, 64-byte aligned. */
xnor_status xnor_bconv_workspace_size(const xnor_conv_params *p, int num_threads, size_t *bytes);
xnor_status xnor_bconv_run_ws(const uint64_t *x, const xnor_bconv_prepared *w, const xnor_conv_params *p,
                              const xnor_output_transform *t, const float *residual, void *out, int num_threads,
                              void *workspace, size_t workspace_bytes);
/* Float pooling with caller-provided scratch of xnor_pool_workspace_size(p, num_threads) bytes (the
 * average pools' per-thread sums). */
size_t xnor_pool_workspace_size(const xnor_conv_params *p, int num_threads);
xnor_status xnor_pool2d_f32_ws(const float *x, const xnor_conv_params *p, xnor_pool_kind kind, float *out,
                               int num_threads, void *workspace, size_t workspace_bytes);

/* Error reporting. */
xnor_status xnor_fail(xnor_status status, const char *fmt, ...);

/* Thread pool: run fn(ctx, t, nt) for t in [0, nt) on nt threads (the caller is thread 0).
 * If the pool is busy with another caller, the work runs on the calling thread alone (nt = 1). */
typedef void (*xnor_task_fn)(void *ctx, int t, int nt);
void xnor_parallel(int num_threads, xnor_task_fn fn, void *ctx);
/* Threads worth using: the request (<= 0: the pool's size), at most one per min_work units of work. */
int xnor_threads_for(size_t work, size_t min_work, int num_threads);
/* Task t of nt's share [*lo, *hi) of total items, split in whole units (the last one may be short). */
void xnor_split(size_t total, size_t unit, int t, int nt, size_t *lo, size_t *hi);

/* Portable popcount (the reference path must not depend on a CPU instruction). */
static inline unsigned xnor_popcount64_portable(uint64_t x) {
    x = x - ((x >> 1) & UINT64_C(0x5555555555555555));
    x = (x & UINT64_C(0x3333333333333333)) + ((x >> 2) & UINT64_C(0x3333333333333333));
    x = (x + (x >> 4)) & UINT64_C(0x0f0f0f0f0f0f0f0f);
    return (unsigned)((x * UINT64_C(0x0101010101010101)) >> 56);
}

#endif
