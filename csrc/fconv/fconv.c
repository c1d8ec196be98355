/* Float layers on NHWC float32 activations: direct convolution (groups 1 or depthwise) and max /
 * average pooling, threaded over output rows.
 *
 * These are the float ops around binary layers (a network's stem, QuickNet's depthwise transitions,
 * pools between blocks).  Their arithmetic is small; through numpy they cost memory passes and
 * strided copies (im2col of a 3-channel input copies 3 floats at a time), so here each output pixel
 * is computed once, in L1, straight from the input.
 *
 * Direct conv: weights HWIO (kernel_h, kernel_w, in_c, out_c), so a tap's contribution to every output
 * channel is a contiguous vector.  The active ISA may supply a register-tiled block kernel (several
 * pixels x 16 channels, FMA); the portable loop here is the reference beside it.  Padded taps are skipped
 * (zero padding).  Depthwise: weights (kernel_h, kernel_w, channels).  Average pooling sums in double
 * in tap order and divides once, as the numpy float op does, so both give the same float32.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "fconv.h"
#include "winograd.h"
#include "../dispatch.h"

typedef struct {
    const float *x, *w, *bias;
    const xnor_conv_params *p;
    float *out;
    size_t out_h, out_w;
    int kind;                 /* FCONV_*, or a pooling kind */
    xnor_fconv_block_fn block;
    double *sums;             /* caller's scratch for the average pools: in_c doubles per thread, or NULL */
    int max_threads;          /* threads that scratch has room for (0: no limit) */
} fjob;

enum { FCONV_DIRECT = 0, FCONV_DEPTHWISE = 1, FPOOL_MAX = 2, FPOOL_AVG = 3, FPOOL_AVG_INCLUDE_PAD = 4 };

/* The taps [*k0, *k1) of a kernel axis that land inside the input for output position `out`. */
static void axis_taps(size_t out, size_t stride, size_t pad, size_t dilation, size_t kernel, size_t in,
                      size_t *k0, size_t *k1) {
    long start = (long)(out * stride) - (long)pad, d = (long)dilation;
    size_t a = 0, b = kernel;
    while (a < b && start + (long)a * d < 0) a++;
    while (b > a && start + (long)(b - 1) * d >= (long)in) b--;
    *k0 = a, *k1 = b;
}

/* The taps of output (oy, ox) inside the input: ky in [*ky0, *ky1), kx in [*kx0, *kx1). */
static void valid_taps(const xnor_conv_params *p, size_t oy, size_t ox, size_t *ky0, size_t *ky1,
                       size_t *kx0, size_t *kx1) {
    axis_taps(oy, p->stride_h, p->pad_top, p->dilation_h, p->kernel_h, p->in_h, ky0, ky1);
    axis_taps(ox, p->stride_w, p->pad_left, p->dilation_w, p->kernel_w, p->in_w, kx0, kx1);
}

/* Input element (channel 0) of tap (ky, kx) of output (b, oy, ox); only called for valid taps. */
static const float *tap_ptr(const fjob *job, size_t b, size_t oy, size_t ox, size_t ky, size_t kx) {
    const xnor_conv_params *p = job->p;
    size_t iy = oy * p->stride_h + ky * p->dilation_h - p->pad_top;
    size_t ix = ox * p->stride_w + kx * p->dilation_w - p->pad_left;
    return job->x + ((b * p->in_h + iy) * p->in_w + ix) * p->in_c;
}

VECTORIZE
void xnor_fconv_block_ref(const float *x, size_t pixel_stride, size_t npix, size_t tap_h_stride,
                          size_t tap_w_stride, size_t ky0, size_t ky1, size_t kx0, size_t kx1,
                          size_t kernel_w, size_t in_c, const float *w, size_t w_stride, size_t out_c,
                          const float *bias, float *out, size_t out_stride) {
    for (size_t q = 0; q < npix; q++) {
        float *restrict acc = out + q * out_stride;
        for (size_t o = 0; o < out_c; o++) acc[o] = bias ? bias[o] : 0.0f;
        for (size_t ky = ky0; ky < ky1; ky++)
            for (size_t kx = kx0; kx < kx1; kx++) { /* the reference: one tap at a time */
                const float *xt = x + q * pixel_stride + (ky - ky0) * tap_h_stride + (kx - kx0) * tap_w_stride;
                const float *restrict wt = w + (ky * kernel_w + kx) * in_c * w_stride;
                for (size_t ci = 0; ci < in_c; ci++) {
                    float xv = xt[ci];
                    const float *restrict wr = wt + ci * w_stride;
                    for (size_t o = 0; o < out_c; o++) acc[o] += xv * wr[o];
                }
            }
    }
}

/* The kernel rows of output row oy inside the input: [*ky0, *ky1). */
void xnor_fconv_rows(const xnor_conv_params *p, size_t oy, size_t *ky0, size_t *ky1) {
    axis_taps(oy, p->stride_h, p->pad_top, p->dilation_h, p->kernel_h, p->in_h, ky0, ky1);
}

/* The kernel columns of output column ox inside the input: [*kx0, *kx1). */
void xnor_fconv_cols(const xnor_conv_params *p, size_t ox, size_t *kx0, size_t *kx1) {
    axis_taps(ox, p->stride_w, p->pad_left, p->dilation_w, p->kernel_w, p->in_w, kx0, kx1);
}

#define ROWS_TARGET
#define DEPTHWISE_ROW xnor_depthwise_row_ref
#define POOL_ROW xnor_pool_row_ref
#include "rows.inc"

/* Output channels per pass over a row: one slice of the weights (taps x in_c x 16 floats) stays in L1
 * while every pixel of the row goes through it.  (A 1x1 conv 256 -> 512 has 512 KB of weights, which
 * pixel blocks sweeping all channels would stream from L3 again and again.) */
#define FCONV_SLICE 16
#define FCONV_PIXELS 6 /* the most a block kernel takes */

/* [*lo, *hi): the outputs along one axis whose every tap lies inside the input (empty: lo = hi). */
static void interior(size_t out, size_t in, size_t stride, size_t pad, size_t span, size_t *lo, size_t *hi) {
    size_t a = (pad + stride - 1) / stride, b = in + pad >= span ? (in + pad - span) / stride + 1 : 0;
    if (b > out) b = out;
    *lo = a < b ? a : 0, *hi = a < b ? b : 0;
}

/* One output row of a direct conv: channel slices outer; interior pixels in blocks of up to 6 with
 * the same taps, border pixels one at a time with their own. */
static void direct_row(const fjob *job, size_t b, size_t oy) {
    const xnor_conv_params *p = job->p;
    size_t ow = job->out_w, oc = p->out_c, ky0, ky1, kx0, kx1, lo, hi;
    float *row = job->out + (b * job->out_h + oy) * ow * oc;
    size_t tap_h = p->dilation_h * p->in_w * p->in_c, tap_w = p->dilation_w * p->in_c;
    size_t pixel_stride = p->stride_w * p->in_c;
    interior(ow, p->in_w, p->stride_w, p->pad_left, p->dilation_w * (p->kernel_w - 1) + 1, &lo, &hi);
    for (size_t ob = 0; ob < oc; ob += FCONV_SLICE) {
        size_t n_oc = oc - ob < FCONV_SLICE ? oc - ob : FCONV_SLICE;
        const float *bias = job->bias ? job->bias + ob : NULL;
        for (size_t ox = 0; ox < ow;) {
            size_t n = ox >= lo && ox < hi ? (hi - ox < FCONV_PIXELS ? hi - ox : FCONV_PIXELS) : 1;
            valid_taps(p, oy, ox, &ky0, &ky1, &kx0, &kx1);
            float *dst = row + ox * oc + ob;
            if (ky0 == ky1 || kx0 == kx1) { /* no tap inside the input (a row in the padding): the bias alone */
                for (size_t q = 0; q < n; q++)
                    for (size_t o = 0; o < n_oc; o++) dst[q * oc + o] = bias ? bias[o] : 0.0f;
            } else {
                job->block(tap_ptr(job, b, oy, ox, ky0, kx0), pixel_stride, n, tap_h, tap_w, ky0, ky1, kx0, kx1,
                           p->kernel_w, p->in_c, job->w + ob, oc, n_oc, bias, dst, oc);
            }
            ox += n;
        }
    }
}

/* A 1x1 conv with unit strides and no padding is a matrix product over all pixels: blocks of pixels
 * run across row ends (a 7x7 map would otherwise leave a 1-pixel block per row). */
static int is_pointwise(const xnor_conv_params *p) {
    return p->kernel_h == 1 && p->kernel_w == 1 && p->stride_h == 1 && p->stride_w == 1 && !p->pad_top &&
           !p->pad_bottom && !p->pad_left && !p->pad_right;
}

static void pointwise_task(fjob *job, int t, int nt) {
    const xnor_conv_params *p = job->p;
    size_t pixels = p->batch * job->out_h * job->out_w, oc = p->out_c, q0, q1;
    xnor_split(pixels, FCONV_PIXELS, t, nt, &q0, &q1);
    for (size_t ob = 0; ob < oc; ob += FCONV_SLICE) {
        size_t n_oc = oc - ob < FCONV_SLICE ? oc - ob : FCONV_SLICE;
        for (size_t q = q0; q < q1; q += FCONV_PIXELS) {
            size_t n = q1 - q < FCONV_PIXELS ? q1 - q : FCONV_PIXELS;
            job->block(job->x + q * p->in_c, p->in_c, n, 0, 0, 0, 1, 0, 1, 1, p->in_c, job->w + ob, oc, n_oc,
                       job->bias ? job->bias + ob : NULL, job->out + q * oc + ob, oc);
        }
    }
}

static void ftask(void *ctx, int t, int nt) {
    fjob *job = ctx;
    const xnor_conv_params *p = job->p;
    if (job->kind == FCONV_DIRECT && is_pointwise(p)) {
        pointwise_task(job, t, nt);
        return;
    }
    size_t rows = p->batch * job->out_h, r0, r1;
    xnor_split(rows, 1, t, nt, &r0, &r1);
    double *sum = NULL;
    if (job->kind == FPOOL_AVG || job->kind == FPOOL_AVG_INCLUDE_PAD) {
        sum = job->sums ? job->sums + (size_t)t * p->in_c : malloc(p->in_c * sizeof(double));
        if (!sum) { /* cannot happen for sizes that passed validation, but never write garbage */
            for (size_t r = r0; r < r1; r++)
                for (size_t i = 0; i < job->out_w * p->in_c; i++) job->out[r * job->out_w * p->in_c + i] = NAN;
            return;
        }
    }
    size_t lo, hi;
    interior(job->out_w, p->in_w, p->stride_w, p->pad_left, p->dilation_w * (p->kernel_w - 1) + 1, &lo, &hi);
    const xnor_kernels *kern = xnor_active();
    xnor_depthwise_row_fn depthwise_row = kern->depthwise_row ? kern->depthwise_row : xnor_depthwise_row_ref;
    xnor_pool_row_fn pool_row = kern->pool_row ? kern->pool_row : xnor_pool_row_ref;
    for (size_t r = r0; r < r1; r++) {
        size_t b = r / job->out_h, oy = r % job->out_h;
        if (job->kind == FCONV_DIRECT) {
            direct_row(job, b, oy);
            continue;
        }
        const float *image = job->x + b * p->in_h * p->in_w * p->in_c;
        float *row = job->out + r * job->out_w * p->out_c;
        if (job->kind == FCONV_DEPTHWISE) depthwise_row(image, p, oy, job->out_w, lo, hi, job->w, job->bias, row);
        else pool_row(image, p, oy, job->out_w, lo, hi, job->kind - FPOOL_MAX, sum, row);
    }
    if (!job->sums) free(sum);
}

static int mul_ok(size_t a, size_t b, size_t *r) {
    if (a && b > SIZE_MAX / a) return 0;
    *r = a * b;
    return 1;
}

/* Checks a job's pointers and sizes (and sets its output size); run() and the prepared conv use it. */
static xnor_status check_job(fjob *job) {
    const xnor_conv_params *p = job->p;
    xnor_status st = xnor_init();
    if (st != XNOR_OK) return st;
    if (!job->x || !job->out || (job->kind <= FCONV_DEPTHWISE && !job->w))
        return xnor_fail(XNOR_EINVAL, "float layer: null pointer");
    if (!p->batch || !p->in_c || !p->out_c) return xnor_fail(XNOR_EINVAL, "float layer: sizes must be >= 1");
    if ((st = xnor_conv_output_size(p, &job->out_h, &job->out_w)) != XNOR_OK) return st;
    size_t in, out, wsize, tmp;
    if (!mul_ok(p->batch, p->in_h, &tmp) || !mul_ok(tmp, p->in_w, &tmp) || !mul_ok(tmp, p->in_c, &in) ||
        in > SIZE_MAX / 8 || !mul_ok(p->batch, job->out_h, &tmp) || !mul_ok(tmp, job->out_w, &tmp) ||
        !mul_ok(tmp, p->out_c, &out) || out > SIZE_MAX / 8 || !mul_ok(p->kernel_h, p->kernel_w, &tmp) ||
        !mul_ok(tmp, p->in_c, &tmp) || !mul_ok(tmp, p->out_c, &wsize) || wsize > SIZE_MAX / 8)
        return xnor_fail(XNOR_EINVAL, "float layer: the tensors are too large for the address space");
    return XNOR_OK;
}

static xnor_status run(fjob *job, int num_threads) {
    const xnor_conv_params *p = job->p;
    xnor_status st = check_job(job);
    if (st != XNOR_OK) return st;
    size_t work, out = p->batch * job->out_h * job->out_w * p->out_c; /* bounded: check_job */
    if (!mul_ok(out, job->kind == FCONV_DIRECT ? p->kernel_h * p->kernel_w * p->in_c : p->kernel_h * p->kernel_w, &work))
        work = SIZE_MAX;
    int nt = xnor_threads_for(work, 1 << 16, num_threads);
    if (job->max_threads && nt > job->max_threads) nt = job->max_threads;
    xnor_parallel(nt, ftask, job);
    return XNOR_OK;
}

xnor_status xnor_conv2d_f32(const float *x, const float *w, const float *bias, const xnor_conv_params *p,
                            float *out, int num_threads) {
    if (!p) return xnor_fail(XNOR_EINVAL, "conv2d_f32: null pointer");
    fjob job = {x, w, bias, p, out, 0, 0, FCONV_DIRECT, NULL, NULL, 0};
    if (p->groups == p->in_c && p->groups == p->out_c && p->groups > 1) {
        job.kind = FCONV_DEPTHWISE;
    } else if (p->groups != 1) {
        return xnor_fail(XNOR_EINVAL, "conv2d_f32: groups must be 1 or in_c = out_c (depthwise), got %zu", p->groups);
    }
    xnor_status st = xnor_init();
    if (st != XNOR_OK) return st;
    job.block = xnor_active()->fconv_block ? xnor_active()->fconv_block : xnor_fconv_block_ref;
    return run(&job, num_threads);
}

/* Prepared weights: a 16-float header (as uint32: magic, the geometry they were made for, then whether
 * the weights are small integers times one power of two and the largest such integer) and Winograd's
 * transformed weights.
 *
 * Exact sums stay exact.  When every input is an integer of at most 2^12 and the weights are integers of
 * at most 2^12 times one power of two, the direct conv's sums are exact whenever the largest possible
 * sum is below 2^24: a binary network's +-1 activations run as float, or an integer image.  Winograd's
 * 1/6 and 1/24 would round them (4 becomes 3.9999998, 0 becomes 1e-7, and a Sign after it flips), so
 * such inputs run the direct conv; so do inputs with an Inf or NaN, which Winograd's transforms would
 * spread over a whole tile.  Deciding costs one pass over the input (it stops at the first value that
 * is neither: at once for a photograph). */
#define PREP_HEADER 16
#define PREP_GEOMETRY 7
#define PREP_MAGIC 0x34475758u /* "XWG4" */
#define EXACT_MAX 4096.0f

static void prep_header(const xnor_conv_params *p, uint32_t h[PREP_HEADER]) {
    memset(h, 0, PREP_HEADER * sizeof(uint32_t));
    h[0] = PREP_MAGIC, h[1] = (uint32_t)p->kernel_h, h[2] = (uint32_t)p->kernel_w, h[3] = (uint32_t)p->stride_h;
    h[4] = (uint32_t)p->stride_w, h[5] = (uint32_t)p->in_c, h[6] = (uint32_t)p->out_c;
}

/* h[7] = 1 and h[8] = the largest |w| / 2^e when every weight is an integer of at most EXACT_MAX times 2^e. */
static void weights_exactness(const float *w, size_t n, uint32_t h[PREP_HEADER]) {
    float top = 0.0f;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(w[i])) return;
        top = fabsf(w[i]) > top ? fabsf(w[i]) : top;
    }
    int e;
    frexpf(top, &e); /* top < 2^e */
    e -= 12;         /* so |w| / 2^e < 2^12 */
    for (size_t i = 0; i < n; i++) {
        float b = ldexpf(w[i], -e);
        if (b != nearbyintf(b)) return;
    }
    h[7] = 1, h[8] = (uint32_t)ldexpf(top, -e);
}

/* Whether any of n floats is an Inf or a NaN: one branch-free pass (it vectorizes). */
VECTORIZE static int any_nonfinite(const float *x, size_t n) {
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, x + i, sizeof u);
        bad |= (u & 0x7f800000u) == 0x7f800000u;
    }
    return bad != 0;
}

/* Whether this input must run the direct conv (see above). */
static int needs_direct(const float *x, const xnor_conv_params *p, const uint32_t h[PREP_HEADER]) {
    size_t n = p->batch * p->in_h * p->in_w * p->in_c;
    if (any_nonfinite(x, n)) return 1;
    if (h[7] != 1) return 0;
    float top = 0.0f;
    for (size_t i = 0; i < n; i++) { /* stops at the first value that is not a small integer */
        float v = fabsf(x[i]);
        if (!(v <= EXACT_MAX) || v != nearbyintf(v)) return 0;
        top = v > top ? v : top;
    }
    double bound = (double)top * (double)h[8] * (double)(p->kernel_h * p->kernel_w * p->in_c);
    return bound < 16777216.0;
}

xnor_status xnor_conv2d_f32_prepared_size(const xnor_conv_params *p, size_t *floats) {
    if (!p || !floats) return xnor_fail(XNOR_EINVAL, "conv2d_f32_prepared_size: null pointer");
    xnor_status st = xnor_init();
    if (st != XNOR_OK) return st;
    *floats = xnor_winograd_applies(p, xnor_active()) ? PREP_HEADER + xnor_winograd_weights_floats(p) : 0;
    return XNOR_OK;
}

xnor_status xnor_conv2d_f32_prepare(const float *w, const xnor_conv_params *p, float *prepared) {
    size_t floats;
    xnor_status st = xnor_conv2d_f32_prepared_size(p, &floats);
    if (st != XNOR_OK) return st;
    if (!floats) return xnor_fail(XNOR_EINVAL, "conv2d_f32_prepare: this conv runs direct (prepared size 0)");
    if (!w || !prepared) return xnor_fail(XNOR_EINVAL, "conv2d_f32_prepare: null pointer");
    uint32_t h[PREP_HEADER];
    prep_header(p, h);
    weights_exactness(w, p->kernel_h * p->kernel_w * p->in_c * p->out_c, h);
    memcpy(prepared, h, sizeof h);
    xnor_winograd_prepare(w, p, prepared + PREP_HEADER);
    return XNOR_OK;
}

/* Both prepared entry points: the header checked, then the direct conv where it must run, else Winograd
 * in the caller's workspace (NULL: allocated for this call). */
static xnor_status run_prepared(const float *x, const float *w, const float *prepared, const float *bias,
                                const xnor_conv_params *p, float *out, int num_threads, void *workspace,
                                size_t workspace_bytes) {
    size_t floats;
    xnor_status st = xnor_conv2d_f32_prepared_size(p, &floats);
    if (st != XNOR_OK) return st;
    if (!prepared || !floats) return xnor_conv2d_f32(x, w, bias, p, out, num_threads);
    uint32_t h[PREP_HEADER], want[PREP_HEADER];
    memcpy(h, prepared, sizeof h);
    prep_header(p, want);
    if (memcmp(h, want, PREP_GEOMETRY * sizeof(uint32_t)))
        return xnor_fail(XNOR_EINVAL, "conv2d_f32: the prepared weights are not xnor_conv2d_f32_prepare's for this "
                         "kernel, stride and channels");
    fjob job = {x, prepared, bias, p, out, 0, 0, FCONV_DIRECT, NULL, NULL, 0};
    if ((st = check_job(&job)) != XNOR_OK) return st;
    if (needs_direct(x, p, h)) return xnor_conv2d_f32(x, w, bias, p, out, num_threads);
    if (workspace) return xnor_winograd_run(x, prepared + PREP_HEADER, bias, p, out, num_threads, workspace, workspace_bytes);
    int nt = num_threads >= 1 ? num_threads : xnor_num_threads();
    size_t bytes = xnor_winograd_workspace_bytes(p, nt);
    void *ws = aligned_alloc(64, bytes);
    if (!ws) return xnor_fail(XNOR_ENOMEM, "conv2d_f32: cannot allocate %zu bytes of workspace", bytes);
    st = xnor_winograd_run(x, prepared + PREP_HEADER, bias, p, out, nt, ws, bytes);
    free(ws);
    return st;
}

xnor_status xnor_conv2d_f32_run_prepared(const float *x, const float *w, const float *prepared, const float *bias,
                                         const xnor_conv_params *p, float *out, int num_threads) {
    return run_prepared(x, w, prepared, bias, p, out, num_threads, NULL, 0);
}

xnor_status xnor_fconv_run_prepared_ws(const float *x, const float *w, const float *prepared, const float *bias,
                                       const xnor_conv_params *p, float *out, int num_threads, void *workspace,
                                       size_t workspace_bytes) {
    if (!workspace) return xnor_fail(XNOR_EINVAL, "conv2d_f32: null workspace");
    return run_prepared(x, w, prepared, bias, p, out, num_threads, workspace, workspace_bytes);
}

xnor_status xnor_pool2d_f32(const float *x, const xnor_conv_params *p, xnor_pool_kind kind, float *out,
                            int num_threads) {
    if (!p) return xnor_fail(XNOR_EINVAL, "pool2d_f32: null pointer");
    if (p->in_c != p->out_c) return xnor_fail(XNOR_EINVAL, "pool2d_f32: in_c and out_c must be equal");
    if (kind != XNOR_POOL_MAX && kind != XNOR_POOL_AVG && kind != XNOR_POOL_AVG_INCLUDE_PAD)
        return xnor_fail(XNOR_EINVAL, "pool2d_f32: unknown pooling kind %d", (int)kind);
    fjob job = {x, NULL, NULL, p, out, 0, 0, FPOOL_MAX + (int)kind, NULL, NULL, 0};
    return run(&job, num_threads);
}

size_t xnor_pool_workspace_size(const xnor_conv_params *p, int num_threads) {
    size_t nt = num_threads >= 1 ? (size_t)num_threads : (size_t)xnor_num_threads();
    return p && p->in_c && p->in_c <= SIZE_MAX / sizeof(double) / nt / 2 ? nt * p->in_c * sizeof(double) : 0;
}

xnor_status xnor_pool2d_f32_ws(const float *x, const xnor_conv_params *p, xnor_pool_kind kind, float *out,
                               int num_threads, void *workspace, size_t workspace_bytes) {
    if (!p || !workspace) return xnor_fail(XNOR_EINVAL, "pool2d_f32: null pointer");
    if (p->in_c != p->out_c) return xnor_fail(XNOR_EINVAL, "pool2d_f32: in_c and out_c must be equal");
    if (kind != XNOR_POOL_MAX && kind != XNOR_POOL_AVG && kind != XNOR_POOL_AVG_INCLUDE_PAD)
        return xnor_fail(XNOR_EINVAL, "pool2d_f32: unknown pooling kind %d", (int)kind);
    size_t fit = p->in_c ? workspace_bytes / (p->in_c * sizeof(double)) : 0;
    if (!fit) return xnor_fail(XNOR_EINVAL, "pool2d_f32: the workspace is too small");
    fjob job = {x, NULL, NULL, p, out, 0, 0, FPOOL_MAX + (int)kind, NULL, workspace, fit > 1024 ? 1024 : (int)fit};
    return run(&job, num_threads);
}
