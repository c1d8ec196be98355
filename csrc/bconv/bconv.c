/* Binary 2-D convolution, binary dense layer and bit max-pooling on packed NHWC activations.
 *
 * The convolution is an indirect GEMM over output pixels: for each block of MR pixels the receptive
 * fields are gathered (tap by tap, whole words, each tap's channels padded to words exactly as the
 * packed OHWI weights are) into a buffer of MR rows, and the GEMM micro-kernel of the active ISA runs
 * them against every panel of the weights.  The MR x out_c accumulators then go through the fused
 * output transform straight into the output, so the only temporaries are MR gathered rows and MR
 * accumulator rows per thread (plus the weights in panel order): no im2col of the input.
 *
 * Padding: a padded tap is gathered as words of 0 bits, i.e. +1 values.  That is exact for
 * pad_value 1 (Larq); for pad_value 0 (Conv after Sign on zero-padded input) the +1s added
 * sum_c w[o][tap][c] to the accumulator, which is subtracted again per padded tap from a table of
 * per-tap weight sums: integer arithmetic, no float path, only on border pixels.
 */
#include <stdlib.h>
#include <string.h>
#include "bconv.h"
#include "output.h"
#include "../bgemm/bgemm.h"
#include "../dispatch.h"

#define BLOCK_ROW_BYTES (16 * 1024) /* gathered rows of a pixel block */
#define BLOCK_ACC_BYTES (32 * 1024) /* its int32 accumulators */

/* Prepared weights start with a 64-byte header that says how they were laid out, so a run follows the
 * layout its weights have (nibble-split or plain: it depends on the output size given to prepare) and
 * refuses weights prepared for another layer's shape. */
#define HEADER_WORDS 8
#define HEADER_MAGIC UINT64_C(0x584e4f5250414e00) /* "XNORPAN" and a layout byte */
enum { LAYOUT_PLAIN = 0, LAYOUT_SPLIT = 1 };

typedef struct {
    const xnor_kernels *kern;
    const uint64_t *x, *w;
    const xnor_conv_params *p;
    const xnor_output_transform *t;
    char *out;
    size_t out_h, out_w, pixels;
    size_t cg, og, wpt, kw;   /* channels per group in/out, words per tap, words per weight row */
    size_t x_words;           /* words per input pixel */
    int32_t k;                /* +-1 products per output: taps * cg */
    uint64_t tap_mask;        /* valid bits of a tap's last word */
    int whole_words;          /* every group's channels are whole words: taps copy, no masking */
    const uint64_t *panels;   /* weights in panel order (micro-kernel) or masked rows (direct kernel) */
    size_t panels_per_group;
    int split;                /* panels and gathered rows nibble-split (bgemm/bgemm.h) for gemm_ukernel_split */
    const int32_t *tap_sums;  /* [tap][out_c] sum of +-1 weights, for pad_value 0; else NULL */
    size_t out_row_bytes;
    size_t mr, mc;            /* rows per micro-kernel call; pixels per block */
    size_t panel_words, tap_sum_count;
    uint64_t *flip_bits;      /* the transform's flip array as bits, or NULL */
    const float *residual;    /* float output: added per output value before the clamp, or NULL */
    int failed;               /* a task could not allocate its buffers */
    char *workspace;          /* caller's scratch (the runtime's arena): per-thread slices, or NULL */
    size_t slice_bytes;       /* bytes per thread slice of workspace */
} conv_job;

static size_t taps_of(const xnor_conv_params *p) { return p->kernel_h * p->kernel_w; }

/* Copy bits [bit0, bit0 + nbits) of src (src_words words) to dst, the last word masked. */
static void extract_bits(const uint64_t *src, size_t src_words, size_t bit0, size_t nbits,
                         uint64_t *dst, uint64_t last_mask) {
    size_t nw = XNOR_WORDS(nbits), q = bit0 / 64, s = bit0 % 64;
    if (s == 0) {
        memcpy(dst, src + q, nw * sizeof(uint64_t));
    } else {
        for (size_t i = 0; i < nw; i++) {
            uint64_t v = src[q + i] >> s;
            if (q + i + 1 < src_words) v |= src[q + i + 1] << (64 - s);
            dst[i] = v;
        }
    }
    dst[nw - 1] &= last_mask;
}

/* Input row and column of tap (ky, kx) for output pixel (oy, ox), as signed values. */
static inline void tap_position(const xnor_conv_params *p, size_t oy, size_t ox, size_t ky, size_t kx,
                                long *iy, long *ix) {
    *iy = (long)(oy * p->stride_h + ky * p->dilation_h) - (long)p->pad_top;
    *ix = (long)(ox * p->stride_w + kx * p->dilation_w) - (long)p->pad_left;
}

static void gather_row(const conv_job *job, size_t pix, size_t g, uint64_t *row) {
    const xnor_conv_params *p = job->p;
    size_t per_image = job->out_h * job->out_w, b = pix / per_image, rem = pix % per_image;
    size_t oy = rem / job->out_w, ox = rem % job->out_w, wpt = job->wpt, kwidth = p->kernel_w;
    long ix0 = (long)(ox * p->stride_w) - (long)p->pad_left;
    /* With whole-word channel groups, no dilation along x and every tap of a kernel row inside the
     * input, a kernel row is one contiguous run of input words (the common 3x3 case). */
    int contiguous_rows = job->whole_words && p->dilation_w == 1 && job->x_words == wpt && ix0 >= 0 &&
                          ix0 + (long)kwidth <= (long)p->in_w;
    for (size_t ky = 0; ky < p->kernel_h; ky++) {
        uint64_t *dst = row + ky * kwidth * wpt;
        long iy = (long)(oy * p->stride_h + ky * p->dilation_h) - (long)p->pad_top;
        if (iy < 0 || iy >= (long)p->in_h) {
            memset(dst, 0, kwidth * wpt * sizeof(uint64_t));
            continue;
        }
        const uint64_t *src_row = job->x + (b * p->in_h + (size_t)iy) * p->in_w * job->x_words;
        if (contiguous_rows) {
            memcpy(dst, src_row + (size_t)ix0 * wpt, kwidth * wpt * sizeof(uint64_t));
            continue;
        }
        for (size_t kx = 0; kx < kwidth; kx++, dst += wpt) {
            long ix = ix0 + (long)(kx * p->dilation_w);
            if (ix < 0 || ix >= (long)p->in_w) memset(dst, 0, wpt * sizeof(uint64_t));
            else extract_bits(src_row + (size_t)ix * job->x_words, job->x_words, g * job->cg, job->cg, dst,
                              job->tap_mask);
        }
    }
}

/* acc[o] -= sums[o]: a border pixel pays this once per padded tap, so it must vectorise (GCC's -O2
 * cost model leaves it scalar, which made it ~4% of a 56x56 conv). */
VECTORIZE static void subtract_row(int32_t *restrict acc, const int32_t *restrict sums, size_t n) {
    for (size_t o = 0; o < n; o++) acc[o] -= sums[o];
}

/* Remove what the +1s gathered for padded taps added (pad_value 0 only). */
static void correct_padding(const conv_job *job, size_t pix, int32_t *restrict acc) {
    const xnor_conv_params *p = job->p;
    size_t per_image = job->out_h * job->out_w, rem = pix % per_image;
    size_t oy = rem / job->out_w, ox = rem % job->out_w;
    long y0 = (long)(oy * p->stride_h) - (long)p->pad_top, x0 = (long)(ox * p->stride_w) - (long)p->pad_left;
    long y_last = y0 + (long)(p->dilation_h * (p->kernel_h - 1)), x_last = x0 + (long)(p->dilation_w * (p->kernel_w - 1));
    if (y0 >= 0 && x0 >= 0 && y_last < (long)p->in_h && x_last < (long)p->in_w) return; /* interior */
    for (size_t ky = 0; ky < p->kernel_h; ky++)
        for (size_t kx = 0; kx < p->kernel_w; kx++) {
            long iy = y0 + (long)(ky * p->dilation_h), ix = x0 + (long)(kx * p->dilation_w);
            if (iy < 0 || ix < 0 || iy >= (long)p->in_h || ix >= (long)p->in_w)
                subtract_row(acc, job->tap_sums + (ky * p->kernel_w + kx) * p->out_c, p->out_c);
        }
}

static size_t rows_bytes(const conv_job *job) {
    return ((job->mc * job->p->groups * job->kw * sizeof(uint64_t)) + 63) & ~(size_t)63;
}

/* [gathered rows][their nibble-split copy, when split][accumulators] */
static size_t slice_bytes(const conv_job *job) {
    size_t acc = job->mc * job->p->out_c * sizeof(int32_t);
    return rows_bytes(job) * (job->split ? 3 : 1) + ((acc + 63) & ~(size_t)63);
}

static void conv_task(void *ctx, int t, int nt) {
    conv_job *job = ctx;
    const xnor_kernels *kern = job->kern;
    const xnor_conv_params *p = job->p;
    size_t MR = job->mr, NR = kern->nr, mc = job->mc;
    size_t p0, p1;
    xnor_split(job->pixels, MR, t, nt, &p0, &p1);
    if (p0 >= p1) return;
    size_t lda = p->groups * job->kw, plain_bytes = rows_bytes(job), s = job->split ? 2 : 1;
    char *slice, *own = NULL;
    if (job->workspace) {
        slice = job->workspace + (size_t)t * job->slice_bytes;
    } else {
        slice = own = aligned_alloc(64, slice_bytes(job));
        if (!own) {
            job->failed = 1;
            return;
        }
    }
    uint64_t *rows = (uint64_t *)slice, *split_rows = job->split ? (uint64_t *)(slice + plain_bytes) : rows;
    int32_t *acc = (int32_t *)(slice + plain_bytes * (job->split ? 3 : 1));
    xnor_gemm_ukernel_fn ukernel = job->split ? kern->gemm_ukernel_split : kern->gemm_ukernel;
    /* Blocks of mc pixels: their gathered rows and accumulators stay in L1 while each weight panel
     * is swept over the block MR rows at a time. */
    for (size_t blk = p0; blk < p1; blk += mc) {
        size_t m = p1 - blk < mc ? p1 - blk : mc;
        for (size_t r = 0; r < m; r++)
            for (size_t g = 0; g < p->groups; g++) gather_row(job, blk + r, g, rows + r * lda + g * job->kw);
        if (job->split) xnor_split_nibbles(rows, m * lda, split_rows);
        for (size_t g = 0; g < p->groups; g++) {
            const uint64_t *a = rows + g * job->kw;
            int32_t *c = acc + g * job->og;
            if (!kern->gemm_ukernel) {
                kern->gemm_direct(m, job->og, job->kw, ~UINT64_C(0), a, lda,
                                  job->panels + g * job->og * job->kw, job->kw, c, p->out_c, job->k);
                continue;
            }
            const uint64_t *as = split_rows + s * g * job->kw;
            for (size_t q = 0; q < job->panels_per_group; q++) {
                size_t j0 = q * NR, nr = job->og - j0 < NR ? job->og - j0 : NR;
                const uint64_t *panel = job->panels + (g * job->panels_per_group + q) * s * NR * job->kw;
                for (size_t r0 = 0; r0 < m; r0 += MR)
                    ukernel(m - r0 < MR ? m - r0 : MR, nr, job->kw, as + r0 * s * lda, s * lda, panel,
                            c + r0 * p->out_c + j0, p->out_c, job->k, XNOR_UK_FIRST | XNOR_UK_LAST);
            }
        }
        for (size_t r = 0; r < m; r++) {
            if (job->tap_sums) correct_padding(job, blk + r, acc + r * p->out_c);
            xnor_output_row(job->t, job->flip_bits, acc + r * p->out_c, p->out_c,
                            job->residual ? job->residual + (blk + r) * p->out_c : NULL,
                            job->out + (blk + r) * job->out_row_bytes);
        }
    }
    free(own);
}

/* Weights in the order the kernel reads them, each tap's padding bits cleared, and the tap sums. */
static void prepare_weights(const conv_job *job, uint64_t *header, int32_t *tap_sums) {
    const xnor_conv_params *p = job->p;
    size_t NR = job->kern->nr, kw = job->kw, s = job->split ? 2 : 1;
    uint64_t *panels = header + HEADER_WORDS;
    memset(header, 0, HEADER_WORDS * sizeof(uint64_t));
    header[0] = HEADER_MAGIC | (job->split ? LAYOUT_SPLIT : LAYOUT_PLAIN);
    header[1] = kw, header[2] = p->out_c, header[3] = p->groups, header[4] = job->kern->nr;
    for (size_t g = 0; g < p->groups; g++) {
        const uint64_t *wg = job->w + g * job->og * kw;
        if (job->kern->gemm_ukernel) {
            for (size_t q = 0; q < job->panels_per_group; q++) {
                uint64_t *panel = panels + (g * job->panels_per_group + q) * s * NR * kw;
                xnor_pack_panel(wg, kw, q * NR, job->og, NR, 0, kw, kw * 64, job->split, panel);
                for (size_t w = job->wpt - 1; w < kw; w += job->wpt)
                    for (size_t j = 0; j < NR; j++) {
                        if (job->split) {
                            panel[w * 2 * NR + j] &= job->tap_mask & XNOR_NIBBLES_LO;
                            panel[w * 2 * NR + NR + j] &= (job->tap_mask >> 4) & XNOR_NIBBLES_LO;
                        } else {
                            panel[w * NR + j] &= job->tap_mask;
                        }
                    }
            }
        } else {
            uint64_t *dst = panels + g * job->og * kw;
            memcpy(dst, wg, job->og * kw * sizeof(uint64_t));
            for (size_t i = job->wpt - 1; i < job->og * kw; i += job->wpt) dst[i] &= job->tap_mask;
        }
    }
    if (tap_sums) {
        size_t taps = taps_of(p);
        for (size_t o = 0; o < p->out_c; o++)
            for (size_t tap = 0; tap < taps; tap++) {
                const uint64_t *tw = job->w + o * kw + tap * job->wpt;
                int32_t minus = 0;
                for (size_t i = 0; i < job->wpt; i++)
                    minus += (int32_t)xnor_popcount64_portable(i + 1 == job->wpt ? tw[i] & job->tap_mask : tw[i]);
                tap_sums[tap * p->out_c + o] = (int32_t)job->cg - 2 * minus;
            }
    }
}

static int mul_overflows(size_t a, size_t b, size_t *r) {
    if (b && a > SIZE_MAX / b) return 1;
    *r = a * b;
    return 0;
}

/* Output size of a conv, or why there is none (the messages are xnor_conv_output_size's). */
enum { DIMS_OK, DIMS_ZERO, DIMS_TOO_LARGE, DIMS_NO_FIT };
static int output_dims(const xnor_conv_params *p, size_t *out_h, size_t *out_w) {
    if (!p->kernel_h || !p->kernel_w || !p->stride_h || !p->stride_w || !p->dilation_h || !p->dilation_w)
        return DIMS_ZERO;
    const size_t limit = (size_t)1 << 31; /* keeps every index computation far from overflow */
    if (p->in_h > limit || p->in_w > limit || p->kernel_h > limit || p->kernel_w > limit ||
        p->dilation_h > limit || p->dilation_w > limit || p->stride_h > limit || p->stride_w > limit ||
        p->pad_top > limit || p->pad_bottom > limit || p->pad_left > limit || p->pad_right > limit)
        return DIMS_TOO_LARGE;
    size_t span_h = p->dilation_h * (p->kernel_h - 1) + 1, span_w = p->dilation_w * (p->kernel_w - 1) + 1;
    size_t padded_h = p->in_h + p->pad_top + p->pad_bottom, padded_w = p->in_w + p->pad_left + p->pad_right;
    if (padded_h < span_h || padded_w < span_w) return DIMS_NO_FIT;
    *out_h = (padded_h - span_h) / p->stride_h + 1;
    *out_w = (padded_w - span_w) / p->stride_w + 1;
    return DIMS_OK;
}

xnor_status xnor_conv_output_size(const xnor_conv_params *p, size_t *out_h, size_t *out_w) {
    if (!p || !out_h || !out_w) return xnor_fail(XNOR_EINVAL, "conv: null pointer");
    switch (output_dims(p, out_h, out_w)) {
    case DIMS_OK: return XNOR_OK;
    case DIMS_ZERO: return xnor_fail(XNOR_EINVAL, "conv: kernel size, stride and dilation must be >= 1");
    case DIMS_TOO_LARGE: return xnor_fail(XNOR_EINVAL, "conv: a size is larger than 2^31");
    default:
        return xnor_fail(XNOR_EINVAL, "conv: the kernel (%zux%zu, dilation %zux%zu) does not fit the padded "
                         "input (%zux%zu)", p->kernel_h, p->kernel_w, p->dilation_h, p->dilation_w,
                         p->in_h + p->pad_top + p->pad_bottom, p->in_w + p->pad_left + p->pad_right);
    }
}

/* The nibble-split layout doubles the weights' bytes and pays off when they are reused over many
 * output pixels (per image, so the choice does not depend on the batch a layer is prepared with). */
static int wants_split(const xnor_kernels *kern, const xnor_conv_params *p) {
    size_t out_h, out_w;
    return kern->gemm_ukernel && kern->gemm_ukernel_split && output_dims(p, &out_h, &out_w) == DIMS_OK &&
           out_h * out_w >= XNOR_SPLIT_MIN_PIXELS;
}

/* Validates p (and, when running, x, out and t) and derives the job's sizes. */
static xnor_status setup(conv_job *job, const uint64_t *x, const uint64_t *w, const xnor_conv_params *p,
                         const xnor_output_transform *t, void *out, int running) {
    xnor_status st = xnor_init();
    if (st != XNOR_OK) return st;
    if (!p || (running && (!x || !out)) || (!running && !w)) return xnor_fail(XNOR_EINVAL, "conv: null pointer");
    if (running && (st = xnor_check_transform(t)) != XNOR_OK) return st;
    if (!p->in_c || !p->out_c || !p->groups) return xnor_fail(XNOR_EINVAL, "conv: channels and groups must be >= 1");
    if (p->in_c % p->groups || p->out_c % p->groups)
        return xnor_fail(XNOR_EINVAL, "conv: in_c=%zu and out_c=%zu must be divisible by groups=%zu",
                         p->in_c, p->out_c, p->groups);
    if (p->pad_value != 0 && p->pad_value != 1) return xnor_fail(XNOR_EINVAL, "conv: pad_value must be 0 or 1");
    memset(job, 0, sizeof *job);
    if (running) {
        if ((st = xnor_conv_output_size(p, &job->out_h, &job->out_w)) != XNOR_OK) return st;
    } else if (!p->kernel_h || !p->kernel_w || p->kernel_h > ((size_t)1 << 31) || p->kernel_w > ((size_t)1 << 31)) {
        return xnor_fail(XNOR_EINVAL, "conv: kernel size must be in [1, 2^31]");
    }
    job->kern = xnor_active();
    job->x = x, job->w = w, job->p = p, job->t = t, job->out = out;
    job->cg = p->in_c / p->groups, job->og = p->out_c / p->groups;
    job->wpt = XNOR_WORDS(job->cg), job->x_words = XNOR_WORDS(p->in_c);
    job->tap_mask = XNOR_TAIL_MASK(job->cg);
    job->whole_words = job->cg % 64 == 0;
    size_t taps, kbits, tmp;
    if (mul_overflows(p->kernel_h, p->kernel_w, &taps) || mul_overflows(taps, job->wpt, &job->kw) ||
        mul_overflows(taps, job->cg, &kbits) || kbits > INT32_MAX / 2)
        return xnor_fail(XNOR_EINVAL, "conv: kernel_h*kernel_w*in_c/groups is too large");
    job->k = (int32_t)kbits;
    if (mul_overflows(p->batch, job->out_h, &tmp) || mul_overflows(tmp, job->out_w, &job->pixels) ||
        mul_overflows(job->pixels, p->out_c, &tmp) || tmp > SIZE_MAX / 8 ||
        mul_overflows(p->batch, p->in_h, &tmp) || mul_overflows(tmp, p->in_w, &tmp) ||
        mul_overflows(tmp, job->x_words, &tmp) || tmp > SIZE_MAX / 8 ||
        mul_overflows(p->out_c, job->kw, &tmp) || tmp > SIZE_MAX / 64 || p->groups * job->kw > SIZE_MAX / 64)
        return xnor_fail(XNOR_EINVAL, "conv: the tensors are too large for the address space");
    job->out_row_bytes = t ? xnor_output_row_bytes(t, p->out_c) : 0;
    size_t NR = job->kern->nr;
    job->split = !running && wants_split(job->kern, p);
    job->panels_per_group = job->kern->gemm_ukernel ? (job->og + NR - 1) / NR : 0;
    job->panel_words = HEADER_WORDS + (job->kern->gemm_ukernel ? p->groups * job->panels_per_group * NR * job->kw
                                                                   * (job->split ? 2 : 1)
                                                               : p->out_c * job->kw);
    int padded = p->pad_top || p->pad_bottom || p->pad_left || p->pad_right;
    job->tap_sum_count = p->pad_value == 0 && padded ? taps_of(p) * p->out_c : 0;
    return XNOR_OK;
}

xnor_status xnor_bconv_prepared_size(const xnor_conv_params *p, size_t *panel_words, size_t *tap_sum_count) {
    conv_job job;
    static const uint64_t dummy = 0;
    xnor_status st = setup(&job, NULL, &dummy, p, NULL, NULL, 0);
    if (st != XNOR_OK) return st;
    if (!panel_words || !tap_sum_count) return xnor_fail(XNOR_EINVAL, "conv: null pointer");
    *panel_words = job.panel_words;
    *tap_sum_count = job.tap_sum_count;
    return XNOR_OK;
}

xnor_status xnor_bconv_prepare(const uint64_t *w, const xnor_conv_params *p, uint64_t *panels, int32_t *tap_sums) {
    conv_job job;
    xnor_status st = setup(&job, NULL, w, p, NULL, NULL, 0);
    if (st != XNOR_OK) return st;
    if (!panels || (job.tap_sum_count && !tap_sums)) return xnor_fail(XNOR_EINVAL, "conv: null pointer");
    prepare_weights(&job, panels, job.tap_sum_count ? tap_sums : NULL);
    return XNOR_OK;
}

/* Pixels per block: its gathered rows and accumulators fit L1, and together they stay below the size of
 * the packed input (never more than MR rows past it): no im2col-sized temporaries.  Sets job->mr, mc. */
static void block_size(conv_job *job) {
    const xnor_conv_params *p = job->p;
    job->mr = job->kern->gemm_ukernel ? job->kern->mr : 4;
    /* a split block also holds its rows nibble-split: three times the plain rows' bytes */
    size_t row_bytes = p->groups * job->kw * sizeof(uint64_t) * (job->split ? 3 : 1), acc_bytes = p->out_c * sizeof(int32_t);
    size_t x_bytes = p->batch * p->in_h * p->in_w * job->x_words * sizeof(uint64_t);
    size_t by_rows = BLOCK_ROW_BYTES / row_bytes, by_acc = BLOCK_ACC_BYTES / acc_bytes;
    size_t by_input = x_bytes / (row_bytes + acc_bytes);
    job->mc = by_rows < by_acc ? by_rows : by_acc;
    if (by_input < job->mc) job->mc = by_input;
    job->mc = job->mc < job->mr ? job->mr : job->mc - job->mc % job->mr;
}

xnor_status xnor_bconv_workspace_size(const xnor_conv_params *p, int num_threads, size_t *bytes) {
    conv_job job;
    static const uint64_t dummy = 0;
    xnor_status st = setup(&job, NULL, &dummy, p, NULL, NULL, 0);
    if (st != XNOR_OK) return st;
    if (!bytes) return xnor_fail(XNOR_EINVAL, "conv: null pointer");
    block_size(&job);
    size_t nt = num_threads >= 1 ? (size_t)num_threads : (size_t)xnor_num_threads();
    size_t per = slice_bytes(&job), flip = ((XNOR_WORDS(p->out_c) * sizeof(uint64_t)) + 63) & ~(size_t)63;
    if (per > (SIZE_MAX - flip) / nt) return xnor_fail(XNOR_EINVAL, "conv: workspace too large");
    *bytes = flip + per * nt;
    return XNOR_OK;
}

static xnor_status run_prepared_ws(const uint64_t *x, const xnor_bconv_prepared *w, const xnor_conv_params *p,
                                   const xnor_output_transform *t, const float *residual, void *out,
                                   int num_threads, void *workspace, size_t workspace_bytes) {
    conv_job job;
    if (!w) return xnor_fail(XNOR_EINVAL, "conv: null pointer");
    xnor_status st = setup(&job, x, NULL, p, t, out, 1);
    if (st != XNOR_OK) return st;
    job.residual = residual;
    if (residual) { /* the output passes overwrite a row before the residual is added: no overlap */
        const char *r0 = (const char *)residual, *o0 = out, *r1 = r0 + job.pixels * p->out_c * sizeof(float);
        const char *o1 = o0 + job.pixels * p->out_c * sizeof(float);
        if (r0 < o1 && o0 < r1) return xnor_fail(XNOR_EINVAL, "conv: the residual overlaps the output");
    }
    if (w->isa != xnor_isa_active())
        return xnor_fail(XNOR_EINVAL, "conv: weights prepared for ISA %s, but %s is active",
                         xnor_isa_name(w->isa), xnor_isa_name(xnor_isa_active()));
    if (!w->panels || (job.tap_sum_count && !w->tap_sums)) return xnor_fail(XNOR_EINVAL, "conv: null pointer");
    const uint64_t *h = w->panels;
    if ((h[0] & ~(uint64_t)0xff) != HEADER_MAGIC || (h[0] & 0xff) > LAYOUT_SPLIT || h[1] != job.kw ||
        h[2] != p->out_c || h[3] != p->groups || h[4] != job.kern->nr ||
        ((h[0] & 0xff) == LAYOUT_SPLIT && !job.kern->gemm_ukernel_split))
        return xnor_fail(XNOR_EINVAL, "conv: the prepared weights are not xnor_bconv_prepare's for this layer's shape "
                         "(kernel, channels and groups) and ISA");
    job.split = (h[0] & 0xff) == LAYOUT_SPLIT;
    if (!job.pixels) return XNOR_OK;
    job.panels = w->panels + HEADER_WORDS;
    job.tap_sums = job.tap_sum_count ? w->tap_sums : NULL;
    block_size(&job);
    int nt = xnor_threads_for(job.pixels * p->out_c * job.kw, 32768, num_threads);
    size_t flip_bytes = ((XNOR_WORDS(p->out_c) * sizeof(uint64_t)) + 63) & ~(size_t)63;
    uint64_t *own_flip = NULL;
    if (workspace) { /* [flip bits][one slice per thread]: nothing allocated */
        job.slice_bytes = slice_bytes(&job);
        size_t fit = workspace_bytes > flip_bytes ? (workspace_bytes - flip_bytes) / job.slice_bytes : 0;
        if (fit < 1) return xnor_fail(XNOR_EINVAL, "conv: the workspace of %zu bytes is too small", workspace_bytes);
        if ((size_t)nt > fit) nt = (int)fit;
        job.workspace = (char *)workspace + flip_bytes;
    }
    if (t->kind == XNOR_OUT_PACKED && t->flip) {
        job.flip_bits = workspace ? (uint64_t *)workspace : (own_flip = calloc(XNOR_WORDS(p->out_c), sizeof(uint64_t)));
        if (!job.flip_bits) return xnor_fail(XNOR_ENOMEM, "conv: cannot allocate the flip bits");
        memset(job.flip_bits, 0, XNOR_WORDS(p->out_c) * sizeof(uint64_t));
        for (size_t o = 0; o < p->out_c; o++) job.flip_bits[o / 64] |= (uint64_t)(t->flip[o] & 1) << (o % 64);
    }
    xnor_parallel(nt, conv_task, &job);
    free(own_flip);
    if (job.failed) return xnor_fail(XNOR_ENOMEM, "conv: cannot allocate per-thread buffers");
    return XNOR_OK;
}

static xnor_status run_prepared(const uint64_t *x, const xnor_bconv_prepared *w, const xnor_conv_params *p,
                                const xnor_output_transform *t, const float *residual, void *out, int num_threads) {
    return run_prepared_ws(x, w, p, t, residual, out, num_threads, NULL, 0);
}

xnor_status xnor_bconv_run_ws(const uint64_t *x, const xnor_bconv_prepared *w, const xnor_conv_params *p,
                              const xnor_output_transform *t, const float *residual, void *out, int num_threads,
                              void *workspace, size_t workspace_bytes) {
    if (!workspace || !t) return xnor_fail(XNOR_EINVAL, "conv: null pointer");
    if (residual && t->kind != XNOR_OUT_FLOAT32) return xnor_fail(XNOR_EINVAL, "conv: a residual needs float32 output");
    return run_prepared_ws(x, w, p, t, residual, out, num_threads, workspace, workspace_bytes);
}

xnor_status xnor_bconv2d_prepared(const uint64_t *x, const xnor_bconv_prepared *w, const xnor_conv_params *p,
                                  const xnor_output_transform *t, void *out, int num_threads) {
    return run_prepared(x, w, p, t, NULL, out, num_threads);
}

xnor_status xnor_bconv2d_prepared_add(const uint64_t *x, const xnor_bconv_prepared *w, const xnor_conv_params *p,
                                      const xnor_output_transform *t, const float *residual, void *out,
                                      int num_threads) {
    if (!residual || !t) return xnor_fail(XNOR_EINVAL, "conv: null pointer");
    if (t->kind != XNOR_OUT_FLOAT32) return xnor_fail(XNOR_EINVAL, "conv: a residual needs float32 output");
    return run_prepared(x, w, p, t, residual, out, num_threads);
}

xnor_status xnor_bconv2d(const uint64_t *x, const uint64_t *w, const xnor_conv_params *p,
                         const xnor_output_transform *t, void *out, int num_threads) {
    size_t panel_words, tap_sum_count;
    xnor_status st = xnor_bconv_prepared_size(p, &panel_words, &tap_sum_count);
    if (st != XNOR_OK) return st;
    uint64_t *panels = aligned_alloc(64, (panel_words * sizeof(uint64_t) + 63) & ~(size_t)63);
    int32_t *tap_sums = tap_sum_count ? malloc(tap_sum_count * sizeof(int32_t)) : NULL;
    if (!panels || (tap_sum_count && !tap_sums)) {
        free(panels);
        free(tap_sums);
        return xnor_fail(XNOR_ENOMEM, "conv: cannot allocate the weight panels");
    }
    st = xnor_bconv_prepare(w, p, panels, tap_sums);
    if (st == XNOR_OK) {
        xnor_bconv_prepared prepared = {xnor_isa_active(), panels, tap_sums};
        st = xnor_bconv2d_prepared(x, &prepared, p, t, out, num_threads);
    }
    free(panels);
    free(tap_sums);
    return st;
}

xnor_status xnor_bdense(const uint64_t *x, const uint64_t *w, size_t batch, size_t k, size_t out_features,
                        const xnor_output_transform *t, void *out, int num_threads) {
    xnor_conv_params p = {.batch = batch, .in_h = 1, .in_w = 1, .in_c = k, .out_c = out_features,
                          .kernel_h = 1, .kernel_w = 1, .stride_h = 1, .stride_w = 1,
                          .dilation_h = 1, .dilation_w = 1, .groups = 1, .pad_value = 0};
    return xnor_bconv2d(x, w, &p, t, out, num_threads);
}

/* ---- bit max-pooling ---------------------------------------------------------------------------- */

typedef struct {
    const uint64_t *x;
    const xnor_conv_params *p;
    uint64_t *out;
    size_t out_h, out_w, pixels, words;
    uint64_t tail_mask;
} pool_job;

static void pool_task(void *ctx, int t, int nt) {
    const pool_job *job = ctx;
    const xnor_conv_params *p = job->p;
    size_t p0, p1;
    xnor_split(job->pixels, 1, t, nt, &p0, &p1);
    for (size_t pix = p0; pix < p1; pix++) {
        size_t per_image = job->out_h * job->out_w, b = pix / per_image, rem = pix % per_image;
        size_t oy = rem / job->out_w, ox = rem % job->out_w;
        uint64_t *dst = job->out + pix * job->words;
        for (size_t i = 0; i < job->words; i++) dst[i] = ~UINT64_C(0); /* AND identity: all -1 */
        for (size_t ky = 0; ky < p->kernel_h; ky++)
            for (size_t kx = 0; kx < p->kernel_w; kx++) {
                long iy, ix;
                tap_position(p, oy, ox, ky, kx, &iy, &ix);
                if (iy < 0 || ix < 0 || iy >= (long)p->in_h || ix >= (long)p->in_w) continue;
                const uint64_t *src = job->x + ((b * p->in_h + (size_t)iy) * p->in_w + (size_t)ix) * job->words;
                for (size_t i = 0; i < job->words; i++) dst[i] &= src[i];
            }
        dst[job->words - 1] &= job->tail_mask;
    }
}

xnor_status xnor_bmaxpool2d(const uint64_t *x, const xnor_conv_params *p, uint64_t *out, int num_threads) {
    xnor_status st = xnor_init();
    if (st != XNOR_OK) return st;
    if (!x || !p || !out) return xnor_fail(XNOR_EINVAL, "maxpool: null pointer");
    if (!p->in_c) return xnor_fail(XNOR_EINVAL, "maxpool: channels must be >= 1");
    pool_job job = {x, p, out, 0, 0, 0, XNOR_WORDS(p->in_c), XNOR_TAIL_MASK(p->in_c)};
    if ((st = xnor_conv_output_size(p, &job.out_h, &job.out_w)) != XNOR_OK) return st;
    size_t tmp;
    if (mul_overflows(p->batch, job.out_h, &tmp) || mul_overflows(tmp, job.out_w, &job.pixels) ||
        mul_overflows(job.pixels, job.words, &tmp) || tmp > SIZE_MAX / 8)
        return xnor_fail(XNOR_EINVAL, "maxpool: the tensors are too large for the address space");
    if (!job.pixels) return XNOR_OK;
    xnor_parallel(xnor_threads_for(job.pixels * job.words * p->kernel_h * p->kernel_w, 65536, num_threads),
                  pool_task, &job);
    return XNOR_OK;
}
