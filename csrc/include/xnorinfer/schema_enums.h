/* Generated from xnorinfer/runtime/schema.py by `python xnorinfer/runtime/schema.py --write`: do not edit. */

#ifndef XNORINFER_SCHEMA_ENUMS_H
#define XNORINFER_SCHEMA_ENUMS_H

typedef enum {
    XNOR_T_F32 = 1, /* float32 */
    XNOR_T_U8 = 2, /* uint8 (booleans are 0 / 1) */
    XNOR_T_I32 = 3, /* int32 */
    XNOR_T_BITS = 4, /* packed +-1 bits, 64 per uint64 word along the last axis */
} xnor_tensor_type;

typedef enum {
    XNOR_ARITH_ADD = 0,
    XNOR_ARITH_SUB = 1,
    XNOR_ARITH_MUL = 2,
    XNOR_ARITH_DIV = 3,
    XNOR_ARITH_MAX = 4,
    XNOR_ARITH_MIN = 5,
    XNOR_ARITH_PRELU = 6, /* a < 0 ? a * b : a */
    XNOR_ARITH_GREATER = 7, /* the comparisons write uint8 0 / 1 */
    XNOR_ARITH_GREATER_EQUAL = 8,
    XNOR_ARITH_LESS = 9,
    XNOR_ARITH_LESS_EQUAL = 10,
    XNOR_ARITH_EQUAL = 11,
    XNOR_ARITH_COUNT = 12
} xnor_arith_op;

typedef enum {
    XNOR_UN_RELU = 0, /* max(x, +0.0) by xnor_arith_f32's max rule: -0.0 gives +0.0 */
    XNOR_UN_NEG = 1,
    XNOR_UN_ABS = 2,
    XNOR_UN_ROUND = 3, /* half to even (np.round, rint) */
    XNOR_UN_FLOOR = 4,
    XNOR_UN_CEIL = 5,
    XNOR_UN_TRUNC = 6,
    XNOR_UN_ROUND_UP = 7, /* sign(x) * ceil(|x|)        (QONNX UP) */
    XNOR_UN_ROUND_HALF_UP = 8, /* sign(x) * floor(|x| + 0.5) (QONNX HALF_UP) */
    XNOR_UN_ROUND_HALF_DOWN = 9, /* sign(x) * ceil(|x| - 0.5)  (QONNX HALF_DOWN); sign as np.sign: 1, -1, +0.0 for either zero, NaN for NaN, so HALF_DOWN of +-0.0 is +0.0 * -0.0 = -0.0, like numpy's */
    XNOR_UN_SIGMOID = 10, /* 1 / (1 + exp(-x)) in double with the library's own exp, rounded once to float32 (the same bits on every CPU) */
    XNOR_UN_COUNT = 11
} xnor_unary_op;

typedef enum {
    XNOR_POOL_MAX = 0, /* padded taps ignored; a window of padding only gives -inf; NaN propagates */
    XNOR_POOL_AVG = 1, /* the mean of the taps inside the input, summed in double */
    XNOR_POOL_AVG_INCLUDE_PAD = 2, /* the sum over kernel_h * kernel_w taps */
} xnor_pool_kind;

typedef enum {
    XNOR_OUT_INT32 = 0, /* the accumulator */
    XNOR_OUT_FLOAT32 = 1, /* acc * scale + bias, clamped */
    XNOR_OUT_PACKED = 2, /* sign bits by per-channel thresholds */
} xnor_output_kind;

#endif
