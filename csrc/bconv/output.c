/* The fused output transform of the binary layers, applied to a row of int32 accumulators (one output
 * pixel or one dense output row) right after the micro-kernel produced it, while it is in L1.
 * Float arithmetic here must round like numpy's float32 (multiply, round, add, round): the build uses
 * -ffp-contract=off so no fused multiply-add changes a result. */
#include <math.h>
#include <string.h>
#include "output.h"
#include "../dispatch.h"

void xnor_threshold_pack_ref(const int32_t *acc, const int32_t *thresholds, const uint64_t *flip_bits,
                             size_t n, uint64_t *out) {
    for (size_t w = 0; w * 64 < n; w++) {
        size_t base = w * 64, cnt = n - base < 64 ? n - base : 64;
        uint64_t bits = 0;
        for (size_t i = 0; i < cnt; i++) bits |= (uint64_t)(acc[base + i] < thresholds[base + i]) << i;
        out[w] = flip_bits ? bits ^ flip_bits[w] : bits;
    }
}

#define FLOAT_ROW_NAME xnor_float_row_ref
#define FLOAT_ROW_TARGET
#include "float-row.inc"

void xnor_output_row(const xnor_output_transform *t, const uint64_t *flip_bits, const int32_t *acc,
                     size_t n, const float *residual, void *out) {
    switch (t->kind) {
    case XNOR_OUT_INT32:
        memcpy(out, acc, n * sizeof(int32_t));
        break;
    case XNOR_OUT_FLOAT32:
        (xnor_active()->float_row ? xnor_active()->float_row : xnor_float_row_ref)(t, acc, n, residual, out);
        break;
    case XNOR_OUT_PACKED:
        xnor_active()->threshold_pack(acc, t->thresholds, flip_bits, n, out);
        break;
    }
}

size_t xnor_output_row_bytes(const xnor_output_transform *t, size_t n) {
    return t->kind == XNOR_OUT_PACKED ? XNOR_WORDS(n) * sizeof(uint64_t) : n * 4;
}

xnor_status xnor_check_transform(const xnor_output_transform *t) {
    if (!t) return xnor_fail(XNOR_EINVAL, "output transform is NULL");
    if (t->kind == XNOR_OUT_PACKED && !t->thresholds)
        return xnor_fail(XNOR_EINVAL, "packed output needs thresholds");
    if (t->kind != XNOR_OUT_INT32 && t->kind != XNOR_OUT_FLOAT32 && t->kind != XNOR_OUT_PACKED)
        return xnor_fail(XNOR_EINVAL, "unknown output kind %d", (int)t->kind);
    return XNOR_OK;
}
