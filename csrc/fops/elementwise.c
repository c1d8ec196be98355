/* Elementwise float32 ops with numpy broadcasting (arithmetic, comparisons, where), unary ops and
 * inference batch norm.
 *
 * Exactness is the point: each element is the IEEE float32 operation(s) numpy's ufuncs perform, in the
 * same order, no fused multiply-adds (the build passes -ffp-contract=off), so the C runtime and the
 * numpy executor agree bit for bit.  The vectorised loops stay exact: SIMD add/sub/mul/div/compare round
 * exactly as scalar ones.
 *
 * max/min follow numpy on x86-64 (SSE/AVX maxps/minps, then NaN fix-up), which every numpy path
 * (contiguous, strided, broadcast, scalar) agrees on: max(a, b) = (a > b || isnan(a)) ? a : b and
 * min(a, b) = (a < b || isnan(a)) ? a : b.  So a NaN in either operand gives NaN, and of two equal
 * operands (only +0 and -0 differ) the second is returned: max(-0.0, +0.0) = +0.0, max(+0.0, -0.0) =
 * -0.0; ReLU = max(x, +0.0) gives +0.0 for -0.0, as numpy's np.maximum(x, 0) does (checked on x86-64;
 * AArch64's fmax, which numpy uses there, also returns +0.0 of two zeros).  Where numpy on another CPU
 * returns the other zero of a tie, the two differ only in the sign of that zero.
 *
 * Broadcasting: the shapes are collapsed (xnor_broadcast) so the innermost loop runs over the longest
 * run of contiguous elements, with each operand either contiguous (stride 1) or one value (stride 0)
 * along it: same shapes become one loop, a scalar operand a vector-scalar loop, a per-channel vector
 * on the last axis a vector-vector loop per row, one on a middle axis (NCHW bias) a vector-scalar loop
 * per plane.
 */
#include <float.h>
#include <math.h>
#include <string.h>
#include "fops.h"

#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD != 0
#error "xnor float ops need float arithmetic evaluated in float precision (FLT_EVAL_METHOD 0)"
#endif

/* No contraction into fused multiply-adds, whatever the build flags say (GCC has no such pragma and
 * relies on the Makefile's and the cffi build's -ffp-contract=off). */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

/* ---- shapes ------------------------------------------------------------------------------------- */

xnor_status xnor_broadcast(const char *what, size_t rank, const size_t *out_dims, size_t out_elem,
                           size_t operands, const size_t *const *dims, xnor_bshape *s) {
    if (!out_dims) return xnor_fail(XNOR_EINVAL, "%s: null pointer", what);
    for (size_t k = 0; k < operands; k++)
        if (!dims[k]) return xnor_fail(XNOR_EINVAL, "%s: null pointer", what);
    if (rank < 1 || rank > XNOR_MAX_RANK)
        return xnor_fail(XNOR_EINVAL, "%s: rank must be 1..%d, got %zu", what, XNOR_MAX_RANK, rank);
    size_t count = 1;
    for (size_t i = 0; i < rank; i++) {
        if (!out_dims[i]) return xnor_fail(XNOR_EINVAL, "%s: sizes must be >= 1 (out dim %zu is 0)", what, i);
        if (out_dims[i] > XNOR_FOPS_MAX_BYTES / out_elem / count)
            return xnor_fail(XNOR_EINVAL, "%s: the output is too large for the address space", what);
        count *= out_dims[i];
        for (size_t k = 0; k < operands; k++)
            if (dims[k][i] != out_dims[i] && dims[k][i] != 1)
                return xnor_fail(XNOR_EINVAL, "%s: operand %zu dim %zu is %zu, neither 1 nor the output's %zu", what,
                                 k, i, dims[k][i], out_dims[i]);
    }
    /* each operand's own row-major strides, 0 where it is broadcast */
    size_t full[3][XNOR_MAX_RANK];
    for (size_t k = 0; k < operands; k++) {
        size_t step = 1;
        for (size_t i = rank; i-- > 0;) {
            full[k][i] = dims[k][i] == 1 ? 0 : step;
            step *= dims[k][i];
        }
    }
    /* drop size-1 output dims; merge a dim into the kept one outside it when every operand steps
     * across the pair as across one dim */
    size_t n = 0;
    for (size_t i = 0; i < rank; i++) {
        if (out_dims[i] == 1) continue;
        int merge = n > 0;
        for (size_t k = 0; k < operands && merge; k++)
            merge = s->stride[k][n - 1] == full[k][i] * out_dims[i];
        if (merge) {
            s->dims[n - 1] *= out_dims[i];
            for (size_t k = 0; k < operands; k++) s->stride[k][n - 1] = full[k][i];
        } else {
            s->dims[n] = out_dims[i];
            for (size_t k = 0; k < operands; k++) s->stride[k][n] = full[k][i];
            n++;
        }
    }
    if (n == 0) { /* one element */
        s->dims[0] = 1;
        for (size_t k = 0; k < operands; k++) s->stride[k][0] = 0;
        n = 1;
    }
    s->rank = n;
    s->count = count;
    return XNOR_OK;
}

/* Visits the rows of the collapsed shape: calls ROW(off0, off1, off2, out_off) for every index of the
 * outer dims, offsets in elements, the row being dims[rank - 1] long. */
#define FOR_EACH_ROW(s, operands, ROW)                                                          \
    do {                                                                                        \
        size_t idx_[XNOR_MAX_RANK] = {0}, off_[3] = {0, 0, 0}, outer_ = (s).rank - 1;          \
        size_t rowlen_ = (s).dims[outer_], rows_ = (s).count / rowlen_;                          \
        for (size_t r_ = 0; r_ < rows_; r_++) {                                                 \
            ROW(off_[0], off_[1], off_[2], r_ * rowlen_);                                       \
            for (size_t d_ = outer_; d_-- > 0;) { /* odometer over the outer dims */           \
                for (size_t k_ = 0; k_ < (operands); k_++) off_[k_] += (s).stride[k_][d_];      \
                if (++idx_[d_] < (s).dims[d_]) break;                                           \
                for (size_t k_ = 0; k_ < (operands); k_++) off_[k_] -= (s).stride[k_][d_] * (s).dims[d_]; \
                idx_[d_] = 0;                                                                   \
            }                                                                                   \
        }                                                                                       \
    } while (0)

/* ---- arith ops ---------------------------------------------------------------------------------- */

/* A row of n outputs from a row of a and one of b, each contiguous (v) or one value (s). */
typedef void (*arith_row_fn)(const float *a, const float *b, void *out, size_t n);

#define MAX_F(x, y) (((x) > (y) || isnan(x)) ? (x) : (y))
#define MIN_F(x, y) (((x) < (y) || isnan(x)) ? (x) : (y))

/* c ? a : b on the bits.  Both a and b are computed for every element; written as a conditional, the
 * compiler moves the arithmetic of the unused side under a branch (it may not speculate a float
 * operation under -ftrapping-math) and then cannot vectorise the loop. */
static inline float select_f(int c, float a, float b) {
    uint32_t ua, ub, mask = (uint32_t)0 - (uint32_t)(c != 0);
    float r;
    memcpy(&ua, &a, sizeof ua);
    memcpy(&ub, &b, sizeof ub);
    ua = (ua & mask) | (ub & ~mask);
    memcpy(&r, &ua, sizeof r);
    return r;
}

/* a < 0 ? a * b : a, the product computed for every element (as numpy's x * slope is) */
static inline float prelu_f(float x, float y) { return select_f(x < 0.0f, x * y, x); }

#define ARITH_ROWS(name, T, EXPR)                                                                        \
    VECTORIZE static void name##_vv(const float *a, const float *b, void *out, size_t n) {               \
        T *o = out;                                                                                      \
        for (size_t i = 0; i < n; i++) { float x = a[i], y = b[i]; o[i] = (T)(EXPR); }                   \
    }                                                                                                    \
    VECTORIZE static void name##_vs(const float *a, const float *b, void *out, size_t n) {               \
        T *o = out;                                                                                      \
        const float y = *b;                                                                              \
        for (size_t i = 0; i < n; i++) { float x = a[i]; o[i] = (T)(EXPR); }                             \
    }                                                                                                    \
    VECTORIZE static void name##_sv(const float *a, const float *b, void *out, size_t n) {               \
        T *o = out;                                                                                      \
        const float x = *a;                                                                              \
        for (size_t i = 0; i < n; i++) { float y = b[i]; o[i] = (T)(EXPR); }                             \
    }                                                                                                    \
    static void name##_ss(const float *a, const float *b, void *out, size_t n) {                         \
        T *o = out;                                                                                      \
        const float x = *a, y = *b;                                                                      \
        const T v = (T)(EXPR);                                                                           \
        for (size_t i = 0; i < n; i++) o[i] = v;                                                         \
    }

ARITH_ROWS(add, float, x + y)
ARITH_ROWS(sub, float, x - y)
ARITH_ROWS(mul, float, x * y)
ARITH_ROWS(div, float, x / y)
ARITH_ROWS(max, float, MAX_F(x, y))
ARITH_ROWS(min, float, MIN_F(x, y))
ARITH_ROWS(prelu, float, prelu_f(x, y))
ARITH_ROWS(gt, uint8_t, x > y)
ARITH_ROWS(ge, uint8_t, x >= y)
ARITH_ROWS(lt, uint8_t, x < y)
ARITH_ROWS(le, uint8_t, x <= y)
ARITH_ROWS(eq, uint8_t, x == y)

#define ARITH_TABLE_ROW(name) {name##_ss, name##_sv, name##_vs, name##_vv}
/* [op][2 * (a contiguous) + (b contiguous)] */
static const arith_row_fn arith_rows[XNOR_ARITH_COUNT][4] = {
    ARITH_TABLE_ROW(add), ARITH_TABLE_ROW(sub), ARITH_TABLE_ROW(mul), ARITH_TABLE_ROW(div), ARITH_TABLE_ROW(max),
    ARITH_TABLE_ROW(min), ARITH_TABLE_ROW(prelu), ARITH_TABLE_ROW(gt), ARITH_TABLE_ROW(ge), ARITH_TABLE_ROW(lt),
    ARITH_TABLE_ROW(le), ARITH_TABLE_ROW(eq),
};

xnor_status xnor_arith_f32(xnor_arith_op op, const float *a, const size_t *a_dims, const float *b,
                           const size_t *b_dims, void *out, const size_t *out_dims, size_t rank) {
    if ((unsigned)op >= XNOR_ARITH_COUNT) return xnor_fail(XNOR_EINVAL, "arith_f32: unknown op %d", (int)op);
    if (!a || !b || !out) return xnor_fail(XNOR_EINVAL, "arith_f32: null pointer");
    size_t elem = op >= XNOR_ARITH_GREATER ? 1 : sizeof(float);
    const size_t *dims[2] = {a_dims, b_dims};
    xnor_bshape s;
    xnor_status st = xnor_broadcast("arith_f32", rank, out_dims, elem, 2, dims, &s);
    if (st != XNOR_OK) return st;
    size_t last = s.rank - 1;
    arith_row_fn row = arith_rows[op][2 * (s.stride[0][last] != 0) + (s.stride[1][last] != 0)];
    char *o = out;
#define ARITH_ROW(oa, ob, oc_unused, oo) row(a + (oa), b + (ob), o + (oo) * elem, s.dims[last])
    FOR_EACH_ROW(s, 2, ARITH_ROW);
#undef ARITH_ROW
    return XNOR_OK;
}

/* ---- where -------------------------------------------------------------------------------------- */

VECTORIZE static void where_row(const uint8_t *c, size_t sc, const float *a, size_t sa, const float *b, size_t sb,
                                float *o, size_t n) {
    if (sc && sa && sb) {
        for (size_t i = 0; i < n; i++) {
            float av = a[i], bv = b[i];
            o[i] = c[i] ? av : bv;
        }
    } else {
        for (size_t i = 0; i < n; i++) o[i] = c[i * sc] ? a[i * sa] : b[i * sb];
    }
}

xnor_status xnor_where_f32(const uint8_t *cond, const size_t *cond_dims, const float *a, const size_t *a_dims,
                           const float *b, const size_t *b_dims, float *out, const size_t *out_dims, size_t rank) {
    if (!cond || !a || !b || !out) return xnor_fail(XNOR_EINVAL, "where_f32: null pointer");
    const size_t *dims[3] = {cond_dims, a_dims, b_dims};
    xnor_bshape s;
    xnor_status st = xnor_broadcast("where_f32", rank, out_dims, sizeof(float), 3, dims, &s);
    if (st != XNOR_OK) return st;
    size_t last = s.rank - 1, sc = s.stride[0][last], sa = s.stride[1][last], sb = s.stride[2][last];
#define WHERE_ROW(oc, oa, ob, oo) where_row(cond + (oc), sc, a + (oa), sa, b + (ob), sb, out + (oo), s.dims[last])
    FOR_EACH_ROW(s, 3, WHERE_ROW);
#undef WHERE_ROW
    return XNOR_OK;
}

/* ---- unary ops ---------------------------------------------------------------------------------- */

/* Integer roundings without libm calls (a call per element, and nearbyintf saves and restores the FP
 * environment: 10-40x slower than these loops, which vectorise).  In round-to-nearest mode (the default,
 * which neither the library nor numpy changes), adding and subtracting 2^23 rounds |x| < 2^23 to an
 * integer, half to even, exactly as rint; |x| >= 2^23, inf and NaN are integral already.  Each result
 * carries x's sign, as rint/floor/ceil/trunc give it (rint(-0.3) = -0.0, ceil(-0.7) = -0.0). */
#define TWO23 8388608.0f
static inline float round_even_f(float x) {
    float a = fabsf(x), r = (a + TWO23) - TWO23;
    return copysignf(select_f(a < TWO23, r, a), x);
}
static inline float floor_f(float x) {
    float r = round_even_f(x);
    return copysignf(select_f(r > x, r - 1.0f, r), x);
}
static inline float ceil_f(float x) {
    float r = round_even_f(x);
    return copysignf(select_f(r < x, r + 1.0f, r), x);
}
static inline float trunc_f(float x) { return copysignf(floor_f(fabsf(x)), x); }

/* np.sign: 1, -1, +0.0 for either zero, and NaN passed through. */
static inline float sign_f(float x) { return x > 0.0f ? 1.0f : x < 0.0f ? -1.0f : x == 0.0f ? 0.0f : x; }

#define UNARY_LOOP(EXPR)                                              \
    for (size_t i = 0; i < count; i++) { float v = x[i]; out[i] = (EXPR); } \
    break

VECTORIZE static void unary_loop(xnor_unary_op op, const float *x, float *out, size_t count) {
    switch (op) {
    case XNOR_UN_RELU: UNARY_LOOP(MAX_F(v, 0.0f));
    case XNOR_UN_NEG: UNARY_LOOP(-v);
    case XNOR_UN_ABS: UNARY_LOOP(fabsf(v));
    case XNOR_UN_ROUND: UNARY_LOOP(round_even_f(v));
    case XNOR_UN_FLOOR: UNARY_LOOP(floor_f(v));
    case XNOR_UN_CEIL: UNARY_LOOP(ceil_f(v));
    case XNOR_UN_TRUNC: UNARY_LOOP(trunc_f(v));
    case XNOR_UN_ROUND_UP: UNARY_LOOP(sign_f(v) * ceil_f(fabsf(v)));
    case XNOR_UN_ROUND_HALF_UP: UNARY_LOOP(sign_f(v) * floor_f(fabsf(v) + 0.5f));
    case XNOR_UN_ROUND_HALF_DOWN: UNARY_LOOP(sign_f(v) * ceil_f(fabsf(v) - 0.5f));
    case XNOR_UN_SIGMOID: UNARY_LOOP((float)(1.0 / (1.0 + xnor_exp_f64(-(double)v))));
    default: break;
    }
}

xnor_status xnor_unary_f32(xnor_unary_op op, const float *x, float *out, size_t count) {
    if ((unsigned)op >= XNOR_UN_COUNT) return xnor_fail(XNOR_EINVAL, "unary_f32: unknown op %d", (int)op);
    if (!x || !out) return xnor_fail(XNOR_EINVAL, "unary_f32: null pointer");
    if (!count) return xnor_fail(XNOR_EINVAL, "unary_f32: sizes must be >= 1");
    if (count > XNOR_FOPS_MAX_BYTES / sizeof(float))
        return xnor_fail(XNOR_EINVAL, "unary_f32: the tensor is too large for the address space");
    unary_loop(op, x, out, count);
    return XNOR_OK;
}

/* ---- batch norm --------------------------------------------------------------------------------- */

VECTORIZE static void bn_channels(const float *x, const float *mean, const float *denom, const float *scale,
                                  const float *bias, size_t channels, float *out) {
    for (size_t c = 0; c < channels; c++) out[c] = ((x[c] - mean[c]) / denom[c]) * scale[c] + bias[c];
}

VECTORIZE static void bn_plane(const float *x, float m, float d, float s, float b, size_t n, float *out) {
    for (size_t i = 0; i < n; i++) out[i] = ((x[i] - m) / d) * s + b;
}

xnor_status xnor_batchnorm_f32(const float *x, const float *mean, const float *denom, const float *scale,
                               const float *bias, size_t outer, size_t channels, size_t inner, float *out) {
    if (!x || !mean || !denom || !scale || !bias || !out) return xnor_fail(XNOR_EINVAL, "batchnorm_f32: null pointer");
    if (!outer || !channels || !inner) return xnor_fail(XNOR_EINVAL, "batchnorm_f32: sizes must be >= 1");
    if (channels > XNOR_FOPS_MAX_BYTES / sizeof(float) / outer ||
        inner > XNOR_FOPS_MAX_BYTES / sizeof(float) / (outer * channels))
        return xnor_fail(XNOR_EINVAL, "batchnorm_f32: the tensor is too large for the address space");
    for (size_t o = 0; o < outer; o++) {
        if (inner == 1) { /* channels last: vectorise over channels */
            bn_channels(x + o * channels, mean, denom, scale, bias, channels, out + o * channels);
            continue;
        }
        for (size_t c = 0; c < channels; c++) {
            size_t at = (o * channels + c) * inner;
            bn_plane(x + at, mean[c], denom[c], scale[c], bias[c], inner, out + at);
        }
    }
    return XNOR_OK;
}
