/* A step against its op's declaration (schema.h / schema.c, generated from xnorinfer/runtime/schema.py):
 * the operand count and each operand's presence, type and constness, the parameters decoded into the
 * op's struct with their ranges checked; then the op's own check, prepare and run (ops/), found in one
 * table built from the schema's list of ops, so an op without an implementation does not link. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include "program.h"

#define RT_IMPL_ENTRY(name, NAME) [RT_OP_##NAME] = &rt_op_##name,
static const rt_op_impl *const IMPLS[RT_OP_COUNT] = {RT_OPS(RT_IMPL_ENTRY)};
#undef RT_IMPL_ENTRY

int rt_fail(char *err, size_t es, const char *fmt, ...) {
    if (err && es) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, es, fmt, ap);
        va_end(ap);
    }
    return 0;
}

const char *rt_op_name(int op) { return op > 0 && op < RT_OP_COUNT && rt_op_specs[op].name ? rt_op_specs[op].name : "?"; }

/* Decodes the parameter words of `specs` into the struct at `base`; returns the words used, or 0. */
static size_t decode_params(const char *op, const rt_param_spec *specs, int n, const int64_t *words, char *base,
                            char *err, size_t es) {
    size_t used = 0;
    for (int i = 0; i < n; i++) {
        const rt_param_spec *p = &specs[i];
        if (p->kind == RT_P_GROUP) {
            size_t group = decode_params(op, p->members, p->n_members, words + used, base + p->offset, err, es);
            if (!group) return 0;
            used += group;
            continue;
        }
        if (p->kind == RT_P_F64) {
            memcpy(base + p->offset, &words[used++], sizeof(double));
            continue;
        }
        for (size_t j = 0; j < p->count; j++, used++) {
            if (words[used] < p->lo || words[used] > p->hi)
                return rt_fail(err, es, "%s %s = %lld is outside [%lld, %lld]", op, p->name, (long long)words[used],
                               (long long)p->lo, (long long)p->hi);
            memcpy(base + p->offset + j * sizeof(int64_t), &words[used], sizeof(int64_t));
        }
    }
    return used ? used : 1; /* 1: success for an op without parameters (0 means failure) */
}

int rt_decode_step(const int64_t *words, size_t avail, size_t n_tensors, rt_step *s, size_t *used, char *err,
                   size_t es) {
    RT_NEED(avail >= 4, "truncated");
    int64_t op = words[0], n_in = words[1], n_out = words[2], n_par = words[3];
    RT_NEED(op >= 1 && op < RT_OP_COUNT && rt_op_specs[op].name, "unknown op %lld", (long long)op);
    const rt_op_spec *spec = &rt_op_specs[op];
    int variadic = spec->operands[spec->n_operands - 1].flags & RT_OPERAND_VARIADIC;
    RT_NEED(n_in == spec->n_operands || (variadic && n_in > spec->n_operands && n_in <= RT_MAX_ARGS),
            "%s takes %s%d operands, not %lld", spec->name, variadic ? "at least " : "", spec->n_operands, (long long)n_in);
    RT_NEED(n_out == 1 && n_par == spec->n_words, "%s has 1 output and %d parameter words, not %lld and %lld",
            spec->name, spec->n_words, (long long)n_out, (long long)n_par);
    size_t need = 4 + (size_t)n_in + 1 + (size_t)n_par;
    RT_NEED(avail >= need, "truncated");
    for (size_t a = 0; a <= (size_t)n_in; a++)
        RT_NEED(words[4 + a] >= -1 && words[4 + a] < (int64_t)n_tensors, "tensor index %lld out of range",
                (long long)words[4 + a]);
    RT_NEED(words[4 + n_in] >= 0, "an output is missing");
    s->op = (int)op, s->n_in = (int)n_in, s->args = words + 4, s->seconds = 0;
    *used = need;
    memset(&s->par, 0, sizeof s->par);
    return decode_params(spec->name, spec->params, spec->n_params, words + 4 + n_in + 1, (char *)&s->par, err, es) != 0;
}

static int check_operands(const struct xnor_model *m, const rt_step *s, char *err, size_t es) {
    const rt_op_spec *spec = &rt_op_specs[s->op];
    for (int i = 0; i < s->n_in; i++) {
        const rt_operand_spec *o = &spec->operands[i < spec->n_operands ? i : spec->n_operands - 1];
        const rt_tensor *t = rt_in(m, s, i);
        if (!t) {
            RT_NEED(o->flags & RT_OPERAND_OPTIONAL, "%s: operand %s is missing", spec->name, o->name);
            continue;
        }
        RT_NEED(o->types & (1u << t->type), "%s: operand %s has type %d", spec->name, o->name, t->type);
        RT_NEED(!(o->flags & RT_OPERAND_CONST) || t->kind == RT_CONST, "%s: operand %s must be a constant", spec->name,
                o->name);
    }
    return 1;
}

typedef union {
    max_align_t align;
    unsigned char bytes[RT_MAX_PLAN];
} plan_buffer;

int rt_check_step(const struct xnor_model *m, rt_step *s, int threads, char *err, size_t es) {
    const rt_op_impl *impl = IMPLS[s->op];
    plan_buffer plan;
    size_t extra = 0, ws = 0;
    RT_NEED(impl->plan_bytes <= sizeof plan, "%s: its plan does not fit", rt_op_name(s->op));
    if (!check_operands(m, s, err, es) || !impl->check(m, s, &plan, threads, &extra, &ws, err, es)) return 0;
    RT_NEED(extra <= ((size_t)1 << 48) && ws <= ((size_t)1 << 48), "%s: its state is too large", rt_op_name(s->op));
    s->aux_bytes = (impl->plan_bytes ? RT_ALIGN64(impl->plan_bytes) : 0) + extra, s->ws_bytes = ws;
    return 1;
}

int rt_prepare_step(struct xnor_model *m, rt_step *s, char *err, size_t es) {
    const rt_op_impl *impl = IMPLS[s->op];
    size_t extra = 0, ws = 0;
    if (impl->plan_bytes && !impl->check(m, s, s->aux, m->sized_threads, &extra, &ws, err, es)) return 0;
    return impl->prepare ? impl->prepare(m, s, err, es) : 1;
}

int rt_threads_of(const struct xnor_model *m) {
    int nt = m->num_threads > 0 ? m->num_threads : xnor_num_threads();
    return nt > m->sized_threads ? m->sized_threads : nt;
}

xnor_status rt_run_step(struct xnor_model *m, const rt_step *s, size_t index) {
    xnor_status st = IMPLS[s->op]->run(m, s, rt_threads_of(m));
    if (st != XNOR_OK) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s", xnor_last_error());
        xnor_fail(st, "step %zu (%s): %s", index, rt_op_name(s->op), msg);
    }
    return st;
}

/* ---- for the op files ---------------------------------------------------------------------------- */

int rt_same_dims(const rt_tensor *a, const rt_tensor *b) {
    if (a->rank != b->rank) return 0;
    for (size_t d = 0; d < a->rank; d++)
        if (a->dims[d] != b->dims[d]) return 0;
    return 1;
}

size_t rt_prod(const size_t *dims, size_t lo, size_t hi) {
    size_t p = 1;
    for (size_t d = lo; d < hi; d++) p *= dims[d]; /* bounded: the loader checked every tensor's whole product */
    return p;
}

int rt_nhwc(const rt_tensor *t, size_t *n, size_t *h, size_t *w, size_t *c) {
    if (t->rank == 4) { *n = t->dims[0], *h = t->dims[1], *w = t->dims[2], *c = t->dims[3]; return 1; }
    if (t->rank == 2) { *n = t->dims[0], *h = 1, *w = 1, *c = t->dims[1]; return 1; }
    return 0;
}

int rt_check_out_nhwc(const rt_tensor *y, int type, size_t n, size_t oh, size_t ow, size_t c, char *err, size_t es) {
    size_t yn, yh, yw, yc;
    RT_NEED(y->type == type, "the output has type %d, not %d", y->type, type);
    RT_NEED(rt_nhwc(y, &yn, &yh, &yw, &yc) && yn == n && yh == oh && yw == ow && yc == c,
            "the output's shape is not (%zu, %zu, %zu, %zu)", n, oh, ow, c);
    return 1;
}

int rt_set_window(xnor_conv_params *p, size_t kernel_h, size_t kernel_w, const rt_window *w, size_t *oh, size_t *ow,
                  char *err, size_t es) {
    RT_NEED(kernel_h >= 1 && kernel_w >= 1 && kernel_h <= ((size_t)1 << 16) && kernel_w <= ((size_t)1 << 16) &&
            kernel_h * kernel_w <= ((size_t)1 << 16), "kernel %zux%zu has more than 2^16 taps", kernel_h, kernel_w);
    p->kernel_h = kernel_h, p->kernel_w = kernel_w;
    p->stride_h = (size_t)w->stride_h, p->stride_w = (size_t)w->stride_w;
    p->dilation_h = (size_t)w->dilation_h, p->dilation_w = (size_t)w->dilation_w;
    p->pad_top = (size_t)w->pad_top, p->pad_bottom = (size_t)w->pad_bottom;
    p->pad_left = (size_t)w->pad_left, p->pad_right = (size_t)w->pad_right;
    RT_NEED(xnor_conv_output_size(p, oh, ow) == XNOR_OK, "%s", xnor_last_error());
    return 1;
}
