/* The runtime's ops that move values or reduce along axes: copy, transpose, concat, softmax, mean. */
#include <string.h>
#include "../../fops/fops.h"
#include "../program.h"

/* ---- copy -------------------------------------------------------------------------------------------- */

static int copy_check(const struct xnor_model *m, const rt_step *s, void *plan, int threads, size_t *extra, size_t *ws,
                      char *err, size_t es) {
    const rt_tensor *x = rt_in(m, s, RT_COPY_X), *y = rt_out(m, s);
    (void)plan, (void)threads, (void)extra, (void)ws;
    RT_NEED(x->type == y->type && x->nbytes == y->nbytes, "copy between tensors of different types or sizes");
    return 1;
}

static xnor_status copy_run(struct xnor_model *m, const rt_step *s, int num_threads) {
    const rt_tensor *y = rt_out(m, s);
    (void)num_threads;
    memcpy(y->data, rt_in(m, s, RT_COPY_X)->data, y->nbytes);
    return XNOR_OK;
}

const rt_op_impl rt_op_copy = {0, copy_check, NULL, copy_run};

/* ---- transpose --------------------------------------------------------------------------------------- */

typedef struct {
    size_t dims[XNOR_MAX_RANK], perm[XNOR_MAX_RANK];
} transpose_aux;

/* The plan of a transpose: the input's dims and the permutation, as the kernel takes them. */
static int transpose_check(const struct xnor_model *m, const rt_step *s, void *plan, int threads, size_t *extra,
                           size_t *ws, char *err, size_t es) {
    const rt_tensor *x = rt_in(m, s, RT_TRANSPOSE_X), *y = rt_out(m, s);
    const int64_t *perm = s->par.transpose.perm;
    transpose_aux *a = plan;
    unsigned seen = 0;
    (void)threads, (void)extra, (void)ws;
    RT_NEED(x->rank >= 1 && x->type == y->type && y->rank == x->rank, "transpose keeps type and rank");
    for (size_t d = 0; d < XNOR_MAX_RANK; d++) {
        if (d >= x->rank) {
            RT_NEED(perm[d] == 0, "perm entries past the rank must be 0");
            continue;
        }
        RT_NEED((size_t)perm[d] < x->rank && !(seen & (1u << perm[d])), "perm is not a permutation");
        seen |= 1u << perm[d];
        a->perm[d] = (size_t)perm[d], a->dims[d] = x->dims[d];
        RT_NEED(y->dims[d] == x->dims[perm[d]], "transpose output dim %zu", d);
    }
    return 1;
}

static xnor_status transpose_run(struct xnor_model *m, const rt_step *s, int num_threads) {
    const transpose_aux *a = s->aux;
    const rt_tensor *x = rt_in(m, s, RT_TRANSPOSE_X);
    (void)num_threads;
    return xnor_transpose(x->data, x->nbytes / x->count, a->dims, a->perm, x->rank, rt_out(m, s)->data);
}

const rt_op_impl rt_op_transpose = {sizeof(transpose_aux), transpose_check, NULL, transpose_run};

/* ---- concat ------------------------------------------------------------------------------------------ */

static int concat_check(const struct xnor_model *m, const rt_step *s, void *plan, int threads, size_t *extra, size_t *ws,
                        char *err, size_t es) {
    const rt_tensor *y = rt_out(m, s);
    size_t axis = (size_t)s->par.concat.axis, total = 0;
    (void)plan, (void)threads, (void)extra, (void)ws;
    RT_NEED(axis < y->rank, "concat axis %zu for rank %zu", axis, y->rank);
    for (int i = 0; i < s->n_in; i++) {
        const rt_tensor *t = rt_in(m, s, i);
        RT_NEED(t->type == y->type && t->rank == y->rank, "concat operand %d: type or rank", i);
        for (size_t d = 0; d < y->rank; d++) RT_NEED(d == axis || t->dims[d] == y->dims[d], "concat operand %d: dims", i);
        total += t->dims[axis];
    }
    RT_NEED(total == y->dims[axis], "concat output axis is %zu, the inputs add up to %zu", y->dims[axis], total);
    return 1;
}

static xnor_status concat_run(struct xnor_model *m, const rt_step *s, int num_threads) {
    const rt_tensor *y = rt_out(m, s);
    size_t axis = (size_t)s->par.concat.axis, item = y->nbytes / y->count, outer = rt_prod(y->dims, 0, axis);
    size_t row = y->nbytes / outer, at = 0;
    (void)num_threads;
    for (int i = 0; i < s->n_in; i++) {
        const rt_tensor *t = rt_in(m, s, i);
        size_t chunk = rt_prod(t->dims, axis, t->rank) * item;
        for (size_t o = 0; o < outer; o++) memcpy(y->data + o * row + at, t->data + o * chunk, chunk);
        at += chunk;
    }
    return XNOR_OK;
}

const rt_op_impl rt_op_concat = {0, concat_check, NULL, concat_run};

/* ---- softmax, mean: over the axes [begin, end), the tensor viewed as (outer, mid, inner) -------------- */

static void axes_of(const rt_step *s, int64_t *begin, int64_t *end) {
    if (s->op == RT_OP_SOFTMAX) *begin = s->par.softmax.begin, *end = s->par.softmax.end;
    else *begin = s->par.mean.begin, *end = s->par.mean.end;
}

static int axes_check(const struct xnor_model *m, const rt_step *s, void *plan, int threads, size_t *extra, size_t *ws,
                      char *err, size_t es) {
    const rt_tensor *x = rt_in(m, s, 0), *y = rt_out(m, s);
    int64_t b, e;
    (void)plan, (void)threads, (void)extra, (void)ws;
    axes_of(s, &b, &e);
    RT_NEED(b < e && (size_t)e <= x->rank, "axes [%lld, %lld) for rank %zu", (long long)b, (long long)e, x->rank);
    size_t kept = rt_prod(x->dims, 0, (size_t)b) * rt_prod(x->dims, (size_t)e, x->rank);
    RT_NEED(y->type == XNOR_T_F32 && (s->op == RT_OP_SOFTMAX ? rt_same_dims(x, y) : y->count == kept),
            "%s: the output must be float32 of %s", rt_op_name(s->op), s->op == RT_OP_SOFTMAX ? "the input's shape" : "the kept axes");
    return 1;
}

static xnor_status axes_run(struct xnor_model *m, const rt_step *s, int num_threads) {
    const rt_tensor *x = rt_in(m, s, 0);
    int64_t b, e;
    (void)num_threads;
    axes_of(s, &b, &e);
    size_t outer = rt_prod(x->dims, 0, (size_t)b), mid = rt_prod(x->dims, (size_t)b, (size_t)e);
    size_t inner = rt_prod(x->dims, (size_t)e, x->rank);
    return (s->op == RT_OP_SOFTMAX ? xnor_softmax_f32 : xnor_mean_f32)((const float *)x->data, outer, mid, inner,
                                                                       (float *)rt_out(m, s)->data);
}

const rt_op_impl rt_op_softmax = {0, axes_check, NULL, axes_run};
const rt_op_impl rt_op_mean = {0, axes_check, NULL, axes_run};
