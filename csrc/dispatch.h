/* The dispatch table (dispatch.c): one xnor_kernels per ISA path, each defined in that path's file, and
 * the one xnor_init chose.  It gathers every family's kernel types, so only the files that fill a table
 * or call through one include it. */
#ifndef XNOR_DISPATCH_H
#define XNOR_DISPATCH_H

#include "common.h"
#include "bgemm/bgemm.h"
#include "pack/pack.h"
#include "bconv/output.h"
#include "fconv/fconv.h"
#include "fconv/winograd.h"

/* Register-only peak loop; returns binary MACs performed. */
typedef double (*xnor_peak_fn)(uint64_t iters, uint64_t *sink);

typedef struct xnor_kernels {
    const char *name;
    size_t mr, nr;              /* micro-tile of gemm_ukernel; nr is the panel width */
    size_t direct_max_m;        /* xnor_bgemm uses gemm_direct when m <= this (SIZE_MAX: always,
                                   and then gemm_ukernel may be NULL) */
    xnor_gemm_ukernel_fn gemm_ukernel;
    xnor_gemm_ukernel_fn gemm_ukernel_split; /* gemm_ukernel's contract on nibble-split a and panel;
                                                NULL: this ISA has none */
    xnor_gemm_direct_fn gemm_direct;
    xnor_pack_f32_fn pack_f32;
    xnor_threshold_pack_fn threshold_pack;
    xnor_peak_fn peak;
    xnor_fconv_block_fn fconv_block; /* float direct conv; NULL: the portable loop */
    xnor_float_row_fn float_row;     /* float output transform; NULL: the portable loop */
    xnor_depthwise_row_fn depthwise_row; /* float depthwise conv rows; NULL: the portable loop */
    xnor_pool_row_fn pool_row;       /* float pooling rows; NULL: the portable loop */
    xnor_winograd_input_fn winograd_input;   /* Winograd transforms; NULL: the portable loops */
    xnor_winograd_output_fn winograd_output;
} xnor_kernels;

/* The kernels of the active ISA (filled once by xnor_init). */
const xnor_kernels *xnor_active(void);

/* Per-ISA tables, each defined in its own file; NULL where the build has no such path. */
extern const xnor_kernels xnor_kernels_ref;
extern const xnor_kernels xnor_kernels_scalar;
#ifdef XNOR_X86
extern const xnor_kernels xnor_kernels_avx2;
extern const xnor_kernels xnor_kernels_avx512;
#endif
#ifdef XNOR_ARM64
extern const xnor_kernels xnor_kernels_neon;
#endif

#endif
