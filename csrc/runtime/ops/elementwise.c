/* The runtime's elementwise float ops: arith (two operands, numpy broadcasting), where, unary and
 * batchnorm.  The kernels' results equal numpy's float32 ufuncs bit for bit (xnorinfer/kernels.h). */
#include <string.h>
#include "../../fops/fops.h"
#include "../program.h"

typedef struct {
    size_t rank, dims[4][XNOR_MAX_RANK]; /* out, then the operands, left-padded with 1s */
} bcast_aux;

/* The plan of arith and where: each operand's dims left-padded to the output's rank; the operands must
 * broadcast to the output, which is exactly their broadcast shape. */
static int broadcast(const struct xnor_model *m, const rt_step *s, void *plan, int threads, size_t *extra, size_t *ws,
                     char *err, size_t es) {
    const rt_tensor *y = rt_out(m, s);
    int n_ops = s->op == RT_OP_ARITH ? 2 : 3;
    int want = s->op == RT_OP_ARITH && s->par.arith.fn >= XNOR_ARITH_GREATER ? XNOR_T_U8 : XNOR_T_F32;
    bcast_aux *a = plan;
    (void)threads, (void)extra, (void)ws;
    RT_NEED(y->type == want, "the output must be %s", want == XNOR_T_U8 ? "uint8 (a comparison)" : "float32");
    memset(a, 0, sizeof *a);
    a->rank = y->rank ? y->rank : 1;
    for (size_t d = 0; d < a->rank; d++) a->dims[0][d] = y->rank ? y->dims[d] : 1;
    for (int i = 0; i < n_ops; i++) {
        const rt_tensor *t = rt_in(m, s, i);
        RT_NEED(t->rank <= a->rank, "operand %d has a higher rank than the output", i);
        size_t lead = a->rank - t->rank;
        for (size_t d = 0; d < a->rank; d++) {
            size_t v = d < lead ? 1 : t->dims[d - lead];
            RT_NEED(v == a->dims[0][d] || v == 1, "operand %d does not broadcast to the output", i);
            a->dims[1 + i][d] = v;
        }
    }
    for (size_t d = 0; d < a->rank; d++) {
        size_t widest = 1;
        for (int i = 0; i < n_ops; i++) widest = a->dims[1 + i][d] > widest ? a->dims[1 + i][d] : widest;
        RT_NEED(widest == a->dims[0][d], "the output is not the operands' broadcast shape");
    }
    return 1;
}

static xnor_status arith_run(struct xnor_model *m, const rt_step *s, int num_threads) {
    const bcast_aux *a = s->aux;
    (void)num_threads;
    return xnor_arith_f32((xnor_arith_op)s->par.arith.fn, (const float *)rt_in(m, s, RT_ARITH_A)->data, a->dims[1],
                          (const float *)rt_in(m, s, RT_ARITH_B)->data, a->dims[2], rt_out(m, s)->data, a->dims[0], a->rank);
}

const rt_op_impl rt_op_arith = {sizeof(bcast_aux), broadcast, NULL, arith_run};

static xnor_status where_run(struct xnor_model *m, const rt_step *s, int num_threads) {
    const bcast_aux *a = s->aux;
    (void)num_threads;
    return xnor_where_f32((const uint8_t *)rt_in(m, s, RT_WHERE_COND)->data, a->dims[1],
                          (const float *)rt_in(m, s, RT_WHERE_A)->data, a->dims[2],
                          (const float *)rt_in(m, s, RT_WHERE_B)->data, a->dims[3], (float *)rt_out(m, s)->data,
                          a->dims[0], a->rank);
}

const rt_op_impl rt_op_where = {sizeof(bcast_aux), broadcast, NULL, where_run};

/* ---- unary, batchnorm: split across the pool by rows ------------------------------------------------
 * Each thread calls the single-threaded kernel on its rows, so the bits are those of one call. */

typedef struct {
    const struct xnor_model *m;
    const rt_step *s;
    size_t rows, row_len;   /* unary: row_len elements per row; batchnorm: rows of `inner` within outer*channels */
    xnor_status status[64];
} split_job;

static void split_task(void *ctx, int t, int nt) {
    split_job *job = ctx;
    const rt_step *s = job->s;
    const rt_tensor *x = rt_in(job->m, s, 0), *y = rt_out(job->m, s);
    size_t lo, hi;
    xnor_split(job->rows, 1, t, nt, &lo, &hi);
    xnor_status st = XNOR_OK;
    if (lo < hi) {
        const float *xv = (const float *)x->data + lo * job->row_len;
        float *yv = (float *)y->data + lo * job->row_len;
        if (s->op == RT_OP_UNARY) {
            st = xnor_unary_f32((xnor_unary_op)s->par.unary.fn, xv, yv, (hi - lo) * job->row_len);
        } else { /* batchnorm rows are (outer, channel) pairs of `inner` values: split by outer only */
            size_t c = x->dims[s->par.batchnorm.axis];
            const rt_tensor *mean = rt_in(job->m, s, RT_BATCHNORM_MEAN), *denom = rt_in(job->m, s, RT_BATCHNORM_DENOM);
            const rt_tensor *scale = rt_in(job->m, s, RT_BATCHNORM_SCALE), *bias = rt_in(job->m, s, RT_BATCHNORM_BIAS);
            st = xnor_batchnorm_f32(xv, (const float *)mean->data, (const float *)denom->data, (const float *)scale->data,
                                    (const float *)bias->data, hi - lo, c, job->row_len / c, yv);
        }
    }
    if (t < 64) job->status[t] = st;
}

static xnor_status split_run(const struct xnor_model *m, const rt_step *s, size_t rows, size_t row_len, int nt) {
    split_job job = {m, s, rows, row_len, {XNOR_OK}};
    nt = xnor_threads_for(rows * row_len, 1 << 15, nt);
    if (nt > 64) nt = 64;
    xnor_parallel(nt, split_task, &job);
    for (int t = 0; t < nt; t++)
        if (job.status[t] != XNOR_OK) return job.status[t];
    return XNOR_OK;
}

static int unary_check(const struct xnor_model *m, const rt_step *s, void *plan, int threads, size_t *extra, size_t *ws,
                       char *err, size_t es) {
    const rt_tensor *x = rt_in(m, s, RT_UNARY_X), *y = rt_out(m, s);
    (void)plan, (void)threads, (void)extra, (void)ws;
    RT_NEED(y->type == XNOR_T_F32 && rt_same_dims(x, y), "unary: float32 in and out, of one shape");
    return 1;
}

static xnor_status unary_run(struct xnor_model *m, const rt_step *s, int num_threads) {
    const rt_tensor *x = rt_in(m, s, RT_UNARY_X);
    size_t row = x->count < 4096 ? x->count : 4096, rows = (x->count + row - 1) / row;
    if (x->count % row) /* a short last row: one call */
        return xnor_unary_f32((xnor_unary_op)s->par.unary.fn, (const float *)x->data, (float *)rt_out(m, s)->data, x->count);
    return split_run(m, s, rows, row, num_threads);
}

const rt_op_impl rt_op_unary = {0, unary_check, NULL, unary_run};

static int batchnorm_check(const struct xnor_model *m, const rt_step *s, void *plan, int threads, size_t *extra,
                           size_t *ws, char *err, size_t es) {
    const rt_tensor *x = rt_in(m, s, RT_BATCHNORM_X), *y = rt_out(m, s);
    (void)plan, (void)threads, (void)extra, (void)ws;
    RT_NEED((size_t)s->par.batchnorm.axis < x->rank, "batchnorm axis %lld", (long long)s->par.batchnorm.axis);
    size_t c = x->dims[s->par.batchnorm.axis];
    for (int i = RT_BATCHNORM_MEAN; i <= RT_BATCHNORM_BIAS; i++) {
        const rt_tensor *v = rt_in(m, s, i);
        RT_NEED(v->rank == 1 && v->dims[0] == c, "batchnorm vectors must be float32 (%zu,)", c);
    }
    RT_NEED(y->type == XNOR_T_F32 && rt_same_dims(x, y), "batchnorm output must match its input");
    return 1;
}

static xnor_status batchnorm_run(struct xnor_model *m, const rt_step *s, int num_threads) {
    const rt_tensor *x = rt_in(m, s, RT_BATCHNORM_X);
    size_t axis = (size_t)s->par.batchnorm.axis;
    return split_run(m, s, rt_prod(x->dims, 0, axis), x->dims[axis] * rt_prod(x->dims, axis + 1, x->rank), num_threads);
}

const rt_op_impl rt_op_batchnorm = {0, batchnorm_check, NULL, batchnorm_run};
