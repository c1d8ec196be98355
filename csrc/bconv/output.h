/* The output-transform family (output.c, output-avx2.c): what the binary layers apply to each row of
 * accumulators right after the micro-kernel, while the row is in L1. */
#ifndef XNOR_BCONV_OUTPUT_H
#define XNOR_BCONV_OUTPUT_H

#include "../common.h"

/* Packed output of a row of n accumulators: bit o = (acc[o] < thresholds[o]) XOR bit o of flip_bits,
 * 64 per word, tail bits 0. */
typedef void (*xnor_threshold_pack_fn)(const int32_t *acc, const int32_t *thresholds,
                                       const uint64_t *flip_bits, size_t n, uint64_t *out);
void xnor_threshold_pack_ref(const int32_t *acc, const int32_t *thresholds, const uint64_t *flip_bits,
                             size_t n, uint64_t *out);

/* Float output transform of a row (float-row.inc): see xnor_output_row. */
typedef void (*xnor_float_row_fn)(const xnor_output_transform *t, const int32_t *acc, size_t n,
                                  const float *residual, float *dst);
void xnor_float_row_ref(const xnor_output_transform *t, const int32_t *acc, size_t n, const float *residual,
                        float *dst);
#ifdef XNOR_X86
void xnor_float_row_avx2(const xnor_output_transform *t, const int32_t *acc, size_t n, const float *residual,
                         float *dst);
#endif

/* Fused output transform of one row of n accumulators (see xnor_output_transform); flip_bits is the
 * transform's flip array as bits (NULL if none), used for packed output; residual (float output only,
 * or NULL) is the row of n values added before the clamp. */
void xnor_output_row(const xnor_output_transform *t, const uint64_t *flip_bits, const int32_t *acc,
                     size_t n, const float *residual, void *out);
size_t xnor_output_row_bytes(const xnor_output_transform *t, size_t n);
xnor_status xnor_check_transform(const xnor_output_transform *t);

#endif
