/* Generated from xnorinfer/runtime/schema.py by `python -m xnorinfer.runtime.schema --write`: do not edit. */

#include "schema.h"

static const rt_operand_spec copy_operands[] = {
    {"x", (1u << 1)|(1u << 2)|(1u << 3)|(1u << 4), 0},
};
static const rt_operand_spec pack_operands[] = {
    {"x", (1u << 1), 0},
};
static const rt_param_spec pack_params[] = {
    {"minus_mask", RT_P_INT, offsetof(rt_pack_params, minus_mask), INT64_C(0), INT64_C(7), 1},
    {"ternary", RT_P_INT, offsetof(rt_pack_params, ternary), INT64_C(0), INT64_C(1), 1},
};
static const rt_operand_spec bconv_operands[] = {
    {"x", (1u << 4), 0},
    {"w", (1u << 4), RT_OPERAND_CONST},
    {"scale", (1u << 1), RT_OPERAND_OPTIONAL},
    {"bias", (1u << 1), RT_OPERAND_OPTIONAL},
    {"thresholds", (1u << 3), RT_OPERAND_OPTIONAL},
    {"flip", (1u << 2), RT_OPERAND_OPTIONAL},
    {"residual", (1u << 1), RT_OPERAND_OPTIONAL},
};
static const rt_param_spec bconv_params[] = {
    {"in_c", RT_P_INT, offsetof(rt_bconv_params, in_c), INT64_C(1), INT64_C(2147483648), 1},
    {"stride_h", RT_P_INT, offsetof(rt_bconv_params, stride_h), INT64_C(1), INT64_C(2147483648), 1},
    {"stride_w", RT_P_INT, offsetof(rt_bconv_params, stride_w), INT64_C(1), INT64_C(2147483648), 1},
    {"dilation_h", RT_P_INT, offsetof(rt_bconv_params, dilation_h), INT64_C(1), INT64_C(2147483648), 1},
    {"dilation_w", RT_P_INT, offsetof(rt_bconv_params, dilation_w), INT64_C(1), INT64_C(2147483648), 1},
    {"pad_top", RT_P_INT, offsetof(rt_bconv_params, pad_top), INT64_C(0), INT64_C(2147483648), 1},
    {"pad_bottom", RT_P_INT, offsetof(rt_bconv_params, pad_bottom), INT64_C(0), INT64_C(2147483648), 1},
    {"pad_left", RT_P_INT, offsetof(rt_bconv_params, pad_left), INT64_C(0), INT64_C(2147483648), 1},
    {"pad_right", RT_P_INT, offsetof(rt_bconv_params, pad_right), INT64_C(0), INT64_C(2147483648), 1},
    {"groups", RT_P_INT, offsetof(rt_bconv_params, groups), INT64_C(1), INT64_C(2147483648), 1},
    {"pad_value", RT_P_INT, offsetof(rt_bconv_params, pad_value), INT64_C(0), INT64_C(1), 1},
    {"kind", RT_P_INT, offsetof(rt_bconv_params, kind), INT64_C(0), INT64_C(2), 1},
    {"clamp_min", RT_P_F64, offsetof(rt_bconv_params, clamp_min), 0, 0, 1},
    {"clamp_max", RT_P_F64, offsetof(rt_bconv_params, clamp_max), 0, 0, 1},
    {"acc_clamp", RT_P_INT, offsetof(rt_bconv_params, acc_clamp), INT64_C(0), INT64_C(1), 1},
    {"acc_min", RT_P_INT, offsetof(rt_bconv_params, acc_min), INT64_C(-2147483648), INT64_C(2147483647), 1},
    {"acc_max", RT_P_INT, offsetof(rt_bconv_params, acc_max), INT64_C(-2147483648), INT64_C(2147483647), 1},
};
static const rt_operand_spec bmaxpool_operands[] = {
    {"x", (1u << 4), 0},
    {"or_mask", (1u << 4), RT_OPERAND_OPTIONAL|RT_OPERAND_CONST},
};
static const rt_param_spec bmaxpool_params[] = {
    {"channels", RT_P_INT, offsetof(rt_bmaxpool_params, channels), INT64_C(1), INT64_C(2147483648), 1},
    {"kernel_h", RT_P_INT, offsetof(rt_bmaxpool_params, kernel_h), INT64_C(1), INT64_C(65536), 1},
    {"kernel_w", RT_P_INT, offsetof(rt_bmaxpool_params, kernel_w), INT64_C(1), INT64_C(65536), 1},
    {"stride_h", RT_P_INT, offsetof(rt_bmaxpool_params, stride_h), INT64_C(1), INT64_C(2147483648), 1},
    {"stride_w", RT_P_INT, offsetof(rt_bmaxpool_params, stride_w), INT64_C(1), INT64_C(2147483648), 1},
    {"dilation_h", RT_P_INT, offsetof(rt_bmaxpool_params, dilation_h), INT64_C(1), INT64_C(2147483648), 1},
    {"dilation_w", RT_P_INT, offsetof(rt_bmaxpool_params, dilation_w), INT64_C(1), INT64_C(2147483648), 1},
    {"pad_top", RT_P_INT, offsetof(rt_bmaxpool_params, pad_top), INT64_C(0), INT64_C(2147483648), 1},
    {"pad_bottom", RT_P_INT, offsetof(rt_bmaxpool_params, pad_bottom), INT64_C(0), INT64_C(2147483648), 1},
    {"pad_left", RT_P_INT, offsetof(rt_bmaxpool_params, pad_left), INT64_C(0), INT64_C(2147483648), 1},
    {"pad_right", RT_P_INT, offsetof(rt_bmaxpool_params, pad_right), INT64_C(0), INT64_C(2147483648), 1},
};
static const rt_operand_spec fconv_operands[] = {
    {"x", (1u << 1), 0},
    {"w", (1u << 1), RT_OPERAND_CONST},
    {"bias", (1u << 1), RT_OPERAND_OPTIONAL},
};
static const rt_param_spec fconv_params[] = {
    {"stride_h", RT_P_INT, offsetof(rt_fconv_params, stride_h), INT64_C(1), INT64_C(2147483648), 1},
    {"stride_w", RT_P_INT, offsetof(rt_fconv_params, stride_w), INT64_C(1), INT64_C(2147483648), 1},
    {"dilation_h", RT_P_INT, offsetof(rt_fconv_params, dilation_h), INT64_C(1), INT64_C(2147483648), 1},
    {"dilation_w", RT_P_INT, offsetof(rt_fconv_params, dilation_w), INT64_C(1), INT64_C(2147483648), 1},
    {"pad_top", RT_P_INT, offsetof(rt_fconv_params, pad_top), INT64_C(0), INT64_C(2147483648), 1},
    {"pad_bottom", RT_P_INT, offsetof(rt_fconv_params, pad_bottom), INT64_C(0), INT64_C(2147483648), 1},
    {"pad_left", RT_P_INT, offsetof(rt_fconv_params, pad_left), INT64_C(0), INT64_C(2147483648), 1},
    {"pad_right", RT_P_INT, offsetof(rt_fconv_params, pad_right), INT64_C(0), INT64_C(2147483648), 1},
    {"groups", RT_P_INT, offsetof(rt_fconv_params, groups), INT64_C(1), INT64_C(2147483648), 1},
};
static const rt_operand_spec pool_operands[] = {
    {"x", (1u << 1), 0},
};
static const rt_param_spec pool_params[] = {
    {"kind", RT_P_INT, offsetof(rt_pool_params, kind), INT64_C(0), INT64_C(2), 1},
    {"kernel_h", RT_P_INT, offsetof(rt_pool_params, kernel_h), INT64_C(1), INT64_C(65536), 1},
    {"kernel_w", RT_P_INT, offsetof(rt_pool_params, kernel_w), INT64_C(1), INT64_C(65536), 1},
    {"stride_h", RT_P_INT, offsetof(rt_pool_params, stride_h), INT64_C(1), INT64_C(2147483648), 1},
    {"stride_w", RT_P_INT, offsetof(rt_pool_params, stride_w), INT64_C(1), INT64_C(2147483648), 1},
    {"dilation_h", RT_P_INT, offsetof(rt_pool_params, dilation_h), INT64_C(1), INT64_C(2147483648), 1},
    {"dilation_w", RT_P_INT, offsetof(rt_pool_params, dilation_w), INT64_C(1), INT64_C(2147483648), 1},
    {"pad_top", RT_P_INT, offsetof(rt_pool_params, pad_top), INT64_C(0), INT64_C(2147483648), 1},
    {"pad_bottom", RT_P_INT, offsetof(rt_pool_params, pad_bottom), INT64_C(0), INT64_C(2147483648), 1},
    {"pad_left", RT_P_INT, offsetof(rt_pool_params, pad_left), INT64_C(0), INT64_C(2147483648), 1},
    {"pad_right", RT_P_INT, offsetof(rt_pool_params, pad_right), INT64_C(0), INT64_C(2147483648), 1},
};
static const rt_operand_spec arith_operands[] = {
    {"a", (1u << 1), 0},
    {"b", (1u << 1), 0},
};
static const rt_param_spec arith_params[] = {
    {"fn", RT_P_INT, offsetof(rt_arith_params, fn), INT64_C(0), INT64_C(11), 1},
};
static const rt_operand_spec where_operands[] = {
    {"cond", (1u << 2), 0},
    {"a", (1u << 1), 0},
    {"b", (1u << 1), 0},
};
static const rt_operand_spec unary_operands[] = {
    {"x", (1u << 1), 0},
};
static const rt_param_spec unary_params[] = {
    {"fn", RT_P_INT, offsetof(rt_unary_params, fn), INT64_C(0), INT64_C(9), 1},
};
static const rt_operand_spec batchnorm_operands[] = {
    {"x", (1u << 1), 0},
    {"mean", (1u << 1), 0},
    {"denom", (1u << 1), 0},
    {"scale", (1u << 1), 0},
    {"bias", (1u << 1), 0},
};
static const rt_param_spec batchnorm_params[] = {
    {"axis", RT_P_INT, offsetof(rt_batchnorm_params, axis), INT64_C(0), INT64_C(5), 1},
};
static const rt_operand_spec softmax_operands[] = {
    {"x", (1u << 1), 0},
};
static const rt_param_spec softmax_params[] = {
    {"begin", RT_P_INT, offsetof(rt_softmax_params, begin), INT64_C(0), INT64_C(5), 1},
    {"end", RT_P_INT, offsetof(rt_softmax_params, end), INT64_C(1), INT64_C(6), 1},
};
static const rt_operand_spec mean_operands[] = {
    {"x", (1u << 1), 0},
};
static const rt_param_spec mean_params[] = {
    {"begin", RT_P_INT, offsetof(rt_mean_params, begin), INT64_C(0), INT64_C(5), 1},
    {"end", RT_P_INT, offsetof(rt_mean_params, end), INT64_C(1), INT64_C(6), 1},
};
static const rt_operand_spec transpose_operands[] = {
    {"x", (1u << 1)|(1u << 2)|(1u << 3)|(1u << 4), 0},
};
static const rt_param_spec transpose_params[] = {
    {"perm", RT_P_INTS, offsetof(rt_transpose_params, perm), INT64_C(0), INT64_C(5), 6},
};
static const rt_operand_spec concat_operands[] = {
    {"x", (1u << 1)|(1u << 2)|(1u << 3)|(1u << 4), RT_OPERAND_VARIADIC},
};
static const rt_param_spec concat_params[] = {
    {"axis", RT_P_INT, offsetof(rt_concat_params, axis), INT64_C(0), INT64_C(5), 1},
};

const rt_op_spec rt_op_specs[RT_OP_COUNT] = {
    [RT_OP_COPY] = {"copy", copy_operands, 1, NULL, 0, 0},
    [RT_OP_PACK] = {"pack", pack_operands, 1, pack_params, 2, 2},
    [RT_OP_BCONV] = {"bconv", bconv_operands, 7, bconv_params, 17, 17},
    [RT_OP_BMAXPOOL] = {"bmaxpool", bmaxpool_operands, 2, bmaxpool_params, 11, 11},
    [RT_OP_FCONV] = {"fconv", fconv_operands, 3, fconv_params, 9, 9},
    [RT_OP_POOL] = {"pool", pool_operands, 1, pool_params, 11, 11},
    [RT_OP_ARITH] = {"arith", arith_operands, 2, arith_params, 1, 1},
    [RT_OP_WHERE] = {"where", where_operands, 3, NULL, 0, 0},
    [RT_OP_UNARY] = {"unary", unary_operands, 1, unary_params, 1, 1},
    [RT_OP_BATCHNORM] = {"batchnorm", batchnorm_operands, 5, batchnorm_params, 1, 1},
    [RT_OP_SOFTMAX] = {"softmax", softmax_operands, 1, softmax_params, 2, 2},
    [RT_OP_MEAN] = {"mean", mean_operands, 1, mean_params, 2, 2},
    [RT_OP_TRANSPOSE] = {"transpose", transpose_operands, 1, transpose_params, 1, 6},
    [RT_OP_CONCAT] = {"concat", concat_operands, 1, concat_params, 1, 1},
};
