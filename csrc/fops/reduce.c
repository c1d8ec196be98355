/* Softmax and mean over the middle axis of (outer, axis, inner), float32 in and out.
 *
 * Both are defined by one exact formula (see the header), so the C runtime and the Python executor,
 * which call these kernels, produce the same bits on every CPU: sums in double in index order, and
 * softmax's exp is the library's own (xnor_exp_f64), not libm's, whose last bits differ between libms
 * and versions.  Where inner > 1 the columns are processed in chunks with the innermost loops running
 * along the contiguous inner axis; each output's sum still runs over the reduced axis in index order,
 * so the chunking changes nothing in the result.
 */
#include <float.h>
#include <math.h>
#include <string.h>
#include "fops.h"

/* No contraction into fused multiply-adds, whatever the build flags say (GCC has no such pragma and
 * relies on the Makefile's and the cffi build's -ffp-contract=off). */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD != 0
#error "xnor float ops need float and double arithmetic evaluated in their own precision (FLT_EVAL_METHOD 0)"
#endif

/* ---- exp ---------------------------------------------------------------------------------------- */

static double two_pow(int n) { /* 2^n for n in [-1022, 1023] */
    uint64_t bits = (uint64_t)(n + 1023) << 52;
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

double xnor_exp_f64(double x) {
    static const double log2e = 1.4426950408889634074;        /* 0x3FF71547652B82FE */
    static const double ln2_hi = 6.93147180369123816490e-01;  /* 0x3FE62E42FEE00000: 32 bits, k*ln2_hi exact */
    static const double ln2_lo = 1.90821492927058770002e-10;  /* 0x3DEA39EF35793C76: ln2 - ln2_hi */
    /* 1/n! for n = 0..13 */
    static const double c[14] = {
        1.0, 1.0, 0.5, 1.6666666666666666574e-01, 4.1666666666666664354e-02, 8.3333333333333332177e-03,
        1.3888888888888889419e-03, 1.9841269841269841253e-04, 2.4801587301587301566e-05,
        2.7557319223985892511e-06, 2.7557319223985888276e-07, 2.5052108385441720224e-08,
        2.0876756987868100187e-09, 1.6059043836821613341e-10,
    };
    if (x != x) return x;          /* NaN */
    if (x > 709.79) return HUGE_VAL; /* e^709.79 > DBL_MAX; covers +inf */
    if (x < -746.0) return 0.0;    /* below half the smallest subnormal; covers -inf */
    double t = x * log2e + 0.5;    /* exact + 0.5: |x * log2e| < 2^11 */
    int k = (int)t;                /* floor(t): the cast truncates toward zero */
    if ((double)k > t) k--;
    double kd = (double)k;
    double r = (x - kd * ln2_hi) - kd * ln2_lo; /* |r| <= ln2/2 + 2^-40 */
    double p = c[13];
    for (int i = 12; i >= 0; i--) p = p * r + c[i];
    if (k > 1023) return p * two_pow(k - 1) * 2.0;      /* k = 1024 */
    if (k < -1022) return p * two_pow(k + 54) * 0x1p-54; /* subnormal result: one rounding at the end */
    return p * two_pow(k);
}

/* ---- softmax ------------------------------------------------------------------------------------ */

/* NaN-propagating max: once a NaN is seen it stays. */
static inline float max_nan(float m, float v) { return (v > m || isnan(v)) ? v : m; }

static void softmax_row(const float *x, size_t n, float *out) {
    float m = x[0];
    for (size_t i = 1; i < n; i++) m = max_nan(m, x[i]);
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        float e = (float)xnor_exp_f64((double)(x[i] - m));
        out[i] = e;
        sum += (double)e;
    }
    for (size_t i = 0; i < n; i++) out[i] = (float)((double)out[i] / sum);
}

#define CHUNK 256

/* Columns [j0, j0 + w) of one outer slice: x and out point at (axis 0, column j0), rows `stride` apart. */
static void softmax_cols(const float *x, size_t n, size_t stride, size_t w, float *out) {
    float m[CHUNK];
    double sum[CHUNK];
    memcpy(m, x, w * sizeof(float));
    for (size_t i = 1; i < n; i++)
        for (size_t j = 0; j < w; j++) m[j] = max_nan(m[j], x[i * stride + j]);
    for (size_t j = 0; j < w; j++) sum[j] = 0.0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < w; j++) {
            float e = (float)xnor_exp_f64((double)(x[i * stride + j] - m[j]));
            out[i * stride + j] = e;
            sum[j] += (double)e;
        }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < w; j++) out[i * stride + j] = (float)((double)out[i * stride + j] / sum[j]);
}

static xnor_status check_3d(const char *what, const void *x, size_t outer, size_t mid, size_t inner,
                            const void *out) {
    if (!x || !out) return xnor_fail(XNOR_EINVAL, "%s: null pointer", what);
    if (!outer || !mid || !inner) return xnor_fail(XNOR_EINVAL, "%s: sizes must be >= 1", what);
    if (mid > XNOR_FOPS_MAX_BYTES / sizeof(float) / outer || inner > XNOR_FOPS_MAX_BYTES / sizeof(float) / (outer * mid))
        return xnor_fail(XNOR_EINVAL, "%s: the tensor is too large for the address space", what);
    return XNOR_OK;
}

xnor_status xnor_softmax_f32(const float *x, size_t outer, size_t axis, size_t inner, float *out) {
    xnor_status st = check_3d("softmax_f32", x, outer, axis, inner, out);
    if (st != XNOR_OK) return st;
    for (size_t o = 0; o < outer; o++) {
        const float *xs = x + o * axis * inner;
        float *os = out + o * axis * inner;
        if (inner == 1) {
            softmax_row(xs, axis, os);
            continue;
        }
        for (size_t j = 0; j < inner; j += CHUNK)
            softmax_cols(xs + j, axis, inner, inner - j < CHUNK ? inner - j : CHUNK, os + j);
    }
    return XNOR_OK;
}

/* ---- mean --------------------------------------------------------------------------------------- */

VECTORIZE static void add_row(double *acc, const float *x, size_t w) {
    for (size_t j = 0; j < w; j++) acc[j] += (double)x[j];
}

xnor_status xnor_mean_f32(const float *x, size_t outer, size_t reduce, size_t inner, float *out) {
    xnor_status st = check_3d("mean_f32", x, outer, reduce, inner, out);
    if (st != XNOR_OK) return st;
    const double n = (double)reduce;
    size_t o = 0;
    if (inner == 1) /* rows: 8 at a time, so 8 independent chains of additions are in flight */
        for (; o + 8 <= outer; o += 8) {
            const float *xs = x + o * reduce;
            double acc[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
            for (size_t i = 0; i < reduce; i++)
                for (size_t r = 0; r < 8; r++) acc[r] += (double)xs[r * reduce + i];
            for (size_t r = 0; r < 8; r++) out[o + r] = (float)(acc[r] / n);
        }
    for (; o < outer; o++) {
        const float *xs = x + o * reduce * inner;
        if (inner == 1) {
            double sum = 0.0;
            for (size_t i = 0; i < reduce; i++) sum += (double)xs[i];
            out[o] = (float)(sum / n);
            continue;
        }
        for (size_t j0 = 0; j0 < inner; j0 += CHUNK) {
            size_t w = inner - j0 < CHUNK ? inner - j0 : CHUNK;
            double acc[CHUNK];
            for (size_t j = 0; j < w; j++) acc[j] = 0.0;
            for (size_t i = 0; i < reduce; i++) add_row(acc, xs + i * inner + j0, w);
            for (size_t j = 0; j < w; j++) out[o * inner + j0 + j] = (float)(acc[j] / n);
        }
    }
    return XNOR_OK;
}
