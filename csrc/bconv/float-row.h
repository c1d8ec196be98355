/* The float output transform of one row, as a template: output.c compiles it for the baseline ISA,
 * output-avx2.c with AVX2 enabled (8 floats a vector), and the kernel table picks one.
 * The includer defines FLOAT_ROW_NAME and FLOAT_ROW_TARGET.
 *
 * Each value: clamp the accumulator, convert, * scale, + bias, + residual, clamp -- each step rounded
 * as numpy's float32 ops round (-ffp-contract=off: no fused multiply-add), in the model's order.  The
 * common case (scale and bias present) is one branch-free loop the vectoriser takes whole; this runs
 * once per output value, which for small-K layers (3x3x64) costs as much as the dot products. */
#if defined(__GNUC__) && !defined(__clang__)
#define FLOAT_ROW_VECTORIZE __attribute__((optimize("tree-vectorize")))
#else
#define FLOAT_ROW_VECTORIZE
#endif

FLOAT_ROW_TARGET FLOAT_ROW_VECTORIZE
void FLOAT_ROW_NAME(const xnor_output_transform *t, const int32_t *restrict acc, size_t n,
                    const float *restrict residual, float *restrict dst) {
    const float *restrict scale = t->scale, *restrict bias = t->bias;
    int32_t amin = t->acc_clamp ? t->acc_min : INT32_MIN, amax = t->acc_clamp ? t->acc_max : INT32_MAX;
    float lo = t->clamp_min, hi = t->clamp_max; /* comparisons are false for NaN: NaN passes, as np.clip */
    if (scale && bias && residual) {
        for (size_t o = 0; o < n; o++) {
            int32_t a = acc[o] < amin ? amin : acc[o];
            a = a > amax ? amax : a;
            float v = (float)a * scale[o] + bias[o] + residual[o];
            v = v < lo ? lo : v;
            dst[o] = v > hi ? hi : v;
        }
        return;
    }
    if (scale && bias) {
        for (size_t o = 0; o < n; o++) {
            int32_t a = acc[o] < amin ? amin : acc[o];
            a = a > amax ? amax : a;
            float v = (float)a * scale[o] + bias[o];
            v = v < lo ? lo : v;
            dst[o] = v > hi ? hi : v;
        }
        return;
    }
    for (size_t o = 0; o < n; o++) { /* a missing scale or bias: one pass per step */
        int32_t a = acc[o] < amin ? amin : acc[o];
        dst[o] = (float)(a > amax ? amax : a);
    }
    if (scale)
        for (size_t o = 0; o < n; o++) dst[o] = dst[o] * scale[o];
    if (bias)
        for (size_t o = 0; o < n; o++) dst[o] = dst[o] + bias[o];
    if (residual)
        for (size_t o = 0; o < n; o++) dst[o] = dst[o] + residual[o];
    for (size_t o = 0; o < n; o++) {
        float v = dst[o];
        v = v < lo ? lo : v;
        dst[o] = v > hi ? hi : v;
    }
}
#undef FLOAT_ROW_VECTORIZE
