/* The binary conv's workspace API (bconv.c), for the runtime: xnor_bconv2d_prepared and _prepared_add
 * with caller-provided scratch (the model's arena), so a model run allocates nothing. */
#ifndef XNOR_BCONV_H
#define XNOR_BCONV_H

#include "../common.h"

/* workspace: at least xnor_bconv_workspace_size(p, num_threads) bytes, 64-byte aligned. */
xnor_status xnor_bconv_workspace_size(const xnor_conv_params *p, int num_threads, size_t *bytes);
xnor_status xnor_bconv_run_ws(const uint64_t *x, const xnor_bconv_prepared *w, const xnor_conv_params *p,
                              const xnor_output_transform *t, const float *residual, void *out, int num_threads,
                              void *workspace, size_t workspace_bytes);

#endif
