/* The packing family: the float32 packer each ISA supplies, and the reference packers of every dtype
 * (pack-ref.c): xnor_pack's for the dtypes no ISA specialises, and the ref path's float32 one. */
#ifndef XNOR_PACK_H
#define XNOR_PACK_H

#include "../common.h"

/* Pack `rows` contiguous rows of k float32 into rows * ceil(k/64) words (tail bits 0). */
typedef void (*xnor_pack_f32_fn)(const float *x, size_t rows, size_t k, uint64_t *out);

/* The same contract for each element type (f16 given as its IEEE bits). */
void xnor_pack_f32_ref(const float *x, size_t rows, size_t k, uint64_t *out);
void xnor_pack_f64_ref(const double *x, size_t rows, size_t k, uint64_t *out);
void xnor_pack_f16_ref(const uint16_t *x, size_t rows, size_t k, uint64_t *out);
void xnor_pack_i8_ref(const int8_t *x, size_t rows, size_t k, uint64_t *out);
void xnor_pack_i16_ref(const int16_t *x, size_t rows, size_t k, uint64_t *out);
void xnor_pack_i32_ref(const int32_t *x, size_t rows, size_t k, uint64_t *out);
void xnor_pack_i64_ref(const int64_t *x, size_t rows, size_t k, uint64_t *out);

#endif
