/* The packing family: the float32 packer each ISA supplies (pack.c runs the active one for xnor_pack). */
#ifndef XNOR_PACK_H
#define XNOR_PACK_H

#include "../common.h"

/* Pack `rows` contiguous rows of k float32 into rows * ceil(k/64) words (tail bits 0). */
typedef void (*xnor_pack_f32_fn)(const float *x, size_t rows, size_t k, uint64_t *out);

#endif
