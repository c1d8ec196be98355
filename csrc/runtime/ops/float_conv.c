/* The runtime's float windowed ops on NHWC float32: fconv (direct or Winograd, groups 1 or depthwise)
 * and pool (max / average). */
#include <string.h>
#include "../../fconv/fconv.h"
#include "../../fconv/winograd.h"
#include "../program.h"

/* ---- fconv ------------------------------------------------------------------------------------------- */

typedef struct {
    xnor_conv_params p;
    size_t prepared_floats;         /* Winograd's prepared weights after this struct, or 0: the direct conv */
} fconv_aux;

/* The plan of a float conv: its geometry and whether Winograd runs it (its weights then follow). */
static int fconv_check(const struct xnor_model *m, const rt_step *s, void *plan, int threads, size_t *extra, size_t *ws,
                       char *err, size_t es) {
    const rt_fconv_params *par = &s->par.fconv;
    const rt_tensor *x = rt_in(m, s, RT_FCONV_X), *w = rt_in(m, s, RT_FCONV_W), *bias = rt_in(m, s, RT_FCONV_BIAS);
    fconv_aux *a = plan;
    xnor_conv_params *p = &a->p;
    size_t n, h, wd, c, oh, ow;
    RT_NEED(rt_nhwc(x, &n, &h, &wd, &c), "fconv input must be float32 of rank 4 or 2");
    memset(a, 0, sizeof *a);
    if (par->groups == 1) {
        RT_NEED(w->rank == 4 && w->dims[2] == c, "fconv weights must be HWIO with %zu input channels", c);
        p->out_c = w->dims[3];
    } else {
        RT_NEED((size_t)par->groups == c && w->rank == 3 && w->dims[2] == c, "a grouped fconv must be depthwise (kh, kw, %zu)", c);
        p->out_c = c;
    }
    p->batch = n, p->in_h = h, p->in_w = wd, p->in_c = c, p->groups = (size_t)par->groups;
    if (!rt_set_window(p, w->dims[0], w->dims[1], &par->window, &oh, &ow, err, es)) return 0;
    RT_NEED(!bias || (bias->rank == 1 && bias->dims[0] == p->out_c), "bias must be float32 (%zu,)", p->out_c);
    if (!rt_check_out_nhwc(rt_out(m, s), XNOR_T_F32, n, oh, ow, p->out_c, err, es)) return 0;
    RT_NEED(xnor_conv2d_f32_prepared_size(p, &a->prepared_floats) == XNOR_OK, "%s", xnor_last_error());
    *extra += RT_ALIGN64(a->prepared_floats * sizeof(float));
    *ws += a->prepared_floats ? xnor_winograd_workspace_bytes(p, threads) : 0;
    return 1;
}

/* Winograd's transformed weights, after the plan. */
static int fconv_prepare(struct xnor_model *m, rt_step *s, char *err, size_t es) {
    fconv_aux *a = s->aux;
    if (a->prepared_floats)
        RT_NEED(xnor_conv2d_f32_prepare((const float *)rt_in(m, s, RT_FCONV_W)->data, &a->p,
                                        (float *)((char *)a + RT_ALIGN64(sizeof *a))) == XNOR_OK, "%s", xnor_last_error());
    return 1;
}

static xnor_status fconv_run(struct xnor_model *m, const rt_step *s, int num_threads) {
    const fconv_aux *a = s->aux;
    const rt_tensor *bias = rt_in(m, s, RT_FCONV_BIAS);
    const float *prepared = a->prepared_floats ? (const float *)((const char *)a + RT_ALIGN64(sizeof *a)) : NULL;
    return xnor_fconv_run_prepared_ws((const float *)rt_in(m, s, RT_FCONV_X)->data,
                                      (const float *)rt_in(m, s, RT_FCONV_W)->data, prepared,
                                      bias ? (const float *)bias->data : NULL, &a->p, (float *)rt_out(m, s)->data,
                                      num_threads, m->scratch, m->scratch_bytes);
}

const rt_op_impl rt_op_fconv = {sizeof(fconv_aux), fconv_check, fconv_prepare, fconv_run};

/* ---- pool -------------------------------------------------------------------------------------------- */

/* The plan of a float pool: its geometry. */
static int pool_check(const struct xnor_model *m, const rt_step *s, void *plan, int threads, size_t *extra, size_t *ws,
                      char *err, size_t es) {
    const rt_pool_params *par = &s->par.pool;
    const rt_tensor *x = rt_in(m, s, RT_POOL_X);
    xnor_conv_params *p = plan;
    size_t oh, ow;
    (void)extra;
    RT_NEED(x->rank == 4, "pool input must be float32 NHWC");
    memset(p, 0, sizeof *p);
    p->batch = x->dims[0], p->in_h = x->dims[1], p->in_w = x->dims[2], p->in_c = p->out_c = x->dims[3], p->groups = 1;
    if (!rt_set_window(p, (size_t)par->kernel_h, (size_t)par->kernel_w, &par->window, &oh, &ow, err, es) ||
        !rt_check_out_nhwc(rt_out(m, s), XNOR_T_F32, p->batch, oh, ow, p->in_c, err, es))
        return 0;
    if (par->kind != XNOR_POOL_MAX) {
        size_t bytes = xnor_pool_workspace_size(p, threads);
        RT_NEED(bytes, "pool: too many channels");
        *ws += bytes;
    }
    return 1;
}

static xnor_status pool_run(struct xnor_model *m, const rt_step *s, int num_threads) {
    const float *x = (const float *)rt_in(m, s, RT_POOL_X)->data;
    float *y = (float *)rt_out(m, s)->data;
    xnor_pool_kind kind = (xnor_pool_kind)s->par.pool.kind;
    if (kind == XNOR_POOL_MAX) return xnor_pool2d_f32(x, s->aux, kind, y, num_threads);
    return xnor_pool2d_f32_ws(x, s->aux, kind, y, num_threads, m->scratch, m->scratch_bytes);
}

const rt_op_impl rt_op_pool = {sizeof(xnor_conv_params), pool_check, NULL, pool_run};
