/* Generated from xnorinfer/runtime/schema.py by `python xnorinfer/runtime/schema.py --write`: do not edit. */

#ifndef XNOR_RUNTIME_SCHEMA_H
#define XNOR_RUNTIME_SCHEMA_H
#include <stddef.h>
#include <stdint.h>

#define RT_SCHEMA_HASH INT64_C(1381009634052432062)

enum {
    RT_OP_COPY = 1, /* y = x, bytes copied (reshapes, identities, outputs that are inputs) */
    RT_OP_PACK = 2, /* y = sign bits of float32 x along its last axis: bit 1 where x's case (< 0, == 0, > 0) is set in minus_mask; ternary: an exact 0 makes the run return XNOR_EFALLBACK */
    RT_OP_BCONV = 3, /* binary convolution (a dense layer is a 1x1 one) with its fused output transform */
    RT_OP_BMAXPOOL = 4, /* max-pool of packed bits (AND over the window); or_mask: channels pooled by OR instead */
    RT_OP_FCONV = 5, /* float conv, NHWC: groups 1 (HWIO weights) or depthwise (kh, kw, c) */
    RT_OP_POOL = 6, /* float max / average pool, NHWC */
    RT_OP_ARITH = 7, /* y = a <fn> b, numpy broadcasting */
    RT_OP_WHERE = 8, /* y = cond ? a : b, numpy broadcasting */
    RT_OP_UNARY = 9, /* y = fn(x) */
    RT_OP_BATCHNORM = 10, /* y = ((x - mean) / denom) * scale + bias along axis */
    RT_OP_SOFTMAX = 11, /* softmax over the axes [begin, end) taken as one */
    RT_OP_MEAN = 12, /* mean over the axes [begin, end) */
    RT_OP_TRANSPOSE = 13, /* y = x transposed: y dim i = x dim perm[i] (perm entries past the rank are 0) */
    RT_OP_CONCAT = 14, /* y = the inputs joined along axis */
    RT_OP_COUNT = 15
};

/* The ops, for tables indexed by op: X(name, NAME). */
#define RT_OPS(X) X(copy, COPY) X(pack, PACK) X(bconv, BCONV) X(bmaxpool, BMAXPOOL) X(fconv, FCONV) X(pool, POOL) X(arith, ARITH) X(where, WHERE) X(unary, UNARY) X(batchnorm, BATCHNORM) X(softmax, SOFTMAX) X(mean, MEAN) X(transpose, TRANSPOSE) X(concat, CONCAT)

/* strides, dilations and pads of a sliding window (xnor_conv_params' fields) */
typedef struct {
    int64_t stride_h, stride_w, dilation_h, dilation_w, pad_top, pad_bottom, pad_left, pad_right;
} rt_window;

/* copy: operand indices, parameters */
enum { RT_COPY_X = 0, RT_COPY_OPERANDS = 1 };
typedef struct {
    char unused;
} rt_copy_params;

/* pack: operand indices, parameters */
enum { RT_PACK_X = 0, RT_PACK_OPERANDS = 1 };
typedef struct {
    int64_t minus_mask, ternary;
} rt_pack_params;

/* bconv: operand indices, parameters */
enum { RT_BCONV_X = 0, RT_BCONV_W = 1, RT_BCONV_SCALE = 2, RT_BCONV_BIAS = 3, RT_BCONV_THRESHOLDS = 4, RT_BCONV_FLIP = 5, RT_BCONV_RESIDUAL = 6, RT_BCONV_OPERANDS = 7 };
typedef struct {
    int64_t in_c;
    rt_window window;
    int64_t groups, pad_value, kind; /* kind: xnor_output_kind */
    double clamp_min, clamp_max;
    int64_t acc_clamp, acc_min, acc_max;
} rt_bconv_params;

/* bmaxpool: operand indices, parameters */
enum { RT_BMAXPOOL_X = 0, RT_BMAXPOOL_OR_MASK = 1, RT_BMAXPOOL_OPERANDS = 2 };
typedef struct {
    int64_t channels, kernel_h, kernel_w;
    rt_window window;
} rt_bmaxpool_params;

/* fconv: operand indices, parameters */
enum { RT_FCONV_X = 0, RT_FCONV_W = 1, RT_FCONV_BIAS = 2, RT_FCONV_OPERANDS = 3 };
typedef struct {
    rt_window window;
    int64_t groups;
} rt_fconv_params;

/* pool: operand indices, parameters */
enum { RT_POOL_X = 0, RT_POOL_OPERANDS = 1 };
typedef struct {
    int64_t kind, kernel_h, kernel_w; /* kind: xnor_pool_kind */
    rt_window window;
} rt_pool_params;

/* arith: operand indices, parameters */
enum { RT_ARITH_A = 0, RT_ARITH_B = 1, RT_ARITH_OPERANDS = 2 };
typedef struct {
    int64_t fn; /* fn: xnor_arith_op */
} rt_arith_params;

/* where: operand indices, parameters */
enum { RT_WHERE_COND = 0, RT_WHERE_A = 1, RT_WHERE_B = 2, RT_WHERE_OPERANDS = 3 };
typedef struct {
    char unused;
} rt_where_params;

/* unary: operand indices, parameters */
enum { RT_UNARY_X = 0, RT_UNARY_OPERANDS = 1 };
typedef struct {
    int64_t fn; /* fn: xnor_unary_op */
} rt_unary_params;

/* batchnorm: operand indices, parameters */
enum { RT_BATCHNORM_X = 0, RT_BATCHNORM_MEAN = 1, RT_BATCHNORM_DENOM = 2, RT_BATCHNORM_SCALE = 3, RT_BATCHNORM_BIAS = 4, RT_BATCHNORM_OPERANDS = 5 };
typedef struct {
    int64_t axis;
} rt_batchnorm_params;

/* softmax: operand indices, parameters */
enum { RT_SOFTMAX_X = 0, RT_SOFTMAX_OPERANDS = 1 };
typedef struct {
    int64_t begin, end;
} rt_softmax_params;

/* mean: operand indices, parameters */
enum { RT_MEAN_X = 0, RT_MEAN_OPERANDS = 1 };
typedef struct {
    int64_t begin, end;
} rt_mean_params;

/* transpose: operand indices, parameters */
enum { RT_TRANSPOSE_X = 0, RT_TRANSPOSE_OPERANDS = 1 };
typedef struct {
    int64_t perm[6];
} rt_transpose_params;

/* concat: operand indices, parameters */
enum { RT_CONCAT_X = 0, RT_CONCAT_OPERANDS = 1 };
typedef struct {
    int64_t axis;
} rt_concat_params;

/* A step's parameters, decoded by the loader. */
typedef union {
    rt_copy_params copy;
    rt_pack_params pack;
    rt_bconv_params bconv;
    rt_bmaxpool_params bmaxpool;
    rt_fconv_params fconv;
    rt_pool_params pool;
    rt_arith_params arith;
    rt_where_params where;
    rt_unary_params unary;
    rt_batchnorm_params batchnorm;
    rt_softmax_params softmax;
    rt_mean_params mean;
    rt_transpose_params transpose;
    rt_concat_params concat;
} rt_params;

enum { RT_P_INT = 0, RT_P_F64 = 1, RT_P_INTS = 2, RT_P_GROUP = 3 };
enum { RT_OPERAND_OPTIONAL = 1, RT_OPERAND_CONST = 2, RT_OPERAND_VARIADIC = 4 };
/* types: bit t = tensor type t */
typedef struct { const char *name; unsigned types; unsigned flags; } rt_operand_spec;
/* a parameter of `count` int64 words in [lo, hi], or one double; or a group of n_members */
typedef struct rt_param_spec {
    const char *name;
    int kind;
    size_t offset;
    int64_t lo, hi;
    size_t count;
    const struct rt_param_spec *members;
    int n_members;
} rt_param_spec;
typedef struct {
    const char *name;
    const rt_operand_spec *operands;
    int n_operands;
    const rt_param_spec *params;
    int n_params, n_words;   /* parameters, and the int64 words they take in a step */
} rt_op_spec;

/* Indexed by op code (schema.c); entry 0 is unused. */
extern const rt_op_spec rt_op_specs[RT_OP_COUNT];

#endif
