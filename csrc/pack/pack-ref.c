/* Reference packing: x < 0 -> bit 1 (-1), everything else (0, -0.0, NaN) -> bit 0 (+1). */
#include <string.h>
#include "pack.h"

/* x < 0 for an IEEE half given as its bits: sign set, not +-0, not NaN. */
static inline int half_is_negative(uint16_t h) {
    uint16_t mag = h & 0x7fff;
    return (h & 0x8000) && mag != 0 && mag <= 0x7c00;
}

#define DEFINE_PACK_REF(NAME, T, IS_NEG)                                                   \
    void NAME(const T *x, size_t rows, size_t k, uint64_t *out) {                          \
        size_t words = XNOR_WORDS(k);                                                      \
        for (size_t r = 0; r < rows; r++) {                                                \
            const T *row = x + r * k;                                                      \
            uint64_t *dst = out + r * words;                                               \
            for (size_t w = 0; w < words; w++) {                                           \
                size_t base = w * 64, n = k - base < 64 ? k - base : 64;                   \
                uint64_t bits = 0;                                                         \
                for (size_t i = 0; i < n; i++) bits |= (uint64_t)(IS_NEG(row[base + i])) << i; \
                dst[w] = bits;                                                             \
            }                                                                              \
        }                                                                                  \
    }

#define LESS_THAN_ZERO(v) ((v) < 0)
DEFINE_PACK_REF(xnor_pack_f32_ref, float, LESS_THAN_ZERO)
DEFINE_PACK_REF(xnor_pack_f64_ref, double, LESS_THAN_ZERO)
DEFINE_PACK_REF(xnor_pack_f16_ref, uint16_t, half_is_negative)
DEFINE_PACK_REF(xnor_pack_i8_ref, int8_t, LESS_THAN_ZERO)
DEFINE_PACK_REF(xnor_pack_i16_ref, int16_t, LESS_THAN_ZERO)
DEFINE_PACK_REF(xnor_pack_i32_ref, int32_t, LESS_THAN_ZERO)
DEFINE_PACK_REF(xnor_pack_i64_ref, int64_t, LESS_THAN_ZERO)
