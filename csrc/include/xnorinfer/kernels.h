/*
 * xnorinfer's kernel API: packing, binary GEMM, binary and float layers, float tensor ops, ISA choice
 * and threads.  xnorinfer/model.h runs whole `.xnor` models on top of it; xnorinfer.h includes both.
 *
 * Bit convention (used everywhere in the project):
 *   ±1 values are packed 64 to a uint64_t along the last axis.  Element 64*j + i of a row is bit i of
 *   word j.  Bit 1 means -1, bit 0 means +1.  Packing maps x < 0 to -1 and everything else (0, -0.0,
 *   NaN) to +1.  The unused tail bits of a row's last word are written as 0 by the packers, and no
 *   kernel depends on them: callers may hand in words with garbage tail bits.
 *   The dot product of two packed rows of length K is  K - 2 * popcount(a XOR b).
 *
 * Errors, one channel for the whole library (model.h's functions too): a function that can fail
 * returns an xnor_status, XNOR_OK (0) on success, and leaves a message naming the problem for the
 * calling thread in xnor_last_error() (thread-local: valid until that thread's next failing call).
 * Nothing is reported any other way; xnor_popcount_peak_loop, which returns a count, returns 0 instead.
 * Every function validates what it can (null pointers, zero or overflowing sizes, a model file's every
 * field) before it touches memory.
 */
#ifndef XNORINFER_KERNELS_H
#define XNORINFER_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define XNOR_API __attribute__((visibility("default")))
#else
#define XNOR_API
#endif

/* The enums the ops take (float op codes, pool and output kinds, tensor types), generated from the op
 * schema the C runtime and the Python package share (xnorinfer/runtime/schema.py). */
#include "xnorinfer/schema_enums.h"

typedef enum {
    XNOR_OK = 0,
    XNOR_EINVAL = 1,       /* bad argument: null pointer, size zero or too large, words/k mismatch */
    XNOR_ENOMEM = 2,       /* an allocation failed */
    XNOR_EUNSUPPORTED = 3, /* the requested ISA is not available on this CPU or in this build */
    XNOR_EBUSY = 4,        /* xnor_model_run: the model is running on another thread */
    XNOR_EFALLBACK = 5     /* xnor_model_run: an input the program cannot compute exactly (an exact 0
                              reaching a sign that keeps 0: the float graph must run it) */
} xnor_status;

/* Element types accepted by xnor_pack.  Unsigned types are deliberately absent (they are never < 0). */
typedef enum {
    XNOR_F16 = 1, XNOR_F32 = 2, XNOR_F64 = 3,
    XNOR_I8 = 4, XNOR_I16 = 5, XNOR_I32 = 6, XNOR_I64 = 7
} xnor_dtype;

/* ISA paths.  XNOR_ISA_REF is the plain reference kernel: slow, obviously right, always available. */
typedef enum {
    XNOR_ISA_REF = 0, XNOR_ISA_SCALAR = 1, XNOR_ISA_AVX2 = 2, XNOR_ISA_AVX512 = 3, XNOR_ISA_NEON = 4,
    XNOR_ISA_COUNT = 5
} xnor_isa;

/* Library set-up.  Reads XNORINFER_ISA (ref|scalar|avx2|avx512|neon) and XNORINFER_NUM_THREADS once.
 * Called implicitly by every entry point; calling it explicitly surfaces an error early
 * (XNOR_EUNSUPPORTED when XNORINFER_ISA names a path this CPU lacks). */
XNOR_API xnor_status xnor_init(void);

/* Message describing the calling thread's most recent error (never NULL). */
XNOR_API const char *xnor_last_error(void);

/* Bit mask of the ISA paths this CPU and build support (bit i = xnor_isa i). */
XNOR_API unsigned xnor_isa_supported(void);
/* The path in use, and its name ("avx512", ...). */
XNOR_API xnor_isa xnor_isa_active(void);
XNOR_API const char *xnor_isa_name(xnor_isa isa);
/* Switch the path for the whole process (tests and benchmarks use it to cover every path). */
XNOR_API xnor_status xnor_isa_select(xnor_isa isa);

/* Threads: the pool's size (workers + the calling thread).  0 in num_threads arguments means this. */
XNOR_API int xnor_num_threads(void);

/* Pack `rows` rows of `k` elements (row-major, contiguous) into rows * ceil(k/64) words, on up to
 * num_threads threads (0: the pool's size; xnor_pack always uses it). */
XNOR_API xnor_status xnor_pack(const void *x, xnor_dtype dtype, size_t rows, size_t k, uint64_t *out);
XNOR_API xnor_status xnor_pack_threads(const void *x, xnor_dtype dtype, size_t rows, size_t k, uint64_t *out,
                                       int num_threads);

/* Unpack rows * ceil(k/64) words into rows * k floats equal to +1.0f or -1.0f. */
XNOR_API xnor_status xnor_unpack_f32(const uint64_t *words, size_t rows, size_t k, float *out);

/* Binary GEMM: c[i*n + j] = k - 2 * popcount(a_i XOR b_j) over the k valid bits, for i < m, j < n.
 * a is m rows and b is n rows of ceil(k/64) packed words each, both contiguous; c is m*n int32.
 * num_threads <= 0 uses the pool's size.  Safe to call from several threads at once. */
XNOR_API xnor_status xnor_bgemm(const uint64_t *a, const uint64_t *b, int32_t *c,
                       size_t m, size_t n, size_t k, int num_threads);

/* ---- Binary layers ------------------------------------------------------------------------------
 * The output transform is applied to the int32 accumulator acc = sum of x*w over the +-1 values of a
 * layer's receptive field, inside the kernel, before anything is written:
 *   XNOR_OUT_INT32    acc
 *   XNOR_OUT_FLOAT32  v = (float)acc * scale[o] + bias[o] (float32, no fused multiply-add; plus a
 *                     residual with xnor_bconv2d_prepared_add), then clamped to [clamp_min,
 *                     clamp_max] (NaN stays NaN); NULL scale/bias mean 1 and 0;
 *                     with acc_clamp set, acc is first clamped to [acc_min, acc_max] (an activation
 *                     applied to the integer result, as Larq Compute Engine's fused ReLU is)
 *   XNOR_OUT_PACKED   bit o = (acc < thresholds[o]) XOR flip[o], packed 64 per word along channels
 *                     (bit 1 = -1; tail bits 0): the next binary layer's input.  Thresholds are chosen
 *                     by the caller so that the bits equal float32 evaluation of a transform then sign.
 */
typedef struct {
    xnor_output_kind kind;
    const float *scale, *bias;       /* FLOAT32: per output channel, or NULL */
    float clamp_min, clamp_max;      /* FLOAT32: use -INFINITY / INFINITY for none */
    const int32_t *thresholds;       /* PACKED: per output channel */
    const uint8_t *flip;             /* PACKED: per output channel, 0 or 1; NULL means all 0 */
    int acc_clamp;                   /* FLOAT32: 0 = none (so a zero-initialised struct clamps nothing) */
    int32_t acc_min, acc_max;
} xnor_output_transform;

/* Binary 2-D convolution on packed NHWC activations.
 *   x:   (batch, in_h, in_w, ceil(in_c/64)) words, channels packed along the last axis
 *   w:   (out_c, kernel_h, kernel_w, ceil((in_c/groups)/64)) words: xnor_pack of OHWI weights, each tap's
 *        channels padded to whole words (the padding bits are ignored, whatever they hold)
 *   out: (batch, out_h, out_w, out_c) int32 or float32, or (batch, out_h, out_w, ceil(out_c/64)) words
 * pad_value 0: a padded tap contributes 0 (what Conv after Sign computes on zero-padded input);
 * pad_value 1: the padded input is +1 (Larq's pad_values=1).  out_h = (in_h + pad_top + pad_bottom -
 * dilation_h*(kernel_h-1) - 1) / stride_h + 1, likewise out_w; both must be >= 1. */
typedef struct {
    size_t batch, in_h, in_w, in_c, out_c;
    size_t kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w;
    size_t pad_top, pad_bottom, pad_left, pad_right;
    size_t groups;
    int pad_value;
} xnor_conv_params;

XNOR_API xnor_status xnor_conv_output_size(const xnor_conv_params *p, size_t *out_h, size_t *out_w);
XNOR_API xnor_status xnor_bconv2d(const uint64_t *x, const uint64_t *w, const xnor_conv_params *p,
                                  const xnor_output_transform *transform, void *out, int num_threads);

/* The weights of a binary convolution laid out for the active ISA's kernel (panels of its tile width,
 * tap padding bits cleared), with the per-tap weight sums zero padding needs: prepared once per layer,
 * then every call skips that work.  Sizes in words / int32 counts; tap_sums may be NULL when
 * *tap_sum_count is 0.  A prepared layout belongs to one ISA: xnor_bconv2d_prepared refuses another. */
typedef struct {
    xnor_isa isa;
    const uint64_t *panels;
    const int32_t *tap_sums;
} xnor_bconv_prepared;

XNOR_API xnor_status xnor_bconv_prepared_size(const xnor_conv_params *p, size_t *panel_words,
                                              size_t *tap_sum_count);
XNOR_API xnor_status xnor_bconv_prepare(const uint64_t *w, const xnor_conv_params *p, uint64_t *panels,
                                        int32_t *tap_sums);
XNOR_API xnor_status xnor_bconv2d_prepared(const uint64_t *x, const xnor_bconv_prepared *w,
                                           const xnor_conv_params *p, const xnor_output_transform *transform,
                                           void *out, int num_threads);

/* A float-output binary convolution followed by a residual (shortcut) add, in one pass:
 * out = clamp(transform(acc) + residual) per value, the clamp (clamp_min, clamp_max) applied after the
 * add -- Bi-Real Net / QuickNet blocks, whose Add (and ReLU) would otherwise read and write the whole
 * activation again.  residual: (batch, out_h, out_w, out_c) float32 like out, not overlapping it.
 * t->kind must be XNOR_OUT_FLOAT32. */
XNOR_API xnor_status xnor_bconv2d_prepared_add(const uint64_t *x, const xnor_bconv_prepared *w,
                                               const xnor_conv_params *p, const xnor_output_transform *t,
                                               const float *residual, void *out, int num_threads);

/* Binary dense layer: out[i, o] = transform(sum_q x_iq * w_oq) for packed x (batch, ceil(k/64)) and
 * w (out_features, ceil(k/64)); out as for xnor_bconv2d with out_c = out_features. */
XNOR_API xnor_status xnor_bdense(const uint64_t *x, const uint64_t *w, size_t batch, size_t k,
                                 size_t out_features, const xnor_output_transform *transform, void *out,
                                 int num_threads);

/* Max-pooling on packed NHWC bits: the max of +-1 values is +1 unless every tap is -1, i.e. the AND of
 * the bits over the window; padded taps are ignored (padding is -inf), so a window that holds no real
 * input gives -1.  Same geometry fields as xnor_conv_params
 * (in_c = out_c = channels; groups, pad_value unused).  out: (batch, out_h, out_w, ceil(c/64)) words. */
XNOR_API xnor_status xnor_bmaxpool2d(const uint64_t *x, const xnor_conv_params *p, uint64_t *out,
                                     int num_threads);

/* ---- Float layers (the float ops around binary layers), NHWC float32 ---------------------------
 * Same geometry fields as xnor_conv_params; padding is zero padding (conv) or ignored taps (pools).
 * xnor_conv2d_f32: groups 1 with weights HWIO (kernel_h, kernel_w, in_c, out_c), or depthwise
 * (groups = in_c = out_c) with weights (kernel_h, kernel_w, channels); bias per output channel or NULL.
 * out: (batch, out_h, out_w, out_c).  Rounding is float32 with fused multiply-adds where the CPU has
 * them (not bit-identical to another implementation's order of additions). */
XNOR_API xnor_status xnor_conv2d_f32(const float *x, const float *w, const float *bias,
                                     const xnor_conv_params *p, float *out, int num_threads);

/* The same conv with weights prepared once, for the convs Winograd's F(4x4, 3x3) computes with fewer
 * products on this CPU: groups 1, no dilation, a 3x3 kernel per stride phase (3x3 stride 1, 5x5 stride 2,
 * ..., AlexNet's 11x11 stride 4), enough channels, outputs of at least 8x8; fconv/winograd.c.  Its rounding
 * differs from the direct loop's (errors up to ~4e-6 of the largest sum of |products| in an output's 4x4 tile).
 * xnor_conv2d_f32_prepared_size: *floats = 0 when this geometry runs the direct conv (then prepare and
 * a prepared run are not needed); xnor_conv2d_f32_prepare fills *floats of `prepared` from the HWIO
 * weights (it depends on the weights, kernel, strides and channels, not on the input size or padding);
 * xnor_conv2d_f32_run_prepared runs it (prepared NULL, or a geometry that runs direct: xnor_conv2d_f32
 * with w).  A prepared buffer for another kernel, stride or channel count is refused (XNOR_EINVAL). */
XNOR_API xnor_status xnor_conv2d_f32_prepared_size(const xnor_conv_params *p, size_t *floats);
XNOR_API xnor_status xnor_conv2d_f32_prepare(const float *w, const xnor_conv_params *p, float *prepared);
XNOR_API xnor_status xnor_conv2d_f32_run_prepared(const float *x, const float *w, const float *prepared,
                                                  const float *bias, const xnor_conv_params *p, float *out,
                                                  int num_threads);

/* Pooling: MAX (padded taps ignored; a window of padding only gives -inf; NaN propagates), AVG (the
 * mean of the taps inside the input, summed in double), AVG_INCLUDE_PAD (sum over kernel_h*kernel_w).
 * in_c = out_c = channels; out: (batch, out_h, out_w, channels). */
XNOR_API xnor_status xnor_pool2d_f32(const float *x, const xnor_conv_params *p, xnor_pool_kind kind,
                                     float *out, int num_threads);

/* ---- Float tensor ops (the rest of a model's float graph), float32, row-major -------------------
 * Shapes are given as `rank` dims (rank 1..XNOR_MAX_RANK); operands of a broadcasting op are given with
 * the output's rank (their shapes left-padded with 1s by the caller), each dim equal to the output's or
 * 1 (numpy broadcasting).  Arithmetic is one IEEE float32 operation per element in the order written
 * (no fused multiply-adds), so results equal numpy's float32 ufuncs exactly.  max/min propagate NaN and
 * return the second operand when both compare equal, as numpy does on x86-64 (its maxps/minps loops):
 * max(a, b) = (a > b || isnan(a)) ? a : b, min(a, b) = (a < b || isnan(a)) ? a : b, so
 * max(-0.0, +0.0) = +0.0 and max(+0.0, -0.0) = -0.0.  NaN payloads are not specified.  Every size must
 * be >= 1.  The elementwise ops may run in place (out equal to an operand of the output's shape). */
#define XNOR_MAX_RANK 6
/* Two-operand float ops are "arith", never "binary": in this library binary means +-1 values.
 * xnor_arith_op and xnor_unary_op (schema_enums.h) name the operations. */
XNOR_API xnor_status xnor_arith_f32(xnor_arith_op op, const float *a, const size_t *a_dims, const float *b,
                                    const size_t *b_dims, void *out, const size_t *out_dims, size_t rank);
/* out = cond ? a : b (cond uint8, any nonzero is true), broadcasting like xnor_arith_f32. */
XNOR_API xnor_status xnor_where_f32(const uint8_t *cond, const size_t *cond_dims, const float *a,
                                    const size_t *a_dims, const float *b, const size_t *b_dims, float *out,
                                    const size_t *out_dims, size_t rank);
XNOR_API xnor_status xnor_unary_f32(xnor_unary_op op, const float *x, float *out, size_t count);
/* Inference batch norm over (outer, channels, inner): out = ((x - mean[c]) / denom[c]) * scale[c] + bias[c],
 * four float32 roundings in that order; denom = sqrt(var + eps) computed by the caller. */
XNOR_API xnor_status xnor_batchnorm_f32(const float *x, const float *mean, const float *denom,
                                        const float *scale, const float *bias, size_t outer, size_t channels,
                                        size_t inner, float *out);
/* Softmax over the middle axis of (outer, axis, inner), for each (outer, inner) column exactly:
 *   m = max of x over the axis (NaN if any x is NaN),
 *   e_i = (float)exp((double)(x_i - m))   -- x_i - m a float32 subtraction, exp the library's own
 *                                           double-precision exp (no libm: the same bits on every CPU),
 *   sum = sum of (double)e_i in index order, in double,
 *   out_i = (float)((double)e_i / sum).
 * As numpy's exp(x - max) / sum: a column holding NaN or +inf, or only -inf, gives NaN everywhere
 * (+inf - +inf and -inf - -inf are NaN); other -inf entries give 0.  out may equal x. */
XNOR_API xnor_status xnor_softmax_f32(const float *x, size_t outer, size_t axis, size_t inner, float *out);
/* Mean over the middle axis of (outer, reduce, inner) into (outer, inner): summed in double in index
 * order, divided in double, rounded once to float32: out = (float)(sum of (double)x_i / (double)reduce). */
XNOR_API xnor_status xnor_mean_f32(const float *x, size_t outer, size_t reduce, size_t inner, float *out);
/* out = x transposed by perm (out dim i = x dim perm[i]), elements of elem_size bytes (1, 2, 4 or 8);
 * out must not overlap x. */
XNOR_API xnor_status xnor_transpose(const void *x, size_t elem_size, const size_t *dims, const size_t *perm,
                                    size_t rank, void *out);

/* Register-only XOR-popcount-accumulate loop of the active ISA, `iters` iterations; returns the number
 * of binary multiply-accumulates it performed (the benchmark divides by its wall time to get the
 * CPU's peak) and stores a checksum in *sink so nothing is optimised away. */
XNOR_API double xnor_popcount_peak_loop(uint64_t iters, uint64_t *sink);

#ifdef __cplusplus
}
#endif
#endif
