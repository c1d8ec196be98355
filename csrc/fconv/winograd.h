/* The Winograd family (winograd.c; the AVX2 transforms in fconv-avx2.c): F(4x4, 3x3) float conv,
 * strided convs by polyphase decomposition. */
#ifndef XNOR_FCONV_WINOGRAD_H
#define XNOR_FCONV_WINOGRAD_H

#include "../common.h"

struct xnor_kernels; /* dispatch.h, which needs this header's function types */

/* Winograd F(4x4, 3x3) transforms (fconv/winograd.c has the contract and the portable loops). */
typedef void (*xnor_winograd_input_fn)(const float *strip, size_t row_stride, size_t n, size_t cp, float *v,
                                       size_t v_stride);
typedef void (*xnor_winograd_output_fn)(const float *m, size_t m_stride, size_t ldm, size_t n, size_t nch,
                                        const float *bias, float *const out[4], size_t ld, size_t cols);
void xnor_winograd_input_ref(const float *strip, size_t row_stride, size_t n, size_t cp, float *v, size_t v_stride);
void xnor_winograd_output_ref(const float *m, size_t m_stride, size_t ldm, size_t n, size_t nch, const float *bias,
                              float *const out[4], size_t ld, size_t cols);
#ifdef XNOR_X86
void xnor_winograd_input_avx2(const float *strip, size_t row_stride, size_t n, size_t cp, float *v, size_t v_stride);
void xnor_winograd_output_avx2(const float *m, size_t m_stride, size_t ldm, size_t n, size_t nch, const float *bias,
                               float *const out[4], size_t ld, size_t cols);
#endif

/* Winograd F(4x4, 3x3) float conv (fconv/winograd.c), strided convs by polyphase decomposition: applies
 * to groups-1, undilated convs whose kernel is 3x3 per stride phase, outputs of at least 8x8, on every ISA
 * path but ref.
 * u: xnor_winograd_weights_floats(p) floats from xnor_winograd_prepare (HWIO weights); workspace:
 * xnor_winograd_workspace_bytes(p, num_threads), 64-byte aligned. */
int xnor_winograd_applies(const xnor_conv_params *p, const struct xnor_kernels *kern);
size_t xnor_winograd_weights_floats(const xnor_conv_params *p);
size_t xnor_winograd_workspace_bytes(const xnor_conv_params *p, int num_threads);
void xnor_winograd_prepare(const float *w, const xnor_conv_params *p, float *u);
xnor_status xnor_winograd_run(const float *x, const float *u, const float *bias, const xnor_conv_params *p,
                              float *out, int num_threads, void *workspace, size_t workspace_bytes);

#endif
