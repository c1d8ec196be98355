/* The runtime's view of a `.xnor` program (internal to csrc/runtime/).
 *
 * The program is the section of a `.xnor` file that xnorinfer/runtime/program.py writes: little-endian
 * int64 words, tensors of fixed shapes and a list of steps over them.
 *
 *   word 0          magic "XNORPRG1"
 *   words 1..7      tensors T, steps S, inputs I, outputs O, string-table bytes B, step words W, and the
 *                   hash of the op schema the program was written for (schema.h: RT_SCHEMA_HASH)
 *   T x 12 words    type, rank, dims[6], kind (0 constant, 1 activation), offset (a constant's bytes in
 *                   the data section), nbytes, name (offset in the string table, or -1)
 *   I words, O words   the tensor index of each input, each output
 *   W words         the steps, each: op, n_in, n_out (1), n_par, then n_in + 1 tensor indices (-1: an
 *                   omitted optional operand), then n_par parameter words
 *   B bytes         NUL-terminated names, padded to a multiple of 8
 *
 * Each op's operands and parameters are declared once, in xnorinfer/runtime/schema.py, which generates
 * schema.h / schema.c: steps.c checks every step's operands against that declaration and decodes its
 * parameters into the op's parameter struct by name; the op's own file (ops/) checks the rest (shapes)
 * and runs it.  Every activation is written by exactly one step (or is an input) and read only after
 * that; the loader (model.c) checks this, every dim and size, and each step before it allocates.
 */
#ifndef XNOR_RUNTIME_PROGRAM_H
#define XNOR_RUNTIME_PROGRAM_H
#include <stdatomic.h>
#include "xnorinfer/model.h"
#include "../common.h"
#include "schema.h"

#define RT_MAGIC UINT64_C(0x31475250524f4e58) /* the bytes "XNORPRG1" read as a little-endian word */
#define RT_MAX_TENSORS 16384
#define RT_MAX_STEPS 16384
#define RT_MAX_IO 256
#define RT_MAX_ARGS 64
#define RT_MAX_STRINGS (1 << 20)
#define RT_ALIGN64(v) (((v) + 63) & ~(size_t)63)

enum { RT_CONST = 0, RT_ACT = 1 };

typedef struct {
    int type;                       /* xnor_tensor_type */
    size_t rank, dims[XNOR_MAX_RANK], count, nbytes;
    int kind;                       /* RT_CONST or RT_ACT */
    size_t offset;                  /* constant: in the data section; activation: in the arena */
    const char *name;
    int first, last;                /* activation: the step that writes it (-1: an input), last reader */
    char *data;                     /* resolved at open */
} rt_tensor;

typedef struct {
    int op, n_in;                   /* one output: args[n_in] */
    const int64_t *args;            /* n_in + 1 tensor indices (in the model's copy of the step words) */
    rt_params par;                  /* the parameters, decoded and range-checked by the schema */
    size_t aux_bytes, ws_bytes;     /* op state kept in the arena; scratch needed while it runs */
    void *aux;
    double seconds;                 /* XNORINFER_PROFILE: time spent in this step over all runs */
    double last_start, last_dur;    /* profiling: the last timed run's start (from the run's) and duration */
} rt_step;

struct xnor_model {
    atomic_int busy;
    int num_threads, sized_threads; /* threads asked for; threads the scratch was sized for */
    xnor_isa isa;                   /* the ISA the weights were laid out for */
    size_t arena_bytes;
    rt_tensor *tensors;
    rt_step *steps;
    int64_t *words;                 /* the step words, copied */
    size_t n_tensors, n_steps, n_inputs, n_outputs;
    int64_t io[2 * RT_MAX_IO];      /* input indices, then output indices */
    const unsigned char *data;      /* the data section */
    size_t data_size;
    char *scratch;
    size_t scratch_bytes;
    int profile;                    /* XNORINFER_PROFILE at open: 1 = ms per op, 2 = also per step, printed at close */
    int tracing;                    /* xnor_model_set_profiling: time each step of each run */
    int last_threads;               /* the threads of the last run */
    double op_seconds[RT_OP_COUNT];
    uint64_t op_calls[RT_OP_COUNT];
    uint64_t runs;
};

/* One op's implementation (runtime/ops/, one file per family, one rt_op_<name> per op of the schema):
 *   check    the rules the schema cannot state (shapes, relations between operands); works out the
 *            op's plan into *plan (plan_bytes, at most RT_MAX_PLAN: the state its runs need) and adds
 *            to *extra the state bytes that follow the plan and to *ws the scratch a run needs on
 *            `threads` threads; returns 0 with a message in err when the step is invalid.  The loader
 *            calls it to check the step, then again, once the arena exists, into the step's state;
 *   prepare  fills the state after the plan (weights laid out for the ISA); NULL: there is none;
 *   run      runs the step on up to num_threads threads; a failure sets xnor_last_error(). */
#define RT_MAX_PLAN 512
typedef struct {
    size_t plan_bytes;
    int (*check)(const struct xnor_model *m, const rt_step *s, void *plan, int threads, size_t *extra, size_t *ws,
                 char *err, size_t es);
    int (*prepare)(struct xnor_model *m, rt_step *s, char *err, size_t es);
    xnor_status (*run)(struct xnor_model *m, const rt_step *s, int num_threads);
} rt_op_impl;

#define RT_DECLARE_IMPL(name, NAME) extern const rt_op_impl rt_op_##name;
RT_OPS(RT_DECLARE_IMPL)
#undef RT_DECLARE_IMPL

/* steps.c: a step's record decoded by the schema (its operands' count and kinds, its parameters into
 * s->par); then the op's own check (sets s->aux_bytes, s->ws_bytes), prepare (fills s->aux) and run.
 * The first three return 0 with a message in err on failure. */
int rt_decode_step(const int64_t *words, size_t avail, size_t n_tensors, rt_step *s, size_t *used, char *err,
                   size_t es);
int rt_check_step(const struct xnor_model *m, rt_step *s, int threads, char *err, size_t es);
int rt_prepare_step(struct xnor_model *m, rt_step *s, char *err, size_t es);
xnor_status rt_run_step(struct xnor_model *m, const rt_step *s, size_t index);
const char *rt_op_name(int op);
int rt_threads_of(const struct xnor_model *m); /* the threads a step runs on */

/* ---- for the op files ---------------------------------------------------------------------------- */

int rt_fail(char *err, size_t es, const char *fmt, ...);
#define RT_NEED(cond, ...) do { if (!(cond)) return rt_fail(err, es, __VA_ARGS__); } while (0)

/* Operand i of a step (NULL: an omitted optional one), and its output. */
static inline const rt_tensor *rt_in(const struct xnor_model *m, const rt_step *s, int i) {
    return s->args[i] < 0 ? NULL : &m->tensors[s->args[i]];
}
static inline const rt_tensor *rt_out(const struct xnor_model *m, const rt_step *s) {
    return &m->tensors[s->args[s->n_in]];
}
int rt_same_dims(const rt_tensor *a, const rt_tensor *b);
size_t rt_prod(const size_t *dims, size_t lo, size_t hi);
/* The sizes of an NHWC tensor (rank 4), or of an (N, C) one seen as N x 1 x 1 x C (rank 2). */
int rt_nhwc(const rt_tensor *t, size_t *n, size_t *h, size_t *w, size_t *c);
/* Checks that y has the type and the NHWC (or (N, C)) shape given. */
int rt_check_out_nhwc(const rt_tensor *y, int type, size_t n, size_t oh, size_t ow, size_t c, char *err, size_t es);
/* p's kernel, strides, dilations and pads from a step's window (ranges checked by the schema), and the
 * output size (the kernel at most 2^16 taps, so a hostile file's work stays bounded). */
int rt_set_window(xnor_conv_params *p, size_t kernel_h, size_t kernel_w, const rt_window *w, size_t *oh, size_t *ow,
                  char *err, size_t es);

#endif
