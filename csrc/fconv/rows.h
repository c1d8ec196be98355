/* Depthwise-conv and pooling rows as a template: fconv.c compiles it for the baseline ISA, fconv-avx2.c
 * with AVX2 (8 floats a vector), and the kernel table picks one.  The includer defines ROWS_TARGET,
 * DEPTHWISE_ROW and POOL_ROW.
 *
 * One output row (oy) of one image: x is the image (in_h, in_w, c), out the row (out_w, c).  Taps
 * outside the input are skipped (zero padding / ignored); the kernel-row range is the same for the
 * whole row, the column range is full for every pixel in [lo, hi) (see interior() in fconv.c). */
#if defined(__GNUC__) && !defined(__clang__)
#define ROWS_VECTORIZE __attribute__((optimize("tree-vectorize")))
#else
#define ROWS_VECTORIZE
#endif

ROWS_TARGET ROWS_VECTORIZE
void DEPTHWISE_ROW(const float *x, const xnor_conv_params *p, size_t oy, size_t out_w, size_t lo, size_t hi,
                   const float *w, const float *bias, float *out) {
    size_t c = p->out_c, ky0, ky1;
    xnor_fconv_rows(p, oy, &ky0, &ky1);
    for (size_t ox = 0; ox < out_w; ox++) {
        float *restrict acc = out + ox * c;
        size_t kx0 = 0, kx1 = p->kernel_w;
        if (ox < lo || ox >= hi) xnor_fconv_cols(p, ox, &kx0, &kx1);
        for (size_t o = 0; o < c; o++) acc[o] = bias ? bias[o] : 0.0f;
        for (size_t ky = ky0; ky < ky1; ky++) {
            const float *row = x + (oy * p->stride_h + ky * p->dilation_h - p->pad_top) * p->in_w * c;
            for (size_t kx = kx0; kx < kx1; kx++) {
                const float *restrict xt = row + (ox * p->stride_w + kx * p->dilation_w - p->pad_left) * c;
                const float *restrict wt = w + (ky * p->kernel_w + kx) * c;
                for (size_t o = 0; o < c; o++) acc[o] += xt[o] * wt[o];
            }
        }
    }
}

/* kind: 0 max, 1 average of the taps inside, 2 average over the whole window.  sum: c doubles. */
ROWS_TARGET ROWS_VECTORIZE
void POOL_ROW(const float *x, const xnor_conv_params *p, size_t oy, size_t out_w, size_t lo, size_t hi,
              int kind, double *restrict sum, float *out) {
    size_t c = p->in_c, ky0, ky1;
    xnor_fconv_rows(p, oy, &ky0, &ky1);
    for (size_t ox = 0; ox < out_w; ox++) {
        float *restrict dst = out + ox * c;
        size_t kx0 = 0, kx1 = p->kernel_w;
        if (ox < lo || ox >= hi) xnor_fconv_cols(p, ox, &kx0, &kx1);
        if (kind == 0) {
            for (size_t o = 0; o < c; o++) dst[o] = -INFINITY; /* a window of padding only: -inf, as in float */
        } else {
            for (size_t o = 0; o < c; o++) sum[o] = 0.0;
        }
        for (size_t ky = ky0; ky < ky1; ky++) {
            const float *row = x + (oy * p->stride_h + ky * p->dilation_h - p->pad_top) * p->in_w * c;
            for (size_t kx = kx0; kx < kx1; kx++) {
                const float *restrict xt = row + (ox * p->stride_w + kx * p->dilation_w - p->pad_left) * c;
                if (kind == 0) {
                    for (size_t o = 0; o < c; o++) dst[o] = (xt[o] > dst[o]) | (xt[o] != xt[o]) ? xt[o] : dst[o]; /* NaN sticks */
                } else {
                    for (size_t o = 0; o < c; o++) sum[o] += (double)xt[o];
                }
            }
        }
        if (kind != 0) {
            double count = kind == 2 ? (double)(p->kernel_h * p->kernel_w) : (double)((ky1 - ky0) * (kx1 - kx0));
            for (size_t o = 0; o < c; o++) dst[o] = (float)(sum[o] / count);
        }
    }
}
#undef ROWS_VECTORIZE
