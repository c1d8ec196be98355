/* The runtime's ops: for each, the rules its operands must meet (checked once, at open), its state
 * (weights laid out for the ISA, kernel parameter structs, kept in the arena) and its run.
 *
 * The ops are the kernels of the library, composed as the Python executor composes them; the program
 * (xnorinfer/lower.py) spells out every shape, so nothing here infers one.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "program.h"

static int fail(char *err, size_t es, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, es, fmt, ap);
    va_end(ap);
    return 0;
}

#define NEED(cond, ...) do { if (!(cond)) return fail(err, es, __VA_ARGS__); } while (0)
#define ALIGN64(v) (((v) + 63) & ~(size_t)63)
#define LIMIT ((int64_t)1 << 31)

static const rt_tensor *arg(const struct xnor_model *m, const rt_step *s, int i) {
    int64_t t = s->args[i];
    return t < 0 ? NULL : &m->tensors[t];
}
static const rt_tensor *out_of(const struct xnor_model *m, const rt_step *s) { return arg(m, s, s->n_in); }

static int same_dims(const rt_tensor *a, const rt_tensor *b) {
    if (a->rank != b->rank) return 0;
    for (size_t d = 0; d < a->rank; d++)
        if (a->dims[d] != b->dims[d]) return 0;
    return 1;
}

static double par_f64(const rt_step *s, int i) {
    double v;
    memcpy(&v, &s->par[i], sizeof v);
    return v;
}

static size_t prod(const size_t *dims, size_t lo, size_t hi) {
    size_t p = 1;
    for (size_t d = lo; d < hi; d++) p *= dims[d]; /* bounded: parse_tensor checked the whole product */
    return p;
}

/* ---- per-op state --------------------------------------------------------------------------- */

typedef struct {
    xnor_conv_params p;
    xnor_output_transform t;
    xnor_bconv_prepared w;
    size_t panel_words, tap_sum_count;
} bconv_aux;

typedef struct {
    xnor_conv_params p;
} geom_aux;

typedef struct {
    xnor_conv_params p;
    size_t prepared_floats;         /* Winograd's prepared weights after this struct, or 0: the direct conv */
} fconv_aux;

typedef struct {
    size_t rank, dims[4][XNOR_MAX_RANK]; /* out, then the operands, left-padded with 1s */
} bcast_aux;

typedef struct {
    size_t dims[XNOR_MAX_RANK], perm[XNOR_MAX_RANK];
} transpose_aux;

/* Spatial geometry from parameters [kh?, kw?,] stride_h, stride_w, dil_h, dil_w, top, bottom, left, right. */
static int geometry(const rt_step *s, int first, xnor_conv_params *p, char *err, size_t es) {
    size_t *f[] = {&p->stride_h, &p->stride_w, &p->dilation_h, &p->dilation_w, &p->pad_top, &p->pad_bottom,
                   &p->pad_left, &p->pad_right};
    for (int i = 0; i < 8; i++) {
        int64_t v = s->par[first + i];
        NEED(v >= (i < 4 ? 1 : 0) && v <= LIMIT, "geometry parameter %d is %lld", i, (long long)v);
        *f[i] = (size_t)v;
    }
    /* At most 2^16 taps: with every output bounded by the arena, the work of a hostile file stays bounded. */
    NEED(p->kernel_h >= 1 && p->kernel_w >= 1 && p->kernel_h <= ((size_t)1 << 16) && p->kernel_w <= ((size_t)1 << 16) &&
         p->kernel_h * p->kernel_w <= ((size_t)1 << 16),
         "kernel %zux%zu has more than 2^16 taps", p->kernel_h, p->kernel_w);
    return 1;
}

/* The spatial sizes of an NHWC tensor (rank 4), or of an (N, C) one seen as N x 1 x 1 x C (rank 2). */
static int nhwc(const rt_tensor *t, size_t *n, size_t *h, size_t *w, size_t *c) {
    if (t->rank == 4) { *n = t->dims[0], *h = t->dims[1], *w = t->dims[2], *c = t->dims[3]; return 1; }
    if (t->rank == 2) { *n = t->dims[0], *h = 1, *w = 1, *c = t->dims[1]; return 1; }
    return 0;
}

static int check_out_nhwc(const rt_tensor *y, int type, size_t n, size_t oh, size_t ow, size_t c, char *err, size_t es) {
    size_t yn, yh, yw, yc;
    NEED(y->type == type, "the output has type %d, not %d", y->type, type);
    NEED(nhwc(y, &yn, &yh, &yw, &yc) && yn == n && yh == oh && yw == ow && yc == c,
         "the output's shape is not (%zu, %zu, %zu, %zu)", n, oh, ow, c);
    return 1;
}

/* Checks a binary conv step and derives its geometry into *a (check and prepare both use it). */
static int check_bconv(const struct xnor_model *m, rt_step *s, bconv_aux *a, char *err, size_t es, int threads) {
    NEED(s->n_in == 7 && s->n_par == 17, "bconv takes 7 operands and 17 parameters");
    const rt_tensor *x = arg(m, s, 0), *w = arg(m, s, 1), *scale = arg(m, s, 2), *bias = arg(m, s, 3);
    const rt_tensor *thr = arg(m, s, 4), *flip = arg(m, s, 5), *res = arg(m, s, 6), *y = out_of(m, s);
    size_t n, h, wd, words;
    NEED(x && x->type == XNOR_T_BITS && nhwc(x, &n, &h, &wd, &words), "bconv input must be packed bits, rank 4 or 2");
    NEED(w && w->type == XNOR_T_BITS && w->kind == RT_CONST && w->rank == 4, "bconv weights must be constant packed OHWI");
    int64_t in_c = s->par[0], groups = s->par[9], pad_value = s->par[10], kind = s->par[11];
    NEED(in_c >= 1 && in_c <= LIMIT && groups >= 1 && groups <= in_c && in_c % groups == 0, "bad in_c %lld / groups %lld",
         (long long)in_c, (long long)groups);
    size_t oc = w->dims[0];
    NEED(oc % (size_t)groups == 0, "out channels %zu not divisible by groups", oc);
    NEED(words == (size_t)XNOR_WORDS((size_t)in_c), "input has %zu words per pixel, %lld channels need %zu", words,
         (long long)in_c, (size_t)XNOR_WORDS((size_t)in_c));
    NEED(w->dims[3] == (size_t)XNOR_WORDS((size_t)(in_c / groups)), "weights have %zu words per tap", w->dims[3]);
    NEED(pad_value == 0 || pad_value == 1, "pad_value %lld", (long long)pad_value);
    NEED(kind >= 0 && kind <= 2, "output kind %lld", (long long)kind);
    memset(a, 0, sizeof *a);
    a->p.batch = n, a->p.in_h = h, a->p.in_w = wd, a->p.in_c = (size_t)in_c, a->p.out_c = oc;
    a->p.kernel_h = w->dims[1], a->p.kernel_w = w->dims[2], a->p.groups = (size_t)groups, a->p.pad_value = (int)pad_value;
    if (!geometry(s, 1, &a->p, err, es)) return 0;
    size_t oh, ow;
    NEED(xnor_conv_output_size(&a->p, &oh, &ow) == XNOR_OK, "%s", xnor_last_error());
    static const int types[3] = {XNOR_T_I32, XNOR_T_F32, XNOR_T_BITS};
    if (!check_out_nhwc(y, types[kind], n, oh, ow, kind == 2 ? (size_t)XNOR_WORDS(oc) : oc, err, es)) return 0;
    for (int i = 0; i < 2; i++) {
        const rt_tensor *v = i ? bias : scale;
        NEED(!v || (kind == 1 && v->type == XNOR_T_F32 && v->rank == 1 && v->dims[0] == oc),
             "scale/bias must be float32 (%zu,) with float output", oc);
    }
    NEED(kind == 2 ? thr && thr->type == XNOR_T_I32 && thr->rank == 1 && thr->dims[0] == oc : !thr,
         "thresholds must be int32 (%zu,), with packed output only", oc);
    NEED(!flip || (kind == 2 && flip->type == XNOR_T_U8 && flip->rank == 1 && flip->dims[0] == oc),
         "flip must be uint8 (%zu,) with packed output", oc);
    NEED(!res || (kind == 1 && res->type == XNOR_T_F32 && same_dims(res, y)), "the residual must be float32 shaped like the output");
    double lo = par_f64(s, 12), hi = par_f64(s, 13);
    NEED(!(lo > hi) && lo == lo && hi == hi, "bad clamp [%g, %g]", lo, hi);
    int64_t acc_clamp = s->par[14], acc_min = s->par[15], acc_max = s->par[16];
    NEED(acc_clamp == 0 || acc_clamp == 1, "acc_clamp %lld", (long long)acc_clamp);
    NEED(acc_min >= INT32_MIN && acc_max <= INT32_MAX && acc_min <= acc_max, "bad accumulator clamp");
    NEED(xnor_bconv_prepared_size(&a->p, &a->panel_words, &a->tap_sum_count) == XNOR_OK, "%s", xnor_last_error());
    NEED(a->panel_words <= ((size_t)1 << 40) && a->tap_sum_count <= ((size_t)1 << 40), "weights too large");
    s->aux_bytes = ALIGN64(sizeof *a) + ALIGN64(a->panel_words * 8) + ALIGN64(a->tap_sum_count * 4);
    NEED(xnor_bconv_workspace_size(&a->p, threads, &s->ws_bytes) == XNOR_OK, "%s", xnor_last_error());
    return 1;
}

static int check_pool_geometry(const struct xnor_model *m, rt_step *s, int first, size_t channels, size_t words_or_c,
                               int type, xnor_conv_params *p, char *err, size_t es) {
    const rt_tensor *x = arg(m, s, 0), *y = out_of(m, s);
    NEED(x && x->type == type && x->rank == 4 && x->dims[3] == words_or_c, "pool input must be rank 4 with %zu per pixel", words_or_c);
    memset(p, 0, sizeof *p);
    int64_t kh = s->par[first], kw = s->par[first + 1];
    NEED(kh >= 1 && kh <= LIMIT && kw >= 1 && kw <= LIMIT, "kernel %lldx%lld", (long long)kh, (long long)kw);
    p->batch = x->dims[0], p->in_h = x->dims[1], p->in_w = x->dims[2], p->in_c = p->out_c = channels;
    p->kernel_h = (size_t)kh, p->kernel_w = (size_t)kw, p->groups = 1;
    if (!geometry(s, first + 2, p, err, es)) return 0;
    size_t oh, ow;
    NEED(xnor_conv_output_size(p, &oh, &ow) == XNOR_OK, "%s", xnor_last_error());
    return check_out_nhwc(y, type, p->batch, oh, ow, words_or_c, err, es);
}

/* The geometry of a float conv step, checked; check and prepare both use it. */
static int fconv_geometry(const struct xnor_model *m, const rt_step *s, xnor_conv_params *p, char *err, size_t es) {
    NEED(s->n_in == 3 && s->n_par == 9, "fconv takes 3 operands and 9 parameters");
    const rt_tensor *x = arg(m, s, 0), *w = arg(m, s, 1), *bias = arg(m, s, 2), *y = out_of(m, s);
    size_t n, h, wd, c;
    NEED(x && x->type == XNOR_T_F32 && nhwc(x, &n, &h, &wd, &c), "fconv input must be float32, rank 4 or 2");
    int64_t groups = s->par[8];
    NEED(w && w->type == XNOR_T_F32 && w->kind == RT_CONST, "fconv weights must be constant float32");
    memset(p, 0, sizeof *p);
    if (groups == 1) {
        NEED(w->rank == 4 && w->dims[2] == c, "fconv weights must be HWIO with %zu input channels", c);
        p->out_c = w->dims[3];
    } else {
        NEED(groups > 1 && (size_t)groups == c && w->rank == 3 && w->dims[2] == c, "a grouped fconv must be depthwise (kh, kw, %zu)", c);
        p->out_c = c;
    }
    p->batch = n, p->in_h = h, p->in_w = wd, p->in_c = c, p->groups = (size_t)groups;
    p->kernel_h = w->dims[0], p->kernel_w = w->dims[1];
    if (!geometry(s, 0, p, err, es)) return 0;
    size_t oh, ow;
    NEED(xnor_conv_output_size(p, &oh, &ow) == XNOR_OK, "%s", xnor_last_error());
    NEED(!bias || (bias->type == XNOR_T_F32 && bias->rank == 1 && bias->dims[0] == p->out_c), "bias must be float32 (%zu,)", p->out_c);
    return check_out_nhwc(y, XNOR_T_F32, n, oh, ow, p->out_c, err, es);
}

/* Checks that the operands broadcast to the output; their padded dims go to *into when it is not NULL. */
static int broadcast(const struct xnor_model *m, rt_step *s, int n_ops, const int *types, bcast_aux *into,
                     char *err, size_t es) {
    const rt_tensor *y = out_of(m, s);
    bcast_aux a;
    memset(&a, 0, sizeof a);
    a.rank = y->rank ? y->rank : 1;
    for (size_t d = 0; d < a.rank; d++) a.dims[0][d] = y->rank ? y->dims[d] : 1;
    for (int i = 0; i < n_ops; i++) {
        const rt_tensor *t = arg(m, s, i);
        NEED(t && t->type == types[i] && t->rank <= a.rank, "operand %d: wrong type or rank", i);
        size_t lead = a.rank - t->rank;
        for (size_t d = 0; d < a.rank; d++) {
            size_t v = d < lead ? 1 : t->dims[d - lead];
            NEED(v == a.dims[0][d] || v == 1, "operand %d does not broadcast to the output", i);
            a.dims[1 + i][d] = v;
        }
    }
    for (size_t d = 0; d < a.rank; d++) { /* the output is exactly the broadcast shape */
        size_t want = 1;
        for (int i = 0; i < n_ops; i++) want = a.dims[1 + i][d] > want ? a.dims[1 + i][d] : want;
        NEED(want == a.dims[0][d], "the output is not the operands' broadcast shape");
    }
    s->aux_bytes = sizeof a;
    if (into) *into = a;
    return 1;
}

static int check_axes(const rt_tensor *x, const rt_step *s, size_t *outer, size_t *mid, size_t *inner, char *err, size_t es) {
    int64_t b = s->par[0], e = s->par[1];
    NEED(b >= 0 && b < e && (size_t)e <= x->rank, "axes [%lld, %lld) for rank %zu", (long long)b, (long long)e, x->rank);
    *outer = prod(x->dims, 0, (size_t)b), *mid = prod(x->dims, (size_t)b, (size_t)e), *inner = prod(x->dims, (size_t)e, x->rank);
    return 1;
}

int rt_check_step(const struct xnor_model *m, rt_step *s, char *err, size_t es, int threads) {
    const rt_tensor *x = s->n_in ? arg(m, s, 0) : NULL, *y = out_of(m, s);
    s->aux_bytes = s->ws_bytes = 0;
    switch (s->op) {
    case OP_COPY:
        NEED(s->n_in == 1 && s->n_par == 0 && x, "copy takes one operand");
        NEED(x->type == y->type && x->nbytes == y->nbytes, "copy between tensors of different types or sizes");
        return 1;
    case OP_PACK: {
        NEED(s->n_in == 1 && s->n_par == 2 && x && x->type == XNOR_T_F32 && x->rank >= 1, "pack takes a float32 tensor");
        NEED(s->par[0] >= 0 && s->par[0] <= 7 && (s->par[1] == 0 || s->par[1] == 1), "bad pack parameters");
        NEED(y->type == XNOR_T_BITS && y->rank == x->rank, "pack writes bits of the same rank");
        for (size_t d = 0; d + 1 < x->rank; d++) NEED(y->dims[d] == x->dims[d], "pack keeps the leading dims");
        NEED(y->dims[x->rank - 1] == (size_t)XNOR_WORDS(x->dims[x->rank - 1]), "pack: wrong number of words");
        return 1;
    }
    case OP_BCONV: {
        bconv_aux a;
        return check_bconv(m, s, &a, err, es, threads);
    }
    case OP_BMAXPOOL: {
        NEED(s->n_in == 2 && s->n_par == 11, "bmaxpool takes 2 operands and 11 parameters");
        int64_t c = s->par[0];
        NEED(c >= 1 && c <= LIMIT, "channels %lld", (long long)c);
        const rt_tensor *mask = arg(m, s, 1);
        NEED(!mask || (mask->type == XNOR_T_BITS && mask->rank == 1 && mask->dims[0] == (size_t)XNOR_WORDS((size_t)c)),
             "the or-mask must be %zu words", (size_t)XNOR_WORDS((size_t)c));
        geom_aux a;
        if (!check_pool_geometry(m, s, 1, (size_t)c, XNOR_WORDS((size_t)c), XNOR_T_BITS, &a.p, err, es)) return 0;
        s->aux_bytes = sizeof a;
        return 1;
    }
    case OP_FCONV: {
        xnor_conv_params p;
        size_t floats;
        if (!fconv_geometry(m, s, &p, err, es)) return 0;
        NEED(xnor_conv2d_f32_prepared_size(&p, &floats) == XNOR_OK, "%s", xnor_last_error());
        s->aux_bytes = ALIGN64(sizeof(fconv_aux)) + ALIGN64(floats * sizeof(float));
        s->ws_bytes = floats ? xnor_winograd_workspace_bytes(&p, threads) : 0;
        return 1;
    }
    case OP_POOL: {
        NEED(s->n_in == 1 && s->n_par == 11 && x, "pool takes 1 operand and 11 parameters");
        NEED(s->par[0] >= 0 && s->par[0] <= 2, "pool kind %lld", (long long)s->par[0]);
        NEED(x->type == XNOR_T_F32 && x->rank == 4, "pool input must be float32 NHWC");
        geom_aux a;
        if (!check_pool_geometry(m, s, 1, x->dims[3], x->dims[3], XNOR_T_F32, &a.p, err, es)) return 0;
        s->aux_bytes = sizeof a;
        s->ws_bytes = s->par[0] == XNOR_POOL_MAX ? 0 : xnor_pool_workspace_size(&a.p, threads);
        NEED(s->par[0] == XNOR_POOL_MAX || s->ws_bytes, "pool: too many channels");
        return 1;
    }
    case OP_BINARY: {
        NEED(s->n_in == 2 && s->n_par == 1, "binary takes 2 operands and 1 parameter");
        NEED(s->par[0] >= 0 && s->par[0] < XNOR_ARITH_COUNT, "binary op %lld", (long long)s->par[0]);
        NEED(y->type == (s->par[0] >= XNOR_ARITH_GREATER ? XNOR_T_U8 : XNOR_T_F32), "binary: wrong output type");
        static const int types[2] = {XNOR_T_F32, XNOR_T_F32};
        return broadcast(m, s, 2, types, NULL, err, es);
    }
    case OP_WHERE: {
        NEED(s->n_in == 3 && s->n_par == 0 && y->type == XNOR_T_F32, "where takes 3 operands");
        static const int types[3] = {XNOR_T_U8, XNOR_T_F32, XNOR_T_F32};
        return broadcast(m, s, 3, types, NULL, err, es);
    }
    case OP_UNARY:
        NEED(s->n_in == 1 && s->n_par == 1 && x && s->par[0] >= 0 && s->par[0] < XNOR_UN_COUNT, "bad unary step");
        NEED(x->type == XNOR_T_F32 && y->type == XNOR_T_F32 && same_dims(x, y), "unary: float32 in and out, same shape");
        return 1;
    case OP_BATCHNORM: {
        NEED(s->n_in == 5 && s->n_par == 1 && x && x->type == XNOR_T_F32, "batchnorm takes 5 operands and an axis");
        NEED(s->par[0] >= 0 && (size_t)s->par[0] < x->rank, "batchnorm axis %lld", (long long)s->par[0]);
        size_t c = x->dims[s->par[0]];
        for (int i = 1; i < 5; i++) {
            const rt_tensor *v = arg(m, s, i);
            NEED(v && v->type == XNOR_T_F32 && v->rank == 1 && v->dims[0] == c, "batchnorm vectors must be float32 (%zu,)", c);
        }
        NEED(y->type == XNOR_T_F32 && same_dims(x, y), "batchnorm output must match its input");
        return 1;
    }
    case OP_SOFTMAX:
    case OP_MEAN: {
        size_t outer = 0, mid = 0, inner = 0;
        NEED(s->n_in == 1 && s->n_par == 2 && x && x->type == XNOR_T_F32 && y->type == XNOR_T_F32, "bad softmax/mean step");
        if (!check_axes(x, s, &outer, &mid, &inner, err, es)) return 0;
        if (s->op == OP_SOFTMAX) NEED(same_dims(x, y), "softmax output must match its input");
        else NEED(y->count == outer * inner, "mean output must have %zu values", outer * inner);
        return 1;
    }
    case OP_TRANSPOSE: {
        NEED(s->n_in == 1 && x && s->n_par == XNOR_MAX_RANK && x->rank >= 1, "transpose takes a permutation of its rank");
        for (size_t d = x->rank; d < XNOR_MAX_RANK; d++) NEED(s->par[d] == 0, "perm entries past the rank must be 0");
        NEED(x->type == y->type && y->rank == x->rank, "transpose keeps type and rank");
        transpose_aux a;
        unsigned seen = 0;
        for (size_t d = 0; d < x->rank; d++) {
            int64_t p = s->par[d];
            NEED(p >= 0 && (size_t)p < x->rank && !(seen & (1u << p)), "perm is not a permutation");
            seen |= 1u << p;
            a.perm[d] = (size_t)p, a.dims[d] = x->dims[d];
            NEED(y->dims[d] == x->dims[p], "transpose output dim %zu", d);
        }
        s->aux_bytes = sizeof a;
        return 1;
    }
    case OP_CONCAT: {
        NEED(s->n_in >= 1 && s->n_par == 1 && y->rank >= 1, "concat takes inputs and an axis");
        int64_t axis = s->par[0];
        NEED(axis >= 0 && (size_t)axis < y->rank, "concat axis %lld", (long long)axis);
        size_t total = 0;
        for (int i = 0; i < s->n_in; i++) {
            const rt_tensor *t = arg(m, s, i);
            NEED(t && t->type == y->type && t->rank == y->rank, "concat operand %d: type or rank", i);
            for (size_t d = 0; d < y->rank; d++) NEED(d == (size_t)axis || t->dims[d] == y->dims[d], "concat operand %d: dims", i);
            total += t->dims[axis];
        }
        NEED(total == y->dims[axis], "concat output axis is %zu, the inputs add up to %zu", y->dims[axis], total);
        return 1;
    }
    default:
        return fail(err, es, "unknown op %d", s->op);
    }
}

int rt_prepare_step(struct xnor_model *m, rt_step *s, char *err, size_t es) {
    switch (s->op) {
    case OP_BCONV: {
        bconv_aux *a = s->aux;
        const rt_tensor *w = arg(m, s, 1), *scale = arg(m, s, 2), *bias = arg(m, s, 3);
        const rt_tensor *thr = arg(m, s, 4), *flip = arg(m, s, 5);
        if (!check_bconv(m, s, a, err, es, m->sized_threads)) return 0;
        uint64_t *panels = (uint64_t *)((char *)a + ALIGN64(sizeof *a));
        int32_t *tap_sums = a->tap_sum_count ? (int32_t *)((char *)panels + ALIGN64(a->panel_words * 8)) : NULL;
        NEED(xnor_bconv_prepare((const uint64_t *)w->data, &a->p, panels, tap_sums) == XNOR_OK, "%s", xnor_last_error());
        a->w.isa = m->isa, a->w.panels = panels, a->w.tap_sums = tap_sums;
        a->t.kind = (xnor_output_kind)s->par[11];
        a->t.scale = scale ? (const float *)scale->data : NULL;
        a->t.bias = bias ? (const float *)bias->data : NULL;
        a->t.clamp_min = (float)par_f64(s, 12), a->t.clamp_max = (float)par_f64(s, 13);
        a->t.thresholds = thr ? (const int32_t *)thr->data : NULL;
        a->t.flip = flip ? (const uint8_t *)flip->data : NULL;
        a->t.acc_clamp = (int)s->par[14], a->t.acc_min = (int32_t)s->par[15], a->t.acc_max = (int32_t)s->par[16];
        NEED(xnor_check_transform(&a->t) == XNOR_OK, "%s", xnor_last_error());
        return 1;
    }
    case OP_BMAXPOOL:
    case OP_POOL: {
        geom_aux *a = s->aux;
        int64_t c = s->op == OP_BMAXPOOL ? s->par[0] : (int64_t)arg(m, s, 0)->dims[3];
        return check_pool_geometry(m, s, 1, (size_t)c, s->op == OP_BMAXPOOL ? XNOR_WORDS((size_t)c) : (size_t)c,
                                   s->op == OP_BMAXPOOL ? XNOR_T_BITS : XNOR_T_F32, &a->p, err, es);
    }
    case OP_FCONV: {
        fconv_aux *a = s->aux;
        if (!fconv_geometry(m, s, &a->p, err, es)) return 0;
        NEED(xnor_conv2d_f32_prepared_size(&a->p, &a->prepared_floats) == XNOR_OK, "%s", xnor_last_error());
        if (a->prepared_floats)
            NEED(xnor_conv2d_f32_prepare((const float *)arg(m, s, 1)->data, &a->p,
                                         (float *)((char *)a + ALIGN64(sizeof *a))) == XNOR_OK, "%s", xnor_last_error());
        return 1;
    }
    case OP_BINARY:
    case OP_WHERE: {
        static const int bin[2] = {XNOR_T_F32, XNOR_T_F32}, where[3] = {XNOR_T_U8, XNOR_T_F32, XNOR_T_F32};
        return broadcast(m, s, s->op == OP_BINARY ? 2 : 3, s->op == OP_BINARY ? bin : where, s->aux, err, es);
    }
    case OP_TRANSPOSE: {
        transpose_aux *a = s->aux;
        const rt_tensor *x = arg(m, s, 0);
        for (size_t d = 0; d < x->rank; d++) a->perm[d] = (size_t)s->par[d], a->dims[d] = x->dims[d];
        return 1;
    }
    default:
        return 1;
    }
}

/* ---- running --------------------------------------------------------------------------------- */

static int threads_of(const struct xnor_model *m) {
    int nt = m->num_threads > 0 ? m->num_threads : xnor_num_threads();
    return nt > m->sized_threads ? m->sized_threads : nt;
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

static xnor_status pack(struct xnor_model *m, const rt_step *s, size_t index) {
    const rt_tensor *x = arg(m, s, 0), *y = out_of(m, s);
    const float *v = (const float *)x->data;
    size_t k = x->dims[x->rank - 1], rows = x->count / k, words = XNOR_WORDS(k);
    int mask = (int)s->par[0];
    if (s->par[1] && any_zero(v, x->count)) { /* a sign that keeps 0: an exact 0 needs the float graph */
        snprintf(m->error, sizeof m->error, "step %zu: an exact 0 reaches a sign that keeps 0 (ternary); "
                 "the C program computes only +-1 there", index);
        return XNOR_EFALLBACK;
    }
    if (mask == 1) return xnor_pack(v, XNOR_F32, rows, k, (uint64_t *)y->data);
    uint64_t *out = (uint64_t *)y->data;
    for (size_t r = 0; r < rows; r++)
        for (size_t w = 0; w < words; w++) {
            uint64_t bits = 0;
            for (size_t b = 0; b < 64 && w * 64 + b < k; b++) {
                float e = v[r * k + w * 64 + b];
                int neg = (e < 0 && (mask & 1)) || (e == 0 && (mask & 2)) || (e > 0 && (mask & 4));
                bits |= (uint64_t)neg << b;
            }
            out[r * words + w] = bits;
        }
    return XNOR_OK;
}

static void concat(const struct xnor_model *m, const rt_step *s) {
    const rt_tensor *y = out_of(m, s);
    size_t axis = (size_t)s->par[0], es = y->nbytes / y->count, outer = prod(y->dims, 0, axis);
    size_t row = y->nbytes / outer, at = 0;
    for (int i = 0; i < s->n_in; i++) {
        const rt_tensor *t = arg(m, s, i);
        size_t chunk = prod(t->dims, axis, t->rank) * es;
        for (size_t o = 0; o < outer; o++) memcpy(y->data + o * row + at, t->data + o * chunk, chunk);
        at += chunk;
    }
}

/* Batch norm and unary ops over large tensors, split across the pool by rows: each thread calls the
 * single-threaded kernel on its rows, so the bits are those of one call. */
typedef struct {
    const struct xnor_model *m;
    const rt_step *s;
    size_t rows, row_len;   /* unary: row_len elements per row; batchnorm: rows of `inner` within outer*channels */
    xnor_status status[64];
} split_job;

static void split_task(void *ctx, int t, int nt) {
    split_job *job = ctx;
    const rt_step *s = job->s;
    const rt_tensor *x = arg(job->m, s, 0), *y = out_of(job->m, s);
    size_t lo, hi;
    xnor_split(job->rows, 1, t, nt, &lo, &hi);
    xnor_status st = XNOR_OK;
    if (lo < hi) {
        const float *xv = (const float *)x->data + lo * job->row_len;
        float *yv = (float *)y->data + lo * job->row_len;
        if (s->op == OP_UNARY) {
            st = xnor_unary_f32((xnor_unary_op)s->par[0], xv, yv, (hi - lo) * job->row_len);
        } else { /* batchnorm rows are (outer, channel) pairs of `inner` values: split by outer only */
            size_t axis = (size_t)s->par[0], c = x->dims[axis];
            st = xnor_batchnorm_f32(xv, (const float *)arg(job->m, s, 1)->data, (const float *)arg(job->m, s, 2)->data,
                                    (const float *)arg(job->m, s, 3)->data, (const float *)arg(job->m, s, 4)->data,
                                    hi - lo, c, job->row_len / c, yv);
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

xnor_status rt_run_step(struct xnor_model *m, const rt_step *s, size_t index) {
    const rt_tensor *x = s->n_in ? arg(m, s, 0) : NULL, *y = out_of(m, s);
    int nt = threads_of(m);
    xnor_status st = XNOR_OK;
    switch (s->op) {
    case OP_COPY:
        memcpy(y->data, x->data, y->nbytes);
        break;
    case OP_PACK:
        st = pack(m, s, index);
        if (st == XNOR_EFALLBACK) return st;
        break;
    case OP_BCONV: {
        const bconv_aux *a = s->aux;
        const rt_tensor *res = arg(m, s, 6);
        st = xnor_bconv_run_ws((const uint64_t *)x->data, &a->w, &a->p, &a->t, res ? (const float *)res->data : NULL,
                               y->data, nt, m->scratch, m->scratch_bytes);
        break;
    }
    case OP_BMAXPOOL: {
        const geom_aux *a = s->aux;
        const rt_tensor *mask = arg(m, s, 1);
        st = xnor_bmaxpool2d((const uint64_t *)x->data, &a->p, (uint64_t *)y->data, nt);
        if (st == XNOR_OK && mask) { /* OR-pooled channels: the layer emitted inverted bits (De Morgan) */
            uint64_t *out = (uint64_t *)y->data;
            const uint64_t *or_bits = (const uint64_t *)mask->data;
            size_t words = mask->dims[0];
            for (size_t i = 0; i < y->count; i++) out[i] ^= or_bits[i % words];
        }
        break;
    }
    case OP_FCONV: {
        const fconv_aux *a = s->aux;
        const rt_tensor *w = arg(m, s, 1), *bias = arg(m, s, 2);
        const float *prepared = a->prepared_floats ? (const float *)((const char *)a + ALIGN64(sizeof *a)) : NULL;
        st = xnor_fconv_run_prepared_ws((const float *)x->data, (const float *)w->data, prepared,
                                        bias ? (const float *)bias->data : NULL, &a->p, (float *)y->data, nt,
                                        m->scratch, m->scratch_bytes);
        break;
    }
    case OP_POOL: {
        const geom_aux *a = s->aux;
        if (s->par[0] == XNOR_POOL_MAX)
            st = xnor_pool2d_f32((const float *)x->data, &a->p, XNOR_POOL_MAX, (float *)y->data, nt);
        else
            st = xnor_pool2d_f32_ws((const float *)x->data, &a->p, (xnor_pool_kind)s->par[0], (float *)y->data, nt,
                                    m->scratch, m->scratch_bytes);
        break;
    }
    case OP_BINARY: {
        const bcast_aux *a = s->aux;
        st = xnor_arith_f32((xnor_arith_op)s->par[0], (const float *)x->data, a->dims[1],
                            (const float *)arg(m, s, 1)->data, a->dims[2], y->data, a->dims[0], a->rank);
        break;
    }
    case OP_WHERE: {
        const bcast_aux *a = s->aux;
        st = xnor_where_f32((const uint8_t *)x->data, a->dims[1], (const float *)arg(m, s, 1)->data, a->dims[2],
                            (const float *)arg(m, s, 2)->data, a->dims[3], (float *)y->data, a->dims[0], a->rank);
        break;
    }
    case OP_UNARY: {
        size_t row = x->count < 4096 ? x->count : 4096, rows = (x->count + row - 1) / row;
        if (x->count % row) /* a short last row: one call */
            st = xnor_unary_f32((xnor_unary_op)s->par[0], (const float *)x->data, (float *)y->data, x->count);
        else
            st = split_run(m, s, rows, row, nt);
        break;
    }
    case OP_BATCHNORM: {
        size_t axis = (size_t)s->par[0];
        st = split_run(m, s, prod(x->dims, 0, axis), x->dims[axis] * prod(x->dims, axis + 1, x->rank), nt);
        break;
    }
    case OP_SOFTMAX:
    case OP_MEAN: {
        size_t b = (size_t)s->par[0], e = (size_t)s->par[1];
        size_t outer = prod(x->dims, 0, b), mid = prod(x->dims, b, e), inner = prod(x->dims, e, x->rank);
        st = s->op == OP_SOFTMAX ? xnor_softmax_f32((const float *)x->data, outer, mid, inner, (float *)y->data)
                                 : xnor_mean_f32((const float *)x->data, outer, mid, inner, (float *)y->data);
        break;
    }
    case OP_TRANSPOSE: {
        const transpose_aux *a = s->aux;
        st = xnor_transpose(x->data, x->nbytes / x->count, a->dims, a->perm, x->rank, y->data);
        break;
    }
    case OP_CONCAT:
        concat(m, s);
        break;
    default:
        st = XNOR_EINVAL;
    }
    if (st != XNOR_OK) snprintf(m->error, sizeof m->error, "step %zu: %s", index, xnor_last_error());
    return st;
}
