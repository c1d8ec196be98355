/*
 * xnorinfer's model API: run a whole `.xnor` model from C, on the kernels of xnorinfer/kernels.h.
 *
 * A `.xnor` file written by `xnorinfer convert` holds, besides the graph for Python, its executable
 * program: a list of steps over tensors of fixed shapes (csrc/runtime/program.h has the layout).  The
 * loader checks every count, offset, size, dim and op parameter against the file and the ops' rules
 * before anything runs, then makes ONE allocation per model, sized from the program: the model's
 * tables, weights laid out for the active ISA, every intermediate tensor (placed by lifetime, so
 * tensors that are never alive together share bytes) and the kernels' scratch.  A run allocates
 * nothing.  No global state beyond the kernel library's (its ISA table and thread pool): every
 * function takes the model.  Errors as everywhere in the library (kernels.h): a status, and the
 * message in xnor_last_error().
 *
 *   xnor_model *m;
 *   if (xnor_model_open_file("model.xnor", NULL, &m) != XNOR_OK) { puts(xnor_last_error()); ... }
 *   xnor_tensor_info in; xnor_model_input_info(m, 0, &in);      // name, dtype, dims
 *   const void *inputs[] = {image}; void *outputs[] = {scores};
 *   if (xnor_model_run(m, inputs, outputs) != XNOR_OK) puts(xnor_last_error());
 *   xnor_model_close(m);
 *
 * One run at a time per model (a second concurrent xnor_model_run returns XNOR_EBUSY); open the file
 * twice to run in parallel.  Per-step timings: xnor_model_set_profiling below; or, with no code change,
 * XNORINFER_PROFILE=1 in the environment when a model is opened: its runs are timed per op and
 * xnor_model_close prints the milliseconds per run of each op to stderr. */
#ifndef XNORINFER_MODEL_H
#define XNORINFER_MODEL_H

#include "kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xnor_model xnor_model;
typedef struct {
    int num_threads;           /* 0: the pool's size (XNORINFER_NUM_THREADS or the CPU count) */
    size_t max_arena_bytes;    /* 0: 4 GiB; a file asking for more is refused before allocating */
} xnor_model_options;
/* Element types of model tensors: xnor_tensor_type (schema_enums.h). */
typedef struct {
    const char *name;          /* valid until xnor_model_close */
    xnor_tensor_type type;
    size_t rank;
    size_t dims[XNOR_MAX_RANK];
    size_t nbytes;             /* what the caller's buffer must hold */
} xnor_tensor_info;
/* Open from a file (read once into the model's allocation) or from memory (the bytes are used in
 * place: they must be 16-byte aligned, as malloc returns them, else XNOR_EINVAL; and they must stay
 * valid and unchanged until close).  opts may be NULL.  On failure *model is NULL. */
XNOR_API xnor_status xnor_model_open_file(const char *path, const xnor_model_options *opts, xnor_model **model);
XNOR_API xnor_status xnor_model_open_memory(const void *data, size_t size, const xnor_model_options *opts,
                                            xnor_model **model);
XNOR_API void xnor_model_close(xnor_model *model);
XNOR_API size_t xnor_model_num_inputs(const xnor_model *model);
XNOR_API size_t xnor_model_num_outputs(const xnor_model *model);
XNOR_API xnor_status xnor_model_input_info(const xnor_model *model, size_t index, xnor_tensor_info *info);
XNOR_API xnor_status xnor_model_output_info(const xnor_model *model, size_t index, xnor_tensor_info *info);
/* Run once: inputs[i] holds input i (its nbytes, C order), outputs[i] receives output i.
 * XNOR_EFALLBACK: this input needs the float graph (see kernels.h); the outputs are not written. */
XNOR_API xnor_status xnor_model_run(xnor_model *model, const void *const *inputs, void *const *outputs);
/* Threads for later runs (0: the pool's size); at most the count the model was opened with, which sized
 * the kernels' scratch (opts->num_threads, or the pool's size then). */
XNOR_API xnor_status xnor_model_set_num_threads(xnor_model *model, int num_threads);
/* Profiling.  With it on, each run times its steps; the last run's figures are read per step below.
 * Off (the default) a run costs one branch per step more than without.  Steps are numbered in the
 * order they run; a step's name is its output tensor's: the graph node (layer) it comes from. */
typedef struct {
    const char *op;            /* the runtime op, e.g. "bconv" (valid until close) */
    const char *name;          /* the layer it computes ("" if the program does not say) */
    size_t n_inputs;           /* operands read (weights included); xnor_model_step_operand has them */
    int threads;               /* the threads the last run used */
    double start_us, dur_us;   /* the last run while profiling: start (from the run's start), duration */
} xnor_step_info;
XNOR_API xnor_status xnor_model_set_profiling(xnor_model *model, int on);
XNOR_API size_t xnor_model_num_steps(const xnor_model *model);
XNOR_API xnor_status xnor_model_step_info(const xnor_model *model, size_t step, xnor_step_info *info);
/* The last profiled run's times of every step at once: times[2 s] = start_us, times[2 s + 1] = dur_us;
 * count (the doubles times holds) must be at least 2 * xnor_model_num_steps. */
XNOR_API xnor_status xnor_model_step_times(const xnor_model *model, double *times, size_t count);
/* Operand k of a step: k < n_inputs an input, k == n_inputs the output. */
XNOR_API xnor_status xnor_model_step_operand(const xnor_model *model, size_t step, size_t k, xnor_tensor_info *info);
/* The model's one allocation, in bytes (tables, weights, activations, scratch). */
XNOR_API size_t xnor_model_arena_bytes(const xnor_model *model);

#ifdef __cplusplus
}
#endif
#endif
