/* The float conv family (fconv.c, fconv-avx2.c): the direct-conv block kernel, the depthwise and pooling
 * rows, and the runtime's workspace entry points. */
#ifndef XNOR_FCONV_H
#define XNOR_FCONV_H

#include "../common.h"

/* Float direct-conv block (fconv/fconv.c): npix output pixels, pixel q's tap (ky0, kx0) at
 * x + q*pixel_stride, tap (ky, kx) a further (ky-ky0)*tap_h_stride + (kx-kx0)*tap_w_stride floats on;
 * for o < out_c: out[q*out_stride + o] = bias[o] + sum over taps in [ky0,ky1)x[kx0,kx1) and ci of
 * x * w[((ky*kernel_w + kx)*in_c + ci)*w_stride + o] (w: HWIO rows of w_stride >= out_c floats, so a
 * caller can compute a slice of the output channels).  npix <= 6. */
typedef void (*xnor_fconv_block_fn)(const float *x, size_t pixel_stride, size_t npix, size_t tap_h_stride,
                                    size_t tap_w_stride, size_t ky0, size_t ky1, size_t kx0, size_t kx1,
                                    size_t kernel_w, size_t in_c, const float *w, size_t w_stride, size_t out_c,
                                    const float *bias, float *out, size_t out_stride);
void xnor_fconv_block_ref(const float *x, size_t pixel_stride, size_t npix, size_t tap_h_stride,
                          size_t tap_w_stride, size_t ky0, size_t ky1, size_t kx0, size_t kx1,
                          size_t kernel_w, size_t in_c, const float *w, size_t w_stride, size_t out_c, const float *bias,
                          float *out, size_t out_stride);
#ifdef XNOR_X86
void xnor_fconv_block_avx2(const float *x, size_t pixel_stride, size_t npix, size_t tap_h_stride,
                           size_t tap_w_stride, size_t ky0, size_t ky1, size_t kx0, size_t kx1,
                           size_t kernel_w, size_t in_c, const float *w, size_t w_stride, size_t out_c, const float *bias,
                           float *out, size_t out_stride);
#endif

/* Depthwise-conv and pooling output rows (fconv/rows.inc). */
typedef void (*xnor_depthwise_row_fn)(const float *x, const xnor_conv_params *p, size_t oy, size_t out_w,
                                      size_t lo, size_t hi, const float *w, const float *bias, float *out);
typedef void (*xnor_pool_row_fn)(const float *x, const xnor_conv_params *p, size_t oy, size_t out_w, size_t lo,
                                 size_t hi, int kind, double *sum, float *out);
void xnor_fconv_rows(const xnor_conv_params *p, size_t oy, size_t *ky0, size_t *ky1);
void xnor_fconv_cols(const xnor_conv_params *p, size_t ox, size_t *kx0, size_t *kx1);
void xnor_depthwise_row_ref(const float *x, const xnor_conv_params *p, size_t oy, size_t out_w, size_t lo,
                            size_t hi, const float *w, const float *bias, float *out);
void xnor_pool_row_ref(const float *x, const xnor_conv_params *p, size_t oy, size_t out_w, size_t lo, size_t hi,
                       int kind, double *sum, float *out);
#ifdef XNOR_X86
void xnor_depthwise_row_avx2(const float *x, const xnor_conv_params *p, size_t oy, size_t out_w, size_t lo,
                             size_t hi, const float *w, const float *bias, float *out);
void xnor_pool_row_avx2(const float *x, const xnor_conv_params *p, size_t oy, size_t out_w, size_t lo, size_t hi,
                        int kind, double *sum, float *out);
#endif

/* xnor_conv2d_f32_run_prepared with caller scratch (the runtime's arena; prepared non-NULL: its header
 * is checked, then Winograd runs in workspace of xnor_winograd_workspace_bytes(p, threads)). */
xnor_status xnor_fconv_run_prepared_ws(const float *x, const float *w, const float *prepared, const float *bias,
                                       const xnor_conv_params *p, float *out, int num_threads, void *workspace,
                                       size_t workspace_bytes);
/* Float pooling with caller-provided scratch of xnor_pool_workspace_size(p, num_threads) bytes (the
 * average pools' per-thread sums). */
size_t xnor_pool_workspace_size(const xnor_conv_params *p, int num_threads);
xnor_status xnor_pool2d_f32_ws(const float *x, const xnor_conv_params *p, xnor_pool_kind kind, float *out,
                               int num_threads, void *workspace, size_t workspace_bytes);

#endif
