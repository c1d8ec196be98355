/* AVX2 + FMA block kernel of the float direct convolution (see fconv.c): up to 6 output pixels x 16
 * output channels in 12 ymm accumulators (the 6x16 tile of Haswell-class SGEMM kernels: 12 independent
 * FMA chains cover the FMA latency at two per cycle); per input channel of a tap, 2 weight loads and
 * 6 broadcasts feed 12 FMAs.  Channel tails use masked loads and stores.  Used by the avx2 and avx512 paths (every
 * CPU with AVX-512 has FMA; dispatch.c requires FMA for the avx2 path). */
#include "fconv.h"
#include "winograd.h"
#ifdef XNOR_X86
#include <immintrin.h>

#define TARGET __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

#define UNROLL _Pragma("GCC unroll 6")

/* 16 output channels [ob, ob+16) of npix pixels; `full`: all 16 exist (else masked loads and stores).
 * Both are compile-time constants after inlining, so the pixel loops unroll and the accumulators
 * stay in registers. */
TARGET INLINE void channel_block(const size_t npix, const int full, __m256i m0, __m256i m1, const float *x,
                                 size_t pixel_stride, size_t tap_h_stride, size_t tap_w_stride, size_t ky0,
                                 size_t ky1, size_t kx0, size_t kx1, size_t kernel_w, size_t in_c,
                                 const float *w, size_t w_stride, const float *bias, float *out,
                                 size_t out_stride, size_t ob) {
    __m256 b0 = _mm256_setzero_ps(), b1 = b0;
    if (bias) {
        b0 = full ? _mm256_loadu_ps(bias + ob) : _mm256_maskload_ps(bias + ob, m0);
        b1 = full ? _mm256_loadu_ps(bias + ob + 8) : _mm256_maskload_ps(bias + ob + 8, m1);
    }
    __m256 acc0[6], acc1[6];
    UNROLL for (size_t q = 0; q < npix; q++) acc0[q] = b0, acc1[q] = b1;
    /* Without dilation along x the taps of a kernel row are adjacent pixels: their channels are one run
     * of (kx1-kx0)*in_c floats in x and one run of weight rows, so one loop per kernel row instead of one
     * per tap (an 11x11x3 stem: 18% faster, measured A/B in one process). */
    const int row_runs = tap_w_stride == in_c;
    const size_t run = row_runs ? (kx1 - kx0) * in_c : in_c, runs = row_runs ? 1 : kx1 - kx0;
    for (size_t ky = ky0; ky < ky1; ky++)
        for (size_t r = 0; r < runs; r++) {
            const float *xt = x + (ky - ky0) * tap_h_stride + r * tap_w_stride;
            const float *wr = w + (ky * kernel_w + kx0 + r) * in_c * w_stride + ob;
            for (size_t ci = 0; ci < run; ci++, wr += w_stride) {
                __m256 w0 = full ? _mm256_loadu_ps(wr) : _mm256_maskload_ps(wr, m0);
                __m256 w1 = full ? _mm256_loadu_ps(wr + 8) : _mm256_maskload_ps(wr + 8, m1);
                UNROLL for (size_t q = 0; q < npix; q++) {
                    __m256 xv = _mm256_broadcast_ss(xt + q * pixel_stride + ci);
                    acc0[q] = _mm256_fmadd_ps(xv, w0, acc0[q]);
                    acc1[q] = _mm256_fmadd_ps(xv, w1, acc1[q]);
                }
            }
        }
    UNROLL for (size_t q = 0; q < npix; q++) {
        float *dst = out + q * out_stride + ob;
        if (full) {
            _mm256_storeu_ps(dst, acc0[q]);
            _mm256_storeu_ps(dst + 8, acc1[q]);
        } else {
            _mm256_maskstore_ps(dst, m0, acc0[q]);
            _mm256_maskstore_ps(dst + 8, m1, acc1[q]);
        }
    }
}

TARGET INLINE void block(const size_t npix, const float *x, size_t pixel_stride, size_t tap_h_stride,
                         size_t tap_w_stride, size_t ky0, size_t ky1, size_t kx0, size_t kx1, size_t kernel_w,
                         size_t in_c, const float *w, size_t w_stride, size_t out_c, const float *bias,
                         float *out, size_t out_stride) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i all = _mm256_set1_epi32(-1);
#define REST x, pixel_stride, tap_h_stride, tap_w_stride, ky0, ky1, kx0, kx1, kernel_w, in_c, w, w_stride, bias, out, out_stride
    size_t ob = 0;
    for (; ob + 16 <= out_c; ob += 16) channel_block(npix, 1, all, all, REST, ob);
    if (ob < out_c) {
        size_t left = out_c - ob;
        __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(left < 8 ? left : 8)), lane);
        __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(left < 8 ? 0 : left - 8)), lane);
        channel_block(npix, 0, m0, m1, REST, ob);
    }
#undef REST
}

TARGET
void xnor_fconv_block_avx2(const float *x, size_t pixel_stride, size_t npix, size_t tap_h_stride,
                           size_t tap_w_stride, size_t ky0, size_t ky1, size_t kx0, size_t kx1,
                           size_t kernel_w, size_t in_c, const float *w, size_t w_stride, size_t out_c,
                           const float *bias, float *out, size_t out_stride) {
#define ARGS x, pixel_stride, tap_h_stride, tap_w_stride, ky0, ky1, kx0, kx1, kernel_w, in_c, w, w_stride, out_c, bias, out, out_stride
    switch (npix) {
    case 6: block(6, ARGS); break;
    case 5: block(5, ARGS); break;
    case 4: block(4, ARGS); break;
    case 3: block(3, ARGS); break;
    case 2: block(2, ARGS); break;
    default: block(1, ARGS); break;
    }
#undef ARGS
}
#undef INLINE
#define ROWS_TARGET __attribute__((target("avx2")))
#define DEPTHWISE_ROW xnor_depthwise_row_avx2
#define POOL_ROW xnor_pool_row_avx2
#include <math.h>
#include "rows.inc"

/* Winograd F(4x4, 3x3) transforms (see winograd.c): the expressions of winograd-transforms.inc, 8 channels
 * a vector, so the same bits as the portable loops. */
#include "winograd-transforms.inc"
#define WG_TARGET __attribute__((target("avx2")))
#define V_ADD(a, b) _mm256_add_ps(a, b)
#define V_SUB(a, b) _mm256_sub_ps(a, b)
#define V_MULC(a, c) _mm256_mul_ps(a, _mm256_set1_ps(c))
#define WG_LOAD(p, mask, full) ((full) ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask))
#define WG_STORE(p, v, mask, full) ((full) ? _mm256_storeu_ps(p, v) : _mm256_maskstore_ps(p, mask, v))

WG_TARGET static inline __m256i wg_mask(size_t left) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(left < 8 ? left : 8)), lane);
}

/* Column j of a 6x6 tile: its six rows, `stride` floats apart (what both transforms start from). */
WG_TARGET static inline void wg_load_column(const float *col, size_t stride, __m256i mask, int full, __m256 v[6]) {
    v[0] = WG_LOAD(col, mask, full), v[1] = WG_LOAD(col + stride, mask, full);
    v[2] = WG_LOAD(col + 2 * stride, mask, full), v[3] = WG_LOAD(col + 3 * stride, mask, full);
    v[4] = WG_LOAD(col + 4 * stride, mask, full), v[5] = WG_LOAD(col + 5 * stride, mask, full);
}

WG_TARGET void xnor_winograd_input_avx2(const float *strip, size_t row_stride, size_t n, size_t cp, float *v,
                                         size_t v_stride) {
    for (size_t k = 0; k < n; k++) {
        const float *base = strip + 4 * k * cp;
        float *out = v + k * cp;
        for (size_t c = 0; c < cp; c += 8) {
            const int full = cp - c >= 8;
            const __m256i mask = wg_mask(cp - c);
            __m256 t[6][6];
            for (size_t j = 0; j < 6; j++) {
                __m256 d[6];
                wg_load_column(base + j * cp + c, row_stride, mask, full, d);
                XNOR_WG_IN_G(__m256, V_ADD, V_SUB, V_MULC, d[0], d[1], d[2], d[3], d[4], d[5], t[0][j], t[1][j], t[2][j],
                             t[3][j], t[4][j], t[5][j]);
            }
            for (size_t i = 0; i < 6; i++) {
                __m256 y[6];
                XNOR_WG_IN_G(__m256, V_ADD, V_SUB, V_MULC, t[i][0], t[i][1], t[i][2], t[i][3], t[i][4], t[i][5], y[0],
                             y[1], y[2], y[3], y[4], y[5]);
                for (size_t j = 0; j < 6; j++) WG_STORE(out + (6 * i + j) * v_stride + c, y[j], mask, full);
            }
        }
    }
}

WG_TARGET void xnor_winograd_output_avx2(const float *m, size_t m_stride, size_t ldm, size_t n, size_t nch,
                                          const float *bias, float *const out[4], size_t ld, size_t cols) {
    for (size_t k = 0; k < n; k++) {
        const float *mk = m + k * ldm;
        size_t ncols = cols - 4 * k < 4 ? cols - 4 * k : 4;
        for (size_t o = 0; o < nch; o += 8) {
            const int full = nch - o >= 8;
            const __m256i mask = wg_mask(nch - o);
            __m256 s[4][6];
            for (size_t j = 0; j < 6; j++) {
                __m256 q[6];
                wg_load_column(mk + j * m_stride + o, 6 * m_stride, mask, full, q);
                XNOR_WG_OUT_G(__m256, V_ADD, V_SUB, V_MULC, q[0], q[1], q[2], q[3], q[4], q[5], s[0][j], s[1][j], s[2][j],
                              s[3][j]);
            }
            __m256 b = bias ? WG_LOAD(bias + o, mask, full) : _mm256_setzero_ps();
            for (size_t a = 0; a < 4; a++) {
                __m256 y[4];
                XNOR_WG_OUT_G(__m256, V_ADD, V_SUB, V_MULC, s[a][0], s[a][1], s[a][2], s[a][3], s[a][4], s[a][5], y[0],
                              y[1], y[2], y[3]);
                if (!out[a]) continue;
                for (size_t c = 0; c < ncols; c++) WG_STORE(out[a] + (4 * k + c) * ld + o, _mm256_add_ps(b, y[c]), mask, full);
            }
        }
    }
}
#endif /* XNOR_X86 */
