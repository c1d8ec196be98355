/* Generated from xnorinfer/runtime/schema.py by `python xnorinfer/runtime/schema.py --write`: do not edit. */

#include "schema.h"

#define INT(s, f, lo, hi) {#f, RT_P_INT, offsetof(s, f), INT64_C(lo), INT64_C(hi), 1, NULL, 0}
#define INTS(s, f, lo, hi, n) {#f, RT_P_INTS, offsetof(s, f), INT64_C(lo), INT64_C(hi), n, NULL, 0}
#define F64(s, f) {#f, RT_P_F64, offsetof(s, f), 0, 0, 1, NULL, 0}
#define GROUP(s, f, m) {#f, RT_P_GROUP, offsetof(s, f), 0, 0, 0, m, (int)(sizeof m / sizeof *m)}

static const rt_param_spec window_members[] = {
    INT(rt_window, stride_h, 1, 2147483648), INT(rt_window, stride_w, 1, 2147483648),
    INT(rt_window, dilation_h, 1, 2147483648), INT(rt_window, dilation_w, 1, 2147483648),
    INT(rt_window, pad_top, 0, 2147483648), INT(rt_window, pad_bottom, 0, 2147483648),
    INT(rt_window, pad_left, 0, 2147483648), INT(rt_window, pad_right, 0, 2147483648),
};
static const rt_operand_spec copy_operands[] = {
    {"x", (1u << 1)|(1u << 2)|(1u << 3)|(1u << 4), 0},
};
static const rt_operand_spec pack_operands[] = {
    {"x", (1u << 1), 0},
};
static const rt_param_spec pack_params[] = {
    INT(rt_pack_params, minus_mask, 0, 7), INT(rt_pack_params, ternary, 0, 1),
};
static const rt_operand_spec bconv_operands[] = {
    {"x", (1u << 4), 0}, {"w", (1u << 4), RT_OPERAND_CONST}, {"scale", (1u << 1), RT_OPERAND_OPTIONAL},
    {"bias", (1u << 1), RT_OPERAND_OPTIONAL}, {"thresholds", (1u << 3), RT_OPERAND_OPTIONAL},
    {"flip", (1u << 2), RT_OPERAND_OPTIONAL}, {"residual", (1u << 1), RT_OPERAND_OPTIONAL},
};
static const rt_param_spec bconv_params[] = {
    INT(rt_bconv_params, in_c, 1, 2147483648), GROUP(rt_bconv_params, window, window_members),
    INT(rt_bconv_params, groups, 1, 2147483648), INT(rt_bconv_params, pad_value, 0, 1),
    INT(rt_bconv_params, kind, 0, 2), F64(rt_bconv_params, clamp_min), F64(rt_bconv_params, clamp_max),
    INT(rt_bconv_params, acc_clamp, 0, 1), INT(rt_bconv_params, acc_min, -2147483648, 2147483647),
    INT(rt_bconv_params, acc_max, -2147483648, 2147483647),
};
static const rt_operand_spec bmaxpool_operands[] = {
    {"x", (1u << 4), 0}, {"or_mask", (1u << 4), RT_OPERAND_OPTIONAL|RT_OPERAND_CONST},
};
static const rt_param_spec bmaxpool_params[] = {
    INT(rt_bmaxpool_params, channels, 1, 2147483648), INT(rt_bmaxpool_params, kernel_h, 1, 65536),
    INT(rt_bmaxpool_params, kernel_w, 1, 65536), GROUP(rt_bmaxpool_params, window, window_members),
};
static const rt_operand_spec fconv_operands[] = {
    {"x", (1u << 1), 0}, {"w", (1u << 1), RT_OPERAND_CONST}, {"bias", (1u << 1), RT_OPERAND_OPTIONAL},
};
static const rt_param_spec fconv_params[] = {
    GROUP(rt_fconv_params, window, window_members), INT(rt_fconv_params, groups, 1, 2147483648),
};
static const rt_operand_spec pool_operands[] = {
    {"x", (1u << 1), 0},
};
static const rt_param_spec pool_params[] = {
    INT(rt_pool_params, kind, 0, 2), INT(rt_pool_params, kernel_h, 1, 65536),
    INT(rt_pool_params, kernel_w, 1, 65536), GROUP(rt_pool_params, window, window_members),
};
static const rt_operand_spec arith_operands[] = {
    {"a", (1u << 1), 0}, {"b", (1u << 1), 0},
};
static const rt_param_spec arith_params[] = {
    INT(rt_arith_params, fn, 0, 11),
};
static const rt_operand_spec where_operands[] = {
    {"cond", (1u << 2), 0}, {"a", (1u << 1), 0}, {"b", (1u << 1), 0},
};
static const rt_operand_spec unary_operands[] = {
    {"x", (1u << 1), 0},
};
static const rt_param_spec unary_params[] = {
    INT(rt_unary_params, fn, 0, 10),
};
static const rt_operand_spec batchnorm_operands[] = {
    {"x", (1u << 1), 0}, {"mean", (1u << 1), 0}, {"denom", (1u << 1), 0}, {"scale", (1u << 1), 0},
    {"bias", (1u << 1), 0},
};
static const rt_param_spec batchnorm_params[] = {
    INT(rt_batchnorm_params, axis, 0, 5),
};
static const rt_operand_spec softmax_operands[] = {
    {"x", (1u << 1), 0},
};
static const rt_param_spec softmax_params[] = {
    INT(rt_softmax_params, begin, 0, 5), INT(rt_softmax_params, end, 1, 6),
};
static const rt_operand_spec mean_operands[] = {
    {"x", (1u << 1), 0},
};
static const rt_param_spec mean_params[] = {
    INT(rt_mean_params, begin, 0, 5), INT(rt_mean_params, end, 1, 6),
};
static const rt_operand_spec transpose_operands[] = {
    {"x", (1u << 1)|(1u << 2)|(1u << 3)|(1u << 4), 0},
};
static const rt_param_spec transpose_params[] = {
    INTS(rt_transpose_params, perm, 0, 5, 6),
};
static const rt_operand_spec concat_operands[] = {
    {"x", (1u << 1)|(1u << 2)|(1u << 3)|(1u << 4), RT_OPERAND_VARIADIC},
};
static const rt_param_spec concat_params[] = {
    INT(rt_concat_params, axis, 0, 5),
};

const rt_op_spec rt_op_specs[RT_OP_COUNT] = {
    [RT_OP_COPY] = {"copy", copy_operands, 1, NULL, 0, 0},
    [RT_OP_PACK] = {"pack", pack_operands, 1, pack_params, 2, 2},
    [RT_OP_BCONV] = {"bconv", bconv_operands, 7, bconv_params, 10, 17},
    [RT_OP_BMAXPOOL] = {"bmaxpool", bmaxpool_operands, 2, bmaxpool_params, 4, 11},
    [RT_OP_FCONV] = {"fconv", fconv_operands, 3, fconv_params, 2, 9},
    [RT_OP_POOL] = {"pool", pool_operands, 1, pool_params, 4, 11},
    [RT_OP_ARITH] = {"arith", arith_operands, 2, arith_params, 1, 1},
    [RT_OP_WHERE] = {"where", where_operands, 3, NULL, 0, 0},
    [RT_OP_UNARY] = {"unary", unary_operands, 1, unary_params, 1, 1},
    [RT_OP_BATCHNORM] = {"batchnorm", batchnorm_operands, 5, batchnorm_params, 1, 1},
    [RT_OP_SOFTMAX] = {"softmax", softmax_operands, 1, softmax_params, 2, 2},
    [RT_OP_MEAN] = {"mean", mean_operands, 1, mean_params, 2, 2},
    [RT_OP_TRANSPOSE] = {"transpose", transpose_operands, 1, transpose_params, 1, 6},
    [RT_OP_CONCAT] = {"concat", concat_operands, 1, concat_params, 1, 1},
};
