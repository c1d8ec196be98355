/* The runtime's view of a `.xnor` program (internal to csrc/runtime/).
 *
 * The program is the section of a `.xnor` file that `xnorinfer/lower.py` writes: little-endian int64
 * words, tensors of fixed shapes and a list of steps over them.
 *
 *   word 0          magic "XNORPRG1"
 *   words 1..7      tensors T, steps S, inputs I, outputs O, string-table bytes B, step words W, 0
 *   T x 12 words    type, rank, dims[6], kind (0 constant, 1 activation), offset (a constant's bytes in
 *                   the data section), nbytes, name (offset in the string table, or -1)
 *   I words, O words   the tensor index of each input, each output
 *   W words         the steps, each: op, n_in, n_out, n_par, then n_in + n_out tensor indices (-1: an
 *                   omitted optional operand), then n_par parameters
 *   B bytes         NUL-terminated names, padded to a multiple of 8
 *
 * Every activation is written by exactly one step (or is an input) and read only after that; the loader
 * checks this, every dim and size, and each op's rules (run.c: check_step) before it allocates.
 */
#ifndef XNOR_RUNTIME_PROGRAM_H
#define XNOR_RUNTIME_PROGRAM_H
#include <stdatomic.h>
#include "xnorinfer/model.h"
#include "../common.h"
#include "../bconv/bconv.h"
#include "../bconv/output.h"
#include "../fconv/fconv.h"
#include "../fconv/winograd.h"

#define RT_MAGIC UINT64_C(0x31475250524f4e58) /* the bytes "XNORPRG1" read as a little-endian word */
#define RT_MAX_TENSORS 16384
#define RT_MAX_STEPS 16384
#define RT_MAX_IO 256
#define RT_MAX_ARGS 64
#define RT_MAX_PARAMS 32
#define RT_MAX_STRINGS (1 << 20)

enum { RT_CONST = 0, RT_ACT = 1 };
enum {
    OP_COPY = 1, OP_PACK = 2, OP_BCONV = 3, OP_BMAXPOOL = 4, OP_FCONV = 5, OP_POOL = 6, OP_BINARY = 7,
    OP_WHERE = 8, OP_UNARY = 9, OP_BATCHNORM = 10, OP_SOFTMAX = 11, OP_MEAN = 12, OP_TRANSPOSE = 13,
    OP_CONCAT = 14, OP_COUNT = 15
};

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
    int op, n_in, n_out, n_par;
    const int64_t *args;            /* n_in + n_out indices (in the model's copy of the step words) */
    const int64_t *par;
    size_t aux_bytes, ws_bytes;     /* op state kept in the arena; scratch needed while it runs */
    void *aux;
    double seconds;                 /* XNORINFER_PROFILE: time spent in this step over all runs */
} rt_step;

struct xnor_model {
    char error[256];
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
    double op_seconds[OP_COUNT];
    uint64_t op_calls[OP_COUNT];
    uint64_t runs;
};

/* Per-op checks and work (run.c).  check_step validates a step against its tensors and sets its
 * aux_bytes / ws_bytes; prepare_step fills its aux (weights laid out for the active ISA); run_step runs it. */
int rt_check_step(const struct xnor_model *m, rt_step *s, char *err, size_t err_size, int sized_threads);
int rt_prepare_step(struct xnor_model *m, rt_step *s, char *err, size_t err_size);
xnor_status rt_run_step(struct xnor_model *m, const rt_step *s, size_t index);

#endif
