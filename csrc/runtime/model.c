/* Loading a `.xnor` model: the file header, the program (program.h), the checks, the one arena.
 *
 * Nothing in the file is trusted.  Counts are bounded before anything is sized from them, every size is
 * computed with overflow checks, every offset is checked against the section it points into, and each
 * step is checked against its op's rules (run.c) before the arena is allocated.  Loading uses one
 * temporary block for the tables while it checks them (freed before returning) and one allocation that
 * lives with the model.
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime, for XNORINFER_PROFILE */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "program.h"
#include "schema.h"

#define HEADER_BYTES 64
#define FLAG_PROGRAM 1u
#define ALIGN 64

static int fail(char *err, size_t err_size, const char *fmt, ...) {
    if (err && err_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return 0;
}

static uint32_t rd32(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const unsigned char *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static uint32_t crc32_of(const unsigned char *p, size_t n) {
    uint32_t table[256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return crc ^ 0xFFFFFFFFu;
}

static size_t align_up(size_t v) { return (v + ALIGN - 1) & ~(size_t)(ALIGN - 1); }

/* a + b and a * b that report overflow (and anything past 2^62, far beyond any real model). */
static int add_ok(size_t a, size_t b, size_t *r) { *r = a + b; return *r >= a && *r < ((size_t)1 << 62); }
static int mul_ok(size_t a, size_t b, size_t *r) {
    if (a && b > (((size_t)1 << 62) / a)) return 0;
    *r = a * b;
    return 1;
}

static size_t type_size(int type) {
    switch (type) {
    case XNOR_T_F32: return 4;
    case XNOR_T_U8: return 1;
    case XNOR_T_I32: return 4;
    case XNOR_T_BITS: return 8;
    default: return 0;
    }
}

/* Everything open needs to know while checking, before the arena exists. */
typedef struct {
    const unsigned char *prog;
    size_t prog_words;
    size_t n_tensors, n_steps, n_inputs, n_outputs, n_strings, n_step_words;
    const unsigned char *strings;
} program_view;

static int64_t word(const program_view *v, size_t i) { return (int64_t)rd64(v->prog + 8 * i); }

static int parse_tensor(const program_view *v, size_t i, const unsigned char *data, size_t data_size,
                        rt_tensor *t, char *err, size_t es) {
    size_t base = 8 + 12 * i;
    int64_t type = word(v, base), rank = word(v, base + 1), kind = word(v, base + 8);
    int64_t offset = word(v, base + 9), nbytes = word(v, base + 10), name = word(v, base + 11);
    memset(t, 0, sizeof *t);
    if (!type_size((int)(type >= 0 && type < 16 ? type : 0))) return fail(err, es, "tensor %zu: unknown type %lld", i, (long long)type);
    if (rank < 0 || rank > XNOR_MAX_RANK) return fail(err, es, "tensor %zu: rank %lld is not in [0, %d]", i, (long long)rank, XNOR_MAX_RANK);
    t->type = (int)type, t->rank = (size_t)rank, t->count = 1;
    for (size_t d = 0; d < XNOR_MAX_RANK; d++) {
        int64_t dim = word(v, base + 2 + d);
        if (d >= t->rank) {
            if (dim != 0) return fail(err, es, "tensor %zu: dim %zu past its rank is %lld, not 0", i, d, (long long)dim);
            continue;
        }
        if (dim < 1 || dim > ((int64_t)1 << 40)) return fail(err, es, "tensor %zu: dim %zu is %lld", i, d, (long long)dim);
        t->dims[d] = (size_t)dim;
        if (!mul_ok(t->count, t->dims[d], &t->count)) return fail(err, es, "tensor %zu: too many elements", i);
    }
    if (!mul_ok(t->count, type_size(t->type), &t->nbytes) || nbytes < 0 || (size_t)nbytes != t->nbytes)
        return fail(err, es, "tensor %zu: %lld bytes do not match its shape (%zu elements)", i, (long long)nbytes, t->count);
    if (kind != RT_CONST && kind != RT_ACT) return fail(err, es, "tensor %zu: unknown kind %lld", i, (long long)kind);
    t->kind = (int)kind;
    if (t->kind == RT_CONST) {
        size_t end;
        if (offset < 0 || (size_t)offset % ALIGN || !add_ok((size_t)offset, t->nbytes, &end) || end > data_size)
            return fail(err, es, "tensor %zu: constant bytes [%lld, +%zu) lie outside the data section of %zu bytes",
                        i, (long long)offset, t->nbytes, data_size);
        t->offset = (size_t)offset;
        t->data = (char *)(data + offset);
    } else if (offset != 0) {
        return fail(err, es, "tensor %zu: an activation has offset %lld, not 0", i, (long long)offset);
    }
    if (name != -1) {
        if (name < 0 || (size_t)name >= v->n_strings) return fail(err, es, "tensor %zu: name offset out of range", i);
        const unsigned char *s = v->strings + name;
        if (!memchr(s, 0, v->n_strings - (size_t)name)) return fail(err, es, "tensor %zu: name is not terminated", i);
        t->name = (const char *)s;
    } else {
        t->name = "";
    }
    t->first = -2, t->last = -1; /* -2: never written */
    return 1;
}

/* Activation offsets: tensors that are alive at the same step never share bytes.  Largest first, each
 * at the lowest offset clear of the already placed tensors whose lifetimes overlap its own. */
static int place(rt_tensor *ts, size_t n, size_t *order, size_t *total, char *err, size_t es) {
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        if (ts[i].kind == RT_ACT) order[count++] = i;
    for (size_t i = 1; i < count; i++) { /* insertion sort by size, descending (stable, deterministic) */
        size_t v = order[i], j = i;
        while (j > 0 && ts[order[j - 1]].nbytes < ts[v].nbytes) { order[j] = order[j - 1]; j--; }
        order[j] = v;
    }
    *total = 0;
    for (size_t a = 0; a < count; a++) {
        rt_tensor *t = &ts[order[a]];
        size_t off = 0, size = align_up(t->nbytes);
        for (int moved = 1; moved;) {
            moved = 0;
            for (size_t b = 0; b < a; b++) {
                const rt_tensor *u = &ts[order[b]];
                if (u->last < t->first || t->last < u->first) continue; /* never alive together */
                size_t u_end = u->offset + align_up(u->nbytes);
                if (off < u_end && u->offset < off + size) { off = u_end; moved = 1; }
            }
        }
        t->offset = off;
        size_t end;
        if (!add_ok(off, size, &end)) return fail(err, es, "activations too large");
        if (end > *total) *total = end;
    }
    return 1;
}

static xnor_status open_impl(const unsigned char *buf, size_t size, const xnor_model_options *opts, int copy,
                             xnor_model **out, char *err, size_t es) {
    if (!out) return fail(err, es, "null model pointer"), XNOR_EINVAL;
    *out = NULL;
    if (!buf) return fail(err, es, "null buffer"), XNOR_EINVAL;
    xnor_status st = xnor_init();
    if (st != XNOR_OK) return fail(err, es, "%s", xnor_last_error()), st;
    if (!copy && ((uintptr_t)buf % 16)) return fail(err, es, "the model bytes must be 16-byte aligned (as malloc returns)"), XNOR_EINVAL;
    /* ---- header ---- */
    if (size < HEADER_BYTES) return fail(err, es, "%zu bytes is shorter than the header", size), XNOR_EINVAL;
    if (memcmp(buf, "XNORINF\0", 8)) return fail(err, es, "not a .xnor file (bad magic)"), XNOR_EINVAL;
    uint32_t version = rd32(buf + 8), flags = rd32(buf + 12);
    uint64_t json_off = rd64(buf + 16), json_size = rd64(buf + 24), data_off = rd64(buf + 32), data_size = rd64(buf + 40);
    uint64_t prog_off = rd64(buf + 52), prog_size = rd32(buf + 60);
    if (version != 2) return fail(err, es, "format version %u, this runtime reads 2 (convert the model again)", version), XNOR_EINVAL;
    if (flags & ~FLAG_PROGRAM) return fail(err, es, "unknown flags %#x", flags), XNOR_EINVAL;
    if (!(flags & FLAG_PROGRAM))
        return fail(err, es, "the file holds no program for the C runtime: convert the model again with "
                             "`xnorinfer convert` (it says why when a model cannot be lowered)"), XNOR_EINVAL;
    if (json_off != HEADER_BYTES || json_size > size || json_off + json_size > size)
        return fail(err, es, "the graph description lies outside the file"), XNOR_EINVAL;
    if (data_off % ALIGN || data_off < json_off + json_size || data_off > size || data_size != size - data_off)
        return fail(err, es, "the data section does not end the file"), XNOR_EINVAL;
    if (crc32_of(buf + HEADER_BYTES, size - HEADER_BYTES) != rd32(buf + 48))
        return fail(err, es, "checksum mismatch (the file is corrupted)"), XNOR_EINVAL;
    if (prog_off % 8 || prog_off > data_size || prog_size > data_size - prog_off || prog_size < 64 || prog_size % 8)
        return fail(err, es, "the program lies outside the data section"), XNOR_EINVAL;
    const unsigned char *data = buf + data_off;

    /* ---- program counts ---- */
    program_view v = {data + prog_off, (size_t)prog_size / 8, 0, 0, 0, 0, 0, 0, NULL};
    if ((uint64_t)word(&v, 0) != RT_MAGIC) return fail(err, es, "bad program magic"), XNOR_EINVAL;
    int64_t c[6];
    for (int i = 0; i < 6; i++) c[i] = word(&v, 1 + (size_t)i);
    if (c[0] < 0 || c[0] > RT_MAX_TENSORS || c[1] < 1 || c[1] > RT_MAX_STEPS || c[2] < 1 || c[2] > RT_MAX_IO ||
        c[3] < 1 || c[3] > RT_MAX_IO || c[4] < 0 || c[4] > RT_MAX_STRINGS || c[5] < 0 || c[5] > (int64_t)v.prog_words)
        return fail(err, es, "program counts out of range"), XNOR_EINVAL;
    if (word(&v, 7) != RT_SCHEMA_HASH)
        return fail(err, es, "the program was written for another version of the runtime's op schema: convert the "
                             "model again with this version's `xnorinfer convert`"), XNOR_EINVAL;
    v.n_tensors = (size_t)c[0], v.n_steps = (size_t)c[1], v.n_inputs = (size_t)c[2], v.n_outputs = (size_t)c[3];
    v.n_strings = (size_t)c[4], v.n_step_words = (size_t)c[5];
    size_t step_base = 8 + 12 * v.n_tensors + v.n_inputs + v.n_outputs;
    size_t string_words = (v.n_strings + 7) / 8;
    if (step_base + v.n_step_words + string_words != v.prog_words)
        return fail(err, es, "program size %zu words does not match its counts", v.prog_words), XNOR_EINVAL;
    v.strings = v.prog + 8 * (step_base + v.n_step_words);

    /* ---- tables, checked in a temporary block ---- */
    size_t tmp_bytes = v.n_tensors * sizeof(rt_tensor) + v.n_steps * sizeof(rt_step) +
                       v.n_step_words * sizeof(int64_t) + v.n_tensors * sizeof(size_t) + 64;
    char *tmp = malloc(tmp_bytes);
    if (!tmp) return fail(err, es, "cannot allocate %zu bytes to check the program", tmp_bytes), XNOR_ENOMEM;
    rt_tensor *ts = (rt_tensor *)tmp;
    rt_step *ss = (rt_step *)(ts + v.n_tensors);
    int64_t *words = (int64_t *)(ss + v.n_steps);
    size_t *order = (size_t *)(words + v.n_step_words);
    st = XNOR_EINVAL;
    struct xnor_model probe; /* the fields check_step reads, pointing at the temporary tables */
    memset(&probe, 0, sizeof probe);
    for (size_t i = 0; i < v.n_tensors; i++)
        if (!parse_tensor(&v, i, data, (size_t)data_size, &ts[i], err, es)) goto done;
    for (size_t i = 0; i < v.n_step_words; i++) words[i] = word(&v, step_base + i);
    for (size_t i = 0; i < v.n_inputs + v.n_outputs; i++) {
        int64_t t = word(&v, 8 + 12 * v.n_tensors + i);
        if (t < 0 || (size_t)t >= v.n_tensors || ts[t].kind != RT_ACT) {
            fail(err, es, "%s %zu: tensor %lld is not an activation", i < v.n_inputs ? "input" : "output",
                 i < v.n_inputs ? i : i - v.n_inputs, (long long)t);
            goto done;
        }
        probe.io[i < v.n_inputs ? i : RT_MAX_IO + i - v.n_inputs] = t;
    }
    for (size_t i = 0; i < v.n_inputs; i++) {
        rt_tensor *t = &ts[probe.io[i]];
        if (t->first != -2) { fail(err, es, "input %zu is listed twice", i); goto done; }
        t->first = -1;
    }
    /* steps: bounds of each record, then the writer/reader order of every activation */
    size_t pos = 0;
    for (size_t s = 0; s < v.n_steps; s++) {
        rt_step *st_ = &ss[s];
        if (v.n_step_words - pos < 4) { fail(err, es, "step %zu: truncated", s); goto done; }
        int64_t op = words[pos], n_in = words[pos + 1], n_out = words[pos + 2], n_par = words[pos + 3];
        if (op < 1 || op >= OP_COUNT || n_in < 0 || n_in > RT_MAX_ARGS || n_out < 1 || n_out > 1 ||
            n_par < 0 || n_par > RT_MAX_PARAMS) {
            fail(err, es, "step %zu: op %lld with %lld inputs, %lld outputs, %lld parameters is not valid", s,
                 (long long)op, (long long)n_in, (long long)n_out, (long long)n_par);
            goto done;
        }
        size_t need = 4 + (size_t)(n_in + n_out + n_par);
        if (v.n_step_words - pos < need) { fail(err, es, "step %zu: truncated", s); goto done; }
        st_->op = (int)op, st_->n_in = (int)n_in, st_->n_out = (int)n_out, st_->n_par = (int)n_par;
        st_->seconds = 0;
        st_->args = words + pos + 4, st_->par = st_->args + n_in + n_out;
        for (int a = 0; a < st_->n_in + st_->n_out; a++) {
            int64_t t = st_->args[a];
            if (t < -1 || t >= (int64_t)v.n_tensors) { fail(err, es, "step %zu: tensor index %lld out of range", s, (long long)t); goto done; }
            if (t < 0) {
                if (a >= st_->n_in) { fail(err, es, "step %zu: an output is missing", s); goto done; }
                continue;
            }
            rt_tensor *tt = &ts[t];
            if (a < st_->n_in) {
                if (tt->kind == RT_ACT && tt->first == -2) {
                    fail(err, es, "step %zu reads tensor %lld (%s) before any step writes it", s, (long long)t, tt->name);
                    goto done;
                }
                if (tt->kind == RT_ACT) tt->last = (int)s;
            } else {
                if (tt->kind != RT_ACT || tt->first != -2) {
                    fail(err, es, "step %zu writes tensor %lld (%s), which is a constant, an input or written before", s,
                         (long long)t, tt->name);
                    goto done;
                }
                tt->first = (int)s, tt->last = (int)s;
            }
        }
        pos += need;
    }
    if (pos != v.n_step_words) { fail(err, es, "%zu step words left over", v.n_step_words - pos); goto done; }
    for (size_t i = 0; i < v.n_outputs; i++) {
        rt_tensor *t = &ts[probe.io[RT_MAX_IO + i]];
        if (t->first == -2) { fail(err, es, "output %zu (%s) is never written", i, t->name); goto done; }
        t->last = (int)v.n_steps; /* alive to the end: copied out after the last step */
    }
    for (size_t i = 0; i < v.n_tensors; i++)
        if (ts[i].kind == RT_ACT && ts[i].first == -2) ts[i].first = ts[i].last = -1; /* unused: no lifetime clash */

    /* ---- each step against its op's rules; sizes of its state and scratch ---- */
    int threads = opts && opts->num_threads > 0 ? opts->num_threads : xnor_num_threads();
    if (threads > 256) threads = 256;
    probe.tensors = ts, probe.steps = ss, probe.n_tensors = v.n_tensors, probe.n_steps = v.n_steps;
    probe.data = data, probe.data_size = (size_t)data_size;
    size_t aux_total = 0, ws_max = 0;
    for (size_t s = 0; s < v.n_steps; s++) {
        char msg[200] = "";
        if (!rt_check_step(&probe, &ss[s], msg, sizeof msg, threads)) {
            fail(err, es, "step %zu: %s", s, msg);
            goto done;
        }
        if (!add_ok(aux_total, align_up(ss[s].aux_bytes), &aux_total)) { fail(err, es, "step %zu: state too large", s); goto done; }
        if (ss[s].ws_bytes > ws_max) ws_max = ss[s].ws_bytes;
    }
    size_t act_bytes;
    if (!place(ts, v.n_tensors, order, &act_bytes, err, es)) goto done;

    /* ---- the arena: [model | tensors | steps | step words | file copy | state | activations | scratch] ---- */
    size_t tables = align_up(sizeof(struct xnor_model)) + align_up(v.n_tensors * sizeof(rt_tensor)) +
                    align_up(v.n_steps * sizeof(rt_step)) + align_up(v.n_step_words * sizeof(int64_t));
    size_t total = tables, file_copy = copy ? align_up(size) : 0;
    size_t limit = opts && opts->max_arena_bytes ? opts->max_arena_bytes : ((size_t)4 << 30);
    if (!add_ok(total, file_copy, &total) || !add_ok(total, aux_total, &total) || !add_ok(total, act_bytes, &total) ||
        !add_ok(total, align_up(ws_max), &total) || total > limit) {
        fail(err, es, "the model needs %zu bytes, more than the limit of %zu", total, limit);
        goto done;
    }
    char *arena = aligned_alloc(ALIGN, total);
    if (!arena) { fail(err, es, "cannot allocate the model's %zu bytes", total); st = XNOR_ENOMEM; goto done; }
    memset(arena, 0, tables);
    struct xnor_model *m = (struct xnor_model *)arena;
    char *p = arena + align_up(sizeof *m);
    m->tensors = (rt_tensor *)p; p += align_up(v.n_tensors * sizeof(rt_tensor));
    m->steps = (rt_step *)p; p += align_up(v.n_steps * sizeof(rt_step));
    m->words = (int64_t *)p; p += align_up(v.n_step_words * sizeof(int64_t));
    const unsigned char *base = buf;
    if (copy) { memcpy(p, buf, size); base = (const unsigned char *)p; p += file_copy; }
    m->data = base + data_off, m->data_size = (size_t)data_size;
    memcpy(m->tensors, ts, v.n_tensors * sizeof(rt_tensor));
    memcpy(m->steps, ss, v.n_steps * sizeof(rt_step));
    memcpy(m->words, words, v.n_step_words * sizeof(int64_t));
    memcpy(m->io, probe.io, sizeof m->io);
    m->n_tensors = v.n_tensors, m->n_steps = v.n_steps, m->n_inputs = v.n_inputs, m->n_outputs = v.n_outputs;
    m->num_threads = opts && opts->num_threads > 0 ? opts->num_threads : 0;
    m->sized_threads = threads;
    m->arena_bytes = total;
    atomic_init(&m->busy, 0);
    for (size_t i = 0; i < v.n_tensors; i++) { /* re-point into the arena's copies */
        rt_tensor *t = &m->tensors[i];
        if (t->kind == RT_CONST) t->data = (char *)(m->data + t->offset);
        if (t->name[0]) t->name = (const char *)(m->data + prog_off) + (t->name - (const char *)v.prog);
        else t->name = "";
    }
    for (size_t s = 0; s < v.n_steps; s++) {
        rt_step *st_ = &m->steps[s];
        st_->args = m->words + (st_->args - words), st_->par = m->words + (st_->par - words);
        st_->aux = st_->aux_bytes ? p : NULL;
        p += align_up(st_->aux_bytes);
    }
    char *acts = p;
    for (size_t i = 0; i < v.n_tensors; i++)
        if (m->tensors[i].kind == RT_ACT) m->tensors[i].data = acts + m->tensors[i].offset;
    m->scratch = acts + act_bytes, m->scratch_bytes = align_up(ws_max);
    m->isa = xnor_isa_active();
    const char *prof = getenv("XNORINFER_PROFILE");
    m->profile = prof && (prof[0] == '1' || prof[0] == '2') && !prof[1] ? prof[0] - '0' : 0;
    for (size_t s = 0; s < v.n_steps; s++) {
        char msg[200] = "";
        if (!rt_prepare_step(m, &m->steps[s], msg, sizeof msg)) {
            fail(err, es, "step %zu: %s", s, msg);
            free(arena);
            goto done;
        }
    }
    *out = m;
    st = XNOR_OK;
done:
    free(tmp);
    return st;
}

xnor_status xnor_model_open_memory(const void *data, size_t size, const xnor_model_options *opts, xnor_model **model,
                                   char *err, size_t err_size) {
    if (err && err_size) err[0] = 0;
    return open_impl(data, size, opts, 0, model, err, err_size);
}

xnor_status xnor_model_open_file(const char *path, const xnor_model_options *opts, xnor_model **model, char *err,
                                 size_t err_size) {
    if (err && err_size) err[0] = 0;
    if (model) *model = NULL;
    if (!path || !model) return fail(err, err_size, "null pointer"), XNOR_EINVAL;
    FILE *f = fopen(path, "rb");
    if (!f) return fail(err, err_size, "cannot open %s", path), XNOR_EINVAL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    size_t limit = opts && opts->max_arena_bytes ? opts->max_arena_bytes : ((size_t)4 << 30);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0 || (size_t)size > limit) {
        fclose(f);
        return fail(err, err_size, "%s: cannot read its size, or it is larger than the limit", path), XNOR_EINVAL;
    }
    /* Read into a temporary buffer, then the model keeps its own copy inside its one allocation. */
    unsigned char *buf = malloc(size ? (size_t)size : 1);
    if (!buf) { fclose(f); return fail(err, err_size, "cannot allocate %ld bytes", size), XNOR_ENOMEM; }
    size_t got = fread(buf, 1, (size_t)size, f);
    fclose(f);
    xnor_status st = got == (size_t)size ? open_impl(buf, (size_t)size, opts, 1, model, err, err_size)
                                         : (fail(err, err_size, "%s: short read", path), XNOR_EINVAL);
    free(buf);
    return st;
}

static const char *const OP_NAMES[OP_COUNT] = {"", "copy", "pack", "bconv", "bmaxpool", "fconv", "pool", "binary",
                                               "where", "unary", "batchnorm", "softmax", "mean", "transpose", "concat"};

void xnor_model_close(xnor_model *m) {
    if (m && m->profile) {
        double total = 0;
        for (int op = 1; op < OP_COUNT; op++) total += m->op_seconds[op];
        double runs = (double)(m->runs ? m->runs : 1);
        if (m->profile == 2) {
            fprintf(stderr, "xnorinfer runtime profile (XNORINFER_PROFILE=2), ms per run by step:\n");
            for (size_t s = 0; s < m->n_steps; s++) {
                const rt_step *st = &m->steps[s];
                const rt_tensor *y = &m->tensors[st->args[st->n_in]];
                char dims[96] = "";
                for (size_t d = 0, at = 0; d < y->rank && at < sizeof dims - 24; d++)
                    at += (size_t)snprintf(dims + at, sizeof dims - at, d ? "x%zu" : "%zu", y->dims[d]);
                fprintf(stderr, "  %4zu %-10s %-22s %8.3f ms  %5.1f%%\n", s, OP_NAMES[st->op], dims,
                        st->seconds * 1e3 / runs, 100.0 * st->seconds / (total > 0 ? total : 1));
            }
        }
        fprintf(stderr, "xnorinfer runtime profile (XNORINFER_PROFILE=%d), ms per run by op:\n", m->profile);
        for (int op = 1; op < OP_COUNT; op++)
            if (m->op_calls[op])
                fprintf(stderr, "  %-10s %8.3f ms  %5.1f%%  (%llu calls)\n", OP_NAMES[op],
                        m->op_seconds[op] * 1e3 / runs,
                        100.0 * m->op_seconds[op] / (total > 0 ? total : 1), (unsigned long long)m->op_calls[op]);
    }
    free(m);
}

size_t xnor_model_num_inputs(const xnor_model *m) { return m ? m->n_inputs : 0; }
size_t xnor_model_num_outputs(const xnor_model *m) { return m ? m->n_outputs : 0; }
size_t xnor_model_arena_bytes(const xnor_model *m) { return m ? m->arena_bytes : 0; }
const char *xnor_model_error(const xnor_model *m) { return m ? m->error : "null model"; }

static xnor_status info_of(const xnor_model *m, size_t index, size_t count, const int64_t *io, xnor_tensor_info *info) {
    if (!m || !info) return XNOR_EINVAL;
    if (index >= count) return XNOR_EINVAL;
    const rt_tensor *t = &m->tensors[io[index]];
    info->name = t->name, info->type = (xnor_tensor_type)t->type, info->rank = t->rank, info->nbytes = t->nbytes;
    for (size_t d = 0; d < XNOR_MAX_RANK; d++) info->dims[d] = d < t->rank ? t->dims[d] : 0;
    return XNOR_OK;
}

xnor_status xnor_model_input_info(const xnor_model *m, size_t index, xnor_tensor_info *info) {
    return info_of(m, index, m ? m->n_inputs : 0, m ? m->io : NULL, info);
}

xnor_status xnor_model_output_info(const xnor_model *m, size_t index, xnor_tensor_info *info) {
    return info_of(m, index, m ? m->n_outputs : 0, m ? m->io + RT_MAX_IO : NULL, info);
}

xnor_status xnor_model_set_num_threads(xnor_model *m, int num_threads) {
    if (!m || num_threads < 0) return XNOR_EINVAL;
    m->num_threads = num_threads;
    return XNOR_OK;
}

xnor_status xnor_model_run(xnor_model *m, const void *const *inputs, void *const *outputs) {
    if (!m) return XNOR_EINVAL;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&m->busy, &expected, 1)) {
        snprintf(m->error, sizeof m->error, "the model is already running on another thread");
        return XNOR_EBUSY;
    }
    xnor_status st = XNOR_OK;
    m->error[0] = 0;
    if (!inputs || !outputs) {
        snprintf(m->error, sizeof m->error, "null inputs or outputs array");
        st = XNOR_EINVAL;
        goto out;
    }
    if (xnor_isa_active() != m->isa) {
        snprintf(m->error, sizeof m->error, "the weights were laid out for ISA %s but %s is active: open the model again",
                 xnor_isa_name(m->isa), xnor_isa_name(xnor_isa_active()));
        st = XNOR_EINVAL;
        goto out;
    }
    for (size_t i = 0; i < m->n_inputs; i++) {
        if (!inputs[i]) { snprintf(m->error, sizeof m->error, "input %zu is NULL", i); st = XNOR_EINVAL; goto out; }
        const rt_tensor *t = &m->tensors[m->io[i]];
        memcpy(t->data, inputs[i], t->nbytes);
    }
    for (size_t s = 0; s < m->n_steps; s++) {
        struct timespec t0, t1;
        if (m->profile) clock_gettime(CLOCK_MONOTONIC, &t0);
        if ((st = rt_run_step(m, &m->steps[s], s)) != XNOR_OK) goto out;
        if (m->profile) {
            clock_gettime(CLOCK_MONOTONIC, &t1);
            double dt = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
            m->op_seconds[m->steps[s].op] += dt;
            m->steps[s].seconds += dt;
            m->op_calls[m->steps[s].op]++;
        }
    }
    m->runs++;
    for (size_t i = 0; i < m->n_outputs; i++) {
        if (!outputs[i]) { snprintf(m->error, sizeof m->error, "output %zu is NULL", i); st = XNOR_EINVAL; goto out; }
        const rt_tensor *t = &m->tensors[m->io[RT_MAX_IO + i]];
        memcpy(outputs[i], t->data, t->nbytes);
    }
out:
    atomic_store(&m->busy, 0);
    return st;
}
