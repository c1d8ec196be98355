/* The runtime's binary (+-1) ops: pack (float -> sign bits), bconv (binary conv / dense with its fused
 * output transform), bmaxpool (max-pool of sign bits). */
#include <math.h>
#include <string.h>
#include "../../bconv/bconv.h"
#include "../../bconv/output.h"
#include "../program.h"

/* ---- pack -------------------------------------------------------------------------------------------- */

static int pack_check(const struct xnor_model *m, const rt_step *s, void *plan, int threads, size_t *extra, size_t *ws,
                      char *err, size_t es) {
    const rt_tensor *x = rt_in(m, s, RT_PACK_X), *y = rt_out(m, s);
    (void)plan, (void)threads, (void)extra, (void)ws;
    RT_NEED(x->rank >= 1 && y->type == XNOR_T_BITS && y->rank == x->rank, "pack writes bits of its input's rank");
    for (size_t d = 0; d + 1 < x->rank; d++) RT_NEED(y->dims[d] == x->dims[d], "pack keeps the leading dims");
    RT_NEED(y->dims[x->rank - 1] == (size_t)XNOR_WORDS(x->dims[x->rank - 1]), "pack: wrong number of words");
    return 1;
}

/* Whether any of n floats is exactly 0 (either sign): branch-free blocks, so the compiler vectorises. */
VECTORIZE static int any_zero(const float *v, size_t n) {
    for (size_t i = 0; i < n; i += 4096) {
        size_t e = n - i < 4096 ? n : i + 4096;
        int z = 0;
        for (size_t j = i; j < e; j++) z |= v[j] == 0.0f;
        if (z) return 1;
    }
    return 0;
}

static xnor_status pack_run(struct xnor_model *m, const rt_step *s, int num_threads) {
    const rt_pack_params *par = &s->par.pack;
    const rt_tensor *x = rt_in(m, s, RT_PACK_X), *y = rt_out(m, s);
    const float *v = (const float *)x->data;
    size_t k = x->dims[x->rank - 1], rows = x->count / k, words = XNOR_WORDS(k);
    if (par->ternary && any_zero(v, x->count)) /* a sign that keeps 0: an exact 0 needs the float graph */
        return xnor_fail(XNOR_EFALLBACK, "an exact 0 reaches a sign that keeps 0 (ternary); the C program computes "
                                         "only +-1 there");
    if (par->minus_mask == 1) return xnor_pack_threads(v, XNOR_F32, rows, k, (uint64_t *)y->data, num_threads);
    uint64_t *out = (uint64_t *)y->data;
    for (size_t r = 0; r < rows; r++)
        for (size_t w = 0; w < words; w++) {
            uint64_t bits = 0;
            for (size_t b = 0; b < 64 && w * 64 + b < k; b++) {
                float e = v[r * k + w * 64 + b];
                int neg = (e < 0 && (par->minus_mask & 1)) || (e == 0 && (par->minus_mask & 2)) ||
                          (e > 0 && (par->minus_mask & 4));
                bits |= (uint64_t)neg << b;
            }
            out[r * words + w] = bits;
        }
    return XNOR_OK;
}

const rt_op_impl rt_op_pack = {0, pack_check, NULL, pack_run};

/* ---- bconv ------------------------------------------------------------------------------------------- */

typedef struct {
    xnor_conv_params p;
    xnor_output_transform t;
    xnor_bconv_prepared w;
    size_t panel_words, tap_sum_count;
} bconv_aux;

/* The output transform of a step, pointing into its operands' data. */
static int bconv_transform(const struct xnor_model *m, const rt_step *s, xnor_output_transform *t, char *err, size_t es) {
    const rt_bconv_params *par = &s->par.bconv;
    const rt_tensor *scale = rt_in(m, s, RT_BCONV_SCALE), *bias = rt_in(m, s, RT_BCONV_BIAS);
    const rt_tensor *thr = rt_in(m, s, RT_BCONV_THRESHOLDS), *flip = rt_in(m, s, RT_BCONV_FLIP);
    t->kind = (xnor_output_kind)par->kind;
    t->scale = scale ? (const float *)scale->data : NULL;
    t->bias = bias ? (const float *)bias->data : NULL;
    t->clamp_min = (float)par->clamp_min, t->clamp_max = (float)par->clamp_max;
    t->thresholds = thr ? (const int32_t *)thr->data : NULL;
    t->flip = flip ? (const uint8_t *)flip->data : NULL;
    t->acc_clamp = (int)par->acc_clamp, t->acc_min = (int32_t)par->acc_min, t->acc_max = (int32_t)par->acc_max;
    RT_NEED(xnor_check_transform(t) == XNOR_OK, "%s", xnor_last_error());
    return 1;
}

/* The transform's operands: per-channel float32 vectors with float output, int32 thresholds and uint8
 * flips with packed output, a residual of the output's shape with float output. */
static int check_transform_operands(const struct xnor_model *m, const rt_step *s, size_t oc, char *err, size_t es) {
    const rt_bconv_params *par = &s->par.bconv;
    const rt_tensor *thr = rt_in(m, s, RT_BCONV_THRESHOLDS), *flip = rt_in(m, s, RT_BCONV_FLIP);
    const rt_tensor *res = rt_in(m, s, RT_BCONV_RESIDUAL);
    int is_float = par->kind == XNOR_OUT_FLOAT32, packed = par->kind == XNOR_OUT_PACKED;
    for (int i = RT_BCONV_SCALE; i <= RT_BCONV_BIAS; i++) {
        const rt_tensor *v = rt_in(m, s, i);
        RT_NEED(!v || (is_float && v->rank == 1 && v->dims[0] == oc), "scale/bias must be float32 (%zu,) with float output", oc);
    }
    RT_NEED(packed ? thr && thr->rank == 1 && thr->dims[0] == oc : !thr,
            "thresholds must be int32 (%zu,), with packed output only", oc);
    RT_NEED(!flip || (packed && flip->rank == 1 && flip->dims[0] == oc), "flip must be uint8 (%zu,) with packed output", oc);
    RT_NEED(!res || (is_float && rt_same_dims(res, rt_out(m, s))), "the residual must be float32 shaped like the output");
    RT_NEED(!(par->clamp_min > par->clamp_max) && par->clamp_min == par->clamp_min && par->clamp_max == par->clamp_max,
            "bad clamp [%g, %g]", par->clamp_min, par->clamp_max);
    RT_NEED(par->acc_min <= par->acc_max, "bad accumulator clamp");
    return 1;
}

/* The plan of a binary conv: its geometry and transform; its weights (panels, tap sums) follow it. */
static int bconv_check(const struct xnor_model *m, const rt_step *s, void *plan, int threads, size_t *extra, size_t *ws,
                       char *err, size_t es) {
    const rt_bconv_params *par = &s->par.bconv;
    const rt_tensor *x = rt_in(m, s, RT_BCONV_X), *w = rt_in(m, s, RT_BCONV_W);
    bconv_aux *a = plan;
    size_t n, h, wd, words, oh, ow;
    RT_NEED(rt_nhwc(x, &n, &h, &wd, &words), "bconv input must be packed bits of rank 4 or 2");
    RT_NEED(w->rank == 4, "bconv weights must be packed OHWI");
    RT_NEED(par->groups <= par->in_c && par->in_c % par->groups == 0, "bad in_c %lld / groups %lld",
            (long long)par->in_c, (long long)par->groups);
    size_t oc = w->dims[0], in_c = (size_t)par->in_c, groups = (size_t)par->groups;
    RT_NEED(oc % groups == 0, "out channels %zu not divisible by groups", oc);
    RT_NEED(words == (size_t)XNOR_WORDS(in_c), "input has %zu words per pixel, %zu channels need %zu", words, in_c,
            (size_t)XNOR_WORDS(in_c));
    RT_NEED(w->dims[3] == (size_t)XNOR_WORDS(in_c / groups), "weights have %zu words per tap", w->dims[3]);
    memset(a, 0, sizeof *a);
    a->p.batch = n, a->p.in_h = h, a->p.in_w = wd, a->p.in_c = in_c, a->p.out_c = oc;
    a->p.groups = groups, a->p.pad_value = (int)par->pad_value;
    if (!rt_set_window(&a->p, w->dims[1], w->dims[2], &par->window, &oh, &ow, err, es)) return 0;
    static const int types[3] = {XNOR_T_I32, XNOR_T_F32, XNOR_T_BITS};
    if (!rt_check_out_nhwc(rt_out(m, s), types[par->kind], n, oh, ow,
                           par->kind == XNOR_OUT_PACKED ? (size_t)XNOR_WORDS(oc) : oc, err, es) ||
        !check_transform_operands(m, s, oc, err, es) || !bconv_transform(m, s, &a->t, err, es))
        return 0;
    RT_NEED(xnor_bconv_prepared_size(&a->p, &a->panel_words, &a->tap_sum_count) == XNOR_OK, "%s", xnor_last_error());
    RT_NEED(a->panel_words <= ((size_t)1 << 40) && a->tap_sum_count <= ((size_t)1 << 40), "weights too large");
    *extra += RT_ALIGN64(a->panel_words * 8) + RT_ALIGN64(a->tap_sum_count * 4);
    RT_NEED(xnor_bconv_workspace_size(&a->p, threads, ws) == XNOR_OK, "%s", xnor_last_error());
    return 1;
}

/* The weights laid out for the ISA's kernel, after the plan. */
static int bconv_prepare(struct xnor_model *m, rt_step *s, char *err, size_t es) {
    bconv_aux *a = s->aux;
    uint64_t *panels = (uint64_t *)((char *)a + RT_ALIGN64(sizeof *a));
    int32_t *tap_sums = a->tap_sum_count ? (int32_t *)((char *)panels + RT_ALIGN64(a->panel_words * 8)) : NULL;
    RT_NEED(xnor_bconv_prepare((const uint64_t *)rt_in(m, s, RT_BCONV_W)->data, &a->p, panels, tap_sums) == XNOR_OK,
            "%s", xnor_last_error());
    a->w.isa = m->isa, a->w.panels = panels, a->w.tap_sums = tap_sums;
    return 1;
}

static xnor_status bconv_run(struct xnor_model *m, const rt_step *s, int num_threads) {
    const bconv_aux *a = s->aux;
    const rt_tensor *res = rt_in(m, s, RT_BCONV_RESIDUAL);
    return xnor_bconv_run_ws((const uint64_t *)rt_in(m, s, RT_BCONV_X)->data, &a->w, &a->p, &a->t,
                             res ? (const float *)res->data : NULL, rt_out(m, s)->data, num_threads, m->scratch,
                             m->scratch_bytes);
}

const rt_op_impl rt_op_bconv = {sizeof(bconv_aux), bconv_check, bconv_prepare, bconv_run};

/* ---- bmaxpool ---------------------------------------------------------------------------------------- */

/* The plan of a bit max-pool: its geometry. */
static int bmaxpool_check(const struct xnor_model *m, const rt_step *s, void *plan, int threads, size_t *extra, size_t *ws,
                          char *err, size_t es) {
    const rt_bmaxpool_params *par = &s->par.bmaxpool;
    const rt_tensor *x = rt_in(m, s, RT_BMAXPOOL_X), *mask = rt_in(m, s, RT_BMAXPOOL_OR_MASK);
    xnor_conv_params *p = plan;
    size_t c = (size_t)par->channels, words = XNOR_WORDS(c), oh, ow;
    (void)threads, (void)extra, (void)ws;
    RT_NEED(!mask || (mask->rank == 1 && mask->dims[0] == words), "the or-mask must be %zu words", words);
    RT_NEED(x->rank == 4 && x->dims[3] == words, "bmaxpool input must be packed NHWC with %zu words per pixel", words);
    memset(p, 0, sizeof *p);
    p->batch = x->dims[0], p->in_h = x->dims[1], p->in_w = x->dims[2], p->in_c = p->out_c = c, p->groups = 1;
    return rt_set_window(p, (size_t)par->kernel_h, (size_t)par->kernel_w, &par->window, &oh, &ow, err, es) &&
           rt_check_out_nhwc(rt_out(m, s), XNOR_T_BITS, p->batch, oh, ow, words, err, es);
}

static xnor_status bmaxpool_run(struct xnor_model *m, const rt_step *s, int num_threads) {
    const rt_tensor *y = rt_out(m, s), *mask = rt_in(m, s, RT_BMAXPOOL_OR_MASK);
    xnor_status st = xnor_bmaxpool2d((const uint64_t *)rt_in(m, s, RT_BMAXPOOL_X)->data, s->aux, (uint64_t *)y->data,
                                     num_threads);
    if (st == XNOR_OK && mask) { /* OR-pooled channels: the layer emitted inverted bits (De Morgan) */
        uint64_t *out = (uint64_t *)y->data;
        const uint64_t *or_bits = (const uint64_t *)mask->data;
        size_t words = mask->dims[0];
        for (size_t i = 0; i < y->count; i++) out[i] ^= or_bits[i % words];
    }
    return st;
}

const rt_op_impl rt_op_bmaxpool = {sizeof(xnor_conv_params), bmaxpool_check, NULL, bmaxpool_run};
