/* Loading a `.xnor` model: the file header, the program (program.h), the checks, the one arena; and
 * running it.
 *
 * Nothing in the file is trusted.  Counts are bounded before anything is sized from them, every size is
 * computed with overflow checks, every offset is checked against the section it points into, and each
 * step is checked against its op's declaration and rules (steps.c, ops/) before the arena is allocated.
 * Loading uses one temporary block for the tables while it checks them (freed before returning) and
 * one allocation that lives with the model.  Every failure returns a status and leaves its message in
 * xnor_last_error().
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, for profiling (200809L: snprintf stays declared on macOS too) */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "program.h"

#define HEADER_BYTES 64
#define FORMAT_VERSION 2
#define FLAG_PROGRAM 1u
#define ALIGN 64

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

static size_t type_size(int64_t type) {
    switch (type) {
    case XNOR_T_F32: return 4;
    case XNOR_T_U8: return 1;
    case XNOR_T_I32: return 4;
    case XNOR_T_BITS: return 8;
    default: return 0;
    }
}

/* Everything a load needs while checking, before the arena exists. */
typedef struct {
    const unsigned char *file, *data, *prog;
    size_t size, data_size, prog_off, prog_words;
    size_t n_tensors, n_steps, n_inputs, n_outputs, n_strings, n_step_words, step_base;
    const unsigned char *strings;
    rt_tensor *tensors;            /* the temporary tables */
    rt_step *steps;
    int64_t *words;
    size_t *order;
    int64_t io[2 * RT_MAX_IO];
    int threads;
    size_t aux_total, ws_max, act_bytes;
    xnor_status status;            /* of the failure in err: XNOR_EINVAL but for an allocation */
    char err[256];
} loader;

static int fail(loader *l, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->err, sizeof l->err, fmt, ap);
    va_end(ap);
    return 0;
}

static int64_t word(const loader *l, size_t i) { return (int64_t)rd64(l->prog + 8 * i); }

/* The file header: magic, version, sections, checksum; where the program lies. */
static int read_header(loader *l) {
    const unsigned char *buf = l->file;
    if (l->size < HEADER_BYTES) return fail(l, "%zu bytes is shorter than the header", l->size);
    if (memcmp(buf, "XNORINF\0", 8)) return fail(l, "not a .xnor file (bad magic)");
    uint32_t version = rd32(buf + 8), flags = rd32(buf + 12);
    uint64_t json_off = rd64(buf + 16), json_size = rd64(buf + 24), data_off = rd64(buf + 32), data_size = rd64(buf + 40);
    uint64_t prog_off = rd64(buf + 52), prog_size = rd32(buf + 60);
    if (version != FORMAT_VERSION)
        return fail(l, "format version %u, this runtime reads %d (convert the model again)", version, FORMAT_VERSION);
    if (flags & ~FLAG_PROGRAM) return fail(l, "unknown flags %#x", flags);
    if (!(flags & FLAG_PROGRAM))
        return fail(l, "the file holds no program for the C runtime: convert the model again with `xnorinfer convert` "
                       "(it says why when a model cannot be lowered)");
    if (json_off != HEADER_BYTES || json_size > l->size || json_off + json_size > l->size)
        return fail(l, "the graph description lies outside the file");
    if (data_off % ALIGN || data_off < json_off + json_size || data_off > l->size || data_size != l->size - data_off)
        return fail(l, "the data section does not end the file");
    if (crc32_of(buf + HEADER_BYTES, l->size - HEADER_BYTES) != rd32(buf + 48))
        return fail(l, "checksum mismatch (the file is corrupted)");
    if (prog_off % 8 || prog_off > data_size || prog_size > data_size - prog_off || prog_size < 64 || prog_size % 8)
        return fail(l, "the program lies outside the data section");
    l->data = buf + data_off, l->data_size = (size_t)data_size;
    l->prog = l->data + prog_off, l->prog_off = (size_t)prog_off, l->prog_words = (size_t)prog_size / 8;
    return 1;
}

/* The program's header words: counts bounded, sizes consistent, the schema ours. */
static int read_counts(loader *l) {
    if ((uint64_t)word(l, 0) != RT_MAGIC) return fail(l, "bad program magic");
    int64_t c[6];
    for (int i = 0; i < 6; i++) c[i] = word(l, 1 + (size_t)i);
    if (c[0] < 0 || c[0] > RT_MAX_TENSORS || c[1] < 1 || c[1] > RT_MAX_STEPS || c[2] < 1 || c[2] > RT_MAX_IO ||
        c[3] < 1 || c[3] > RT_MAX_IO || c[4] < 0 || c[4] > RT_MAX_STRINGS || c[5] < 0 || c[5] > (int64_t)l->prog_words)
        return fail(l, "program counts out of range");
    if (word(l, 7) != RT_SCHEMA_HASH)
        return fail(l, "the program was written for another version of the runtime's op schema: convert the model "
                       "again with this version's `xnorinfer convert`");
    l->n_tensors = (size_t)c[0], l->n_steps = (size_t)c[1], l->n_inputs = (size_t)c[2], l->n_outputs = (size_t)c[3];
    l->n_strings = (size_t)c[4], l->n_step_words = (size_t)c[5];
    l->step_base = 8 + 12 * l->n_tensors + l->n_inputs + l->n_outputs;
    if (l->step_base + l->n_step_words + (l->n_strings + 7) / 8 != l->prog_words)
        return fail(l, "program size %zu words does not match its counts", l->prog_words);
    l->strings = l->prog + 8 * (l->step_base + l->n_step_words);
    return 1;
}

static int read_dims(loader *l, size_t i, size_t base, rt_tensor *t) {
    for (size_t d = 0; d < XNOR_MAX_RANK; d++) {
        int64_t dim = word(l, base + 2 + d);
        if (d >= t->rank) {
            if (dim != 0) return fail(l, "tensor %zu: dim %zu past its rank is %lld, not 0", i, d, (long long)dim);
            continue;
        }
        if (dim < 1 || dim > ((int64_t)1 << 40)) return fail(l, "tensor %zu: dim %zu is %lld", i, d, (long long)dim);
        t->dims[d] = (size_t)dim;
        if (!mul_ok(t->count, t->dims[d], &t->count)) return fail(l, "tensor %zu: too many elements", i);
    }
    return 1;
}

static int read_tensor(loader *l, size_t i, rt_tensor *t) {
    size_t base = 8 + 12 * i;
    int64_t type = word(l, base), rank = word(l, base + 1), kind = word(l, base + 8);
    int64_t offset = word(l, base + 9), nbytes = word(l, base + 10), name = word(l, base + 11);
    memset(t, 0, sizeof *t);
    if (!type_size(type)) return fail(l, "tensor %zu: unknown type %lld", i, (long long)type);
    if (rank < 0 || rank > XNOR_MAX_RANK) return fail(l, "tensor %zu: rank %lld is not in [0, %d]", i, (long long)rank, XNOR_MAX_RANK);
    t->type = (int)type, t->rank = (size_t)rank, t->count = 1;
    if (!read_dims(l, i, base, t)) return 0;
    if (!mul_ok(t->count, type_size(t->type), &t->nbytes) || nbytes < 0 || (size_t)nbytes != t->nbytes)
        return fail(l, "tensor %zu: %lld bytes do not match its shape (%zu elements)", i, (long long)nbytes, t->count);
    if (kind != RT_CONST && kind != RT_ACT) return fail(l, "tensor %zu: unknown kind %lld", i, (long long)kind);
    t->kind = (int)kind;
    if (t->kind == RT_CONST) {
        size_t end;
        if (offset < 0 || (size_t)offset % ALIGN || !add_ok((size_t)offset, t->nbytes, &end) || end > l->data_size)
            return fail(l, "tensor %zu: constant bytes [%lld, +%zu) lie outside the data section of %zu bytes", i,
                        (long long)offset, t->nbytes, l->data_size);
        t->offset = (size_t)offset;
    } else if (offset != 0) {
        return fail(l, "tensor %zu: an activation has offset %lld, not 0", i, (long long)offset);
    }
    t->name = "";
    if (name != -1) {
        if (name < 0 || (size_t)name >= l->n_strings) return fail(l, "tensor %zu: name offset out of range", i);
        if (!memchr(l->strings + name, 0, l->n_strings - (size_t)name)) return fail(l, "tensor %zu: name is not terminated", i);
        t->name = (const char *)l->strings + name;
    }
    t->first = -2, t->last = -1; /* -2: never written */
    return 1;
}

/* The inputs and outputs: activations, each input listed once. */
static int read_io(loader *l) {
    for (size_t i = 0; i < l->n_inputs + l->n_outputs; i++) {
        int64_t t = word(l, 8 + 12 * l->n_tensors + i);
        int input = i < l->n_inputs;
        if (t < 0 || (size_t)t >= l->n_tensors || l->tensors[t].kind != RT_ACT)
            return fail(l, "%s %zu: tensor %lld is not an activation", input ? "input" : "output",
                        input ? i : i - l->n_inputs, (long long)t);
        l->io[input ? i : RT_MAX_IO + i - l->n_inputs] = t;
    }
    for (size_t i = 0; i < l->n_inputs; i++) {
        rt_tensor *t = &l->tensors[l->io[i]];
        if (t->first != -2) return fail(l, "input %zu is listed twice", i);
        t->first = -1;
    }
    return 1;
}

/* Step s reads its operands after they were written and writes its output exactly once. */
static int note_lifetimes(loader *l, size_t s) {
    const rt_step *st = &l->steps[s];
    for (int a = 0; a <= st->n_in; a++) {
        int64_t t = st->args[a];
        if (t < 0) continue;
        rt_tensor *tt = &l->tensors[t];
        if (a < st->n_in) {
            if (tt->kind == RT_ACT && tt->first == -2)
                return fail(l, "step %zu reads tensor %lld (%s) before any step writes it", s, (long long)t, tt->name);
            if (tt->kind == RT_ACT) tt->last = (int)s;
        } else {
            if (tt->kind != RT_ACT || tt->first != -2)
                return fail(l, "step %zu writes tensor %lld (%s), which is a constant, an input or written before", s,
                            (long long)t, tt->name);
            tt->first = (int)s, tt->last = (int)s;
        }
    }
    return 1;
}

/* Each step's record, decoded by its op's declaration; the writer / reader order of every activation. */
static int read_steps(loader *l) {
    for (size_t i = 0; i < l->n_step_words; i++) l->words[i] = word(l, l->step_base + i);
    size_t pos = 0;
    for (size_t s = 0; s < l->n_steps; s++) {
        char msg[200] = "";
        size_t used;
        if (!rt_decode_step(l->words + pos, l->n_step_words - pos, l->n_tensors, &l->steps[s], &used, msg, sizeof msg))
            return fail(l, "step %zu: %s", s, msg);
        if (!note_lifetimes(l, s)) return 0;
        pos += used;
    }
    if (pos != l->n_step_words) return fail(l, "%zu step words left over", l->n_step_words - pos);
    for (size_t i = 0; i < l->n_outputs; i++) {
        rt_tensor *t = &l->tensors[l->io[RT_MAX_IO + i]];
        if (t->first == -2) return fail(l, "output %zu (%s) is never written", i, t->name);
        t->last = (int)l->n_steps; /* alive to the end: copied out after the last step */
    }
    for (size_t i = 0; i < l->n_tensors; i++)
        if (l->tensors[i].kind == RT_ACT && l->tensors[i].first == -2) l->tensors[i].first = l->tensors[i].last = -1;
    return 1;
}

/* Activation offsets: tensors that are alive at the same step never share bytes.  Largest first, each
 * at the lowest offset clear of the already placed tensors whose lifetimes overlap its own. */
static int place(loader *l) {
    rt_tensor *ts = l->tensors;
    size_t count = 0, *order = l->order;
    for (size_t i = 0; i < l->n_tensors; i++)
        if (ts[i].kind == RT_ACT) order[count++] = i;
    for (size_t i = 1; i < count; i++) { /* insertion sort by size, descending (stable, deterministic) */
        size_t v = order[i], j = i;
        while (j > 0 && ts[order[j - 1]].nbytes < ts[v].nbytes) { order[j] = order[j - 1]; j--; }
        order[j] = v;
    }
    l->act_bytes = 0;
    for (size_t a = 0; a < count; a++) {
        rt_tensor *t = &ts[order[a]];
        size_t off = 0, size = align_up(t->nbytes), end;
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
        if (!add_ok(off, size, &end)) return fail(l, "activations too large");
        if (end > l->act_bytes) l->act_bytes = end;
    }
    return 1;
}

/* Each step against its op's rules; the sizes of the ops' state and scratch. */
static int check_steps(loader *l) {
    struct xnor_model probe; /* the fields the checks read, pointing at the temporary tables */
    memset(&probe, 0, sizeof probe);
    probe.tensors = l->tensors, probe.steps = l->steps, probe.n_tensors = l->n_tensors, probe.n_steps = l->n_steps;
    for (size_t i = 0; i < l->n_tensors; i++)
        if (l->tensors[i].kind == RT_CONST) l->tensors[i].data = (char *)(l->data + l->tensors[i].offset);
    l->aux_total = l->ws_max = 0;
    for (size_t s = 0; s < l->n_steps; s++) {
        char msg[200] = "";
        if (!rt_check_step(&probe, &l->steps[s], l->threads, msg, sizeof msg))
            return fail(l, "step %zu (%s): %s", s, rt_op_name(l->steps[s].op), msg);
        if (!add_ok(l->aux_total, align_up(l->steps[s].aux_bytes), &l->aux_total)) return fail(l, "step %zu: state too large", s);
        if (l->steps[s].ws_bytes > l->ws_max) l->ws_max = l->steps[s].ws_bytes;
    }
    return 1;
}

/* The checks, in the temporary tables (l->tensors ... l->order, allocated by the caller). */
static int check_program(loader *l) {
    for (size_t i = 0; i < l->n_tensors; i++)
        if (!read_tensor(l, i, &l->tensors[i])) return 0;
    return read_io(l) && read_steps(l) && check_steps(l) && place(l);
}

/* The arena: [model | tensors | steps | step words | file copy | state | activations | scratch]. */
static xnor_model *build(loader *l, const xnor_model_options *opts, int copy) {
    size_t tables = align_up(sizeof(struct xnor_model)) + align_up(l->n_tensors * sizeof(rt_tensor)) +
                    align_up(l->n_steps * sizeof(rt_step)) + align_up(l->n_step_words * sizeof(int64_t));
    size_t total = tables, file_copy = copy ? align_up(l->size) : 0;
    size_t limit = opts && opts->max_arena_bytes ? opts->max_arena_bytes : ((size_t)4 << 30);
    if (!add_ok(total, file_copy, &total) || !add_ok(total, l->aux_total, &total) || !add_ok(total, l->act_bytes, &total) ||
        !add_ok(total, align_up(l->ws_max), &total) || total > limit)
        return fail(l, "the model needs %zu bytes, more than the limit of %zu", total, limit), NULL;
    char *arena = aligned_alloc(ALIGN, total);
    if (!arena) return l->status = XNOR_ENOMEM, fail(l, "cannot allocate the model's %zu bytes", total), NULL;
    memset(arena, 0, tables);
    struct xnor_model *m = (struct xnor_model *)arena;
    char *p = arena + align_up(sizeof *m);
    m->tensors = (rt_tensor *)p, p += align_up(l->n_tensors * sizeof(rt_tensor));
    m->steps = (rt_step *)p, p += align_up(l->n_steps * sizeof(rt_step));
    m->words = (int64_t *)p, p += align_up(l->n_step_words * sizeof(int64_t));
    const unsigned char *base = l->file;
    if (copy) memcpy(p, l->file, l->size), base = (const unsigned char *)p, p += file_copy;
    m->data = base + (l->data - l->file), m->data_size = l->data_size;
    memcpy(m->tensors, l->tensors, l->n_tensors * sizeof(rt_tensor));
    memcpy(m->steps, l->steps, l->n_steps * sizeof(rt_step));
    memcpy(m->words, l->words, l->n_step_words * sizeof(int64_t));
    memcpy(m->io, l->io, sizeof m->io);
    m->n_tensors = l->n_tensors, m->n_steps = l->n_steps, m->n_inputs = l->n_inputs, m->n_outputs = l->n_outputs;
    m->num_threads = opts && opts->num_threads > 0 ? opts->num_threads : 0;
    m->sized_threads = l->threads, m->arena_bytes = total;
    atomic_init(&m->busy, 0);
    const unsigned char *strings = m->data + l->prog_off + (l->strings - l->prog);
    for (size_t i = 0; i < l->n_tensors; i++) { /* re-point into the arena's copies */
        rt_tensor *t = &m->tensors[i];
        if (t->kind == RT_CONST) t->data = (char *)(m->data + t->offset);
        t->name = t->name[0] ? (const char *)strings + ((const unsigned char *)t->name - l->strings) : "";
    }
    for (size_t s = 0; s < l->n_steps; s++) {
        rt_step *st = &m->steps[s];
        st->args = m->words + (st->args - l->words);
        st->aux = st->aux_bytes ? p : NULL;
        p += align_up(st->aux_bytes);
    }
    for (size_t i = 0; i < l->n_tensors; i++)
        if (m->tensors[i].kind == RT_ACT) m->tensors[i].data = p + m->tensors[i].offset;
    m->scratch = p + l->act_bytes, m->scratch_bytes = align_up(l->ws_max);
    return m;
}

/* The ops' state (weights laid out for the ISA), once the arena exists. */
static int prepare(loader *l, struct xnor_model *m) {
    m->isa = xnor_isa_active();
    const char *prof = getenv("XNORINFER_PROFILE");
    m->profile = prof && (prof[0] == '1' || prof[0] == '2') && !prof[1] ? prof[0] - '0' : 0;
    for (size_t s = 0; s < m->n_steps; s++) {
        char msg[200] = "";
        if (!rt_prepare_step(m, &m->steps[s], msg, sizeof msg))
            return fail(l, "step %zu (%s): %s", s, rt_op_name(m->steps[s].op), msg);
    }
    return 1;
}

static xnor_status open_impl(const unsigned char *buf, size_t size, const xnor_model_options *opts, int copy,
                             xnor_model **out) {
    if (!out) return xnor_fail(XNOR_EINVAL, "null model pointer");
    *out = NULL;
    if (!buf) return xnor_fail(XNOR_EINVAL, "null buffer");
    xnor_status st = xnor_init();
    if (st != XNOR_OK) return st;
    if (!copy && ((uintptr_t)buf % 16)) return xnor_fail(XNOR_EINVAL, "the model bytes must be 16-byte aligned (as malloc returns)");
    loader l;
    memset(&l, 0, sizeof l);
    l.file = buf, l.size = size, l.status = XNOR_EINVAL;
    if (!read_header(&l) || !read_counts(&l)) return xnor_fail(XNOR_EINVAL, "%s", l.err);
    size_t tmp_bytes = l.n_tensors * sizeof(rt_tensor) + l.n_steps * sizeof(rt_step) + l.n_step_words * sizeof(int64_t) +
                       l.n_tensors * sizeof(size_t) + 64;
    char *tmp = malloc(tmp_bytes);
    if (!tmp) return xnor_fail(XNOR_ENOMEM, "cannot allocate %zu bytes to check the program", tmp_bytes);
    l.tensors = (rt_tensor *)tmp, l.steps = (rt_step *)(l.tensors + l.n_tensors);
    l.words = (int64_t *)(l.steps + l.n_steps), l.order = (size_t *)(l.words + l.n_step_words);
    l.threads = opts && opts->num_threads > 0 ? opts->num_threads : xnor_num_threads();
    if (l.threads > 256) l.threads = 256;
    xnor_model *m = NULL;
    if (check_program(&l) && (m = build(&l, opts, copy)) != NULL) {
        if (prepare(&l, m)) *out = m;
        else free(m);
    }
    free(tmp);
    return *out ? XNOR_OK : xnor_fail(l.status, "%s", l.err);
}

xnor_status xnor_model_open_memory(const void *data, size_t size, const xnor_model_options *opts, xnor_model **model) {
    return open_impl(data, size, opts, 0, model);
}

xnor_status xnor_model_open_file(const char *path, const xnor_model_options *opts, xnor_model **model) {
    if (model) *model = NULL;
    if (!path || !model) return xnor_fail(XNOR_EINVAL, "null pointer");
    FILE *f = fopen(path, "rb");
    if (!f) return xnor_fail(XNOR_EINVAL, "cannot open %s", path);
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    size_t limit = opts && opts->max_arena_bytes ? opts->max_arena_bytes : ((size_t)4 << 30);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0 || (size_t)size > limit) {
        fclose(f);
        return xnor_fail(XNOR_EINVAL, "%s: cannot read its size, or it is larger than the limit", path);
    }
    /* Read into a temporary buffer, then the model keeps its own copy inside its one allocation. */
    unsigned char *buf = malloc(size ? (size_t)size : 1);
    if (!buf) { fclose(f); return xnor_fail(XNOR_ENOMEM, "cannot allocate %ld bytes", size); }
    size_t got = fread(buf, 1, (size_t)size, f);
    fclose(f);
    xnor_status st = got == (size_t)size ? open_impl(buf, (size_t)size, opts, 1, model)
                                         : xnor_fail(XNOR_EINVAL, "%s: short read", path);
    free(buf);
    return st;
}

static void print_profile(const xnor_model *m) {
    double total = 0, runs = (double)(m->runs ? m->runs : 1);
    for (int op = 1; op < RT_OP_COUNT; op++) total += m->op_seconds[op];
    if (m->profile == 2) {
        fprintf(stderr, "xnorinfer runtime profile (XNORINFER_PROFILE=2), ms per run by step:\n");
        for (size_t s = 0; s < m->n_steps; s++) {
            const rt_step *st = &m->steps[s];
            const rt_tensor *y = &m->tensors[st->args[st->n_in]];
            char dims[96] = "";
            for (size_t d = 0, at = 0; d < y->rank && at < sizeof dims - 24; d++)
                at += (size_t)snprintf(dims + at, sizeof dims - at, d ? "x%zu" : "%zu", y->dims[d]);
            fprintf(stderr, "  %4zu %-10s %-22s %8.3f ms  %5.1f%%\n", s, rt_op_name(st->op), dims,
                    st->seconds * 1e3 / runs, 100.0 * st->seconds / (total > 0 ? total : 1));
        }
    }
    fprintf(stderr, "xnorinfer runtime profile (XNORINFER_PROFILE=%d), ms per run by op:\n", m->profile);
    for (int op = 1; op < RT_OP_COUNT; op++)
        if (m->op_calls[op])
            fprintf(stderr, "  %-10s %8.3f ms  %5.1f%%  (%llu calls)\n", rt_op_name(op), m->op_seconds[op] * 1e3 / runs,
                    100.0 * m->op_seconds[op] / (total > 0 ? total : 1), (unsigned long long)m->op_calls[op]);
}

void xnor_model_close(xnor_model *m) {
    if (m && m->profile) print_profile(m);
    free(m);
}

size_t xnor_model_num_inputs(const xnor_model *m) { return m ? m->n_inputs : 0; }
size_t xnor_model_num_outputs(const xnor_model *m) { return m ? m->n_outputs : 0; }
size_t xnor_model_arena_bytes(const xnor_model *m) { return m ? m->arena_bytes : 0; }

static xnor_status info_of(const xnor_model *m, size_t index, size_t count, const int64_t *io, xnor_tensor_info *info) {
    if (!m || !info) return xnor_fail(XNOR_EINVAL, "null model or info");
    if (index >= count) return xnor_fail(XNOR_EINVAL, "index %zu: the model has %zu", index, count);
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

xnor_status xnor_model_set_profiling(xnor_model *m, int on) {
    if (!m) return xnor_fail(XNOR_EINVAL, "null model");
    m->tracing = on != 0;
    for (size_t s = 0; s < m->n_steps; s++) m->steps[s].last_start = m->steps[s].last_dur = 0;
    return XNOR_OK;
}

size_t xnor_model_num_steps(const xnor_model *m) { return m ? m->n_steps : 0; }

xnor_status xnor_model_step_info(const xnor_model *m, size_t step, xnor_step_info *info) {
    if (!m || !info) return xnor_fail(XNOR_EINVAL, "null model or info");
    if (step >= m->n_steps) return xnor_fail(XNOR_EINVAL, "step %zu: the model has %zu", step, m->n_steps);
    const rt_step *st = &m->steps[step];
    size_t present = 0;
    for (int k = 0; k < st->n_in; k++) present += st->args[k] >= 0;
    info->op = rt_op_name(st->op);
    info->name = m->tensors[st->args[st->n_in]].name;
    info->n_inputs = present;
    info->threads = m->last_threads;
    info->start_us = st->last_start * 1e6, info->dur_us = st->last_dur * 1e6;
    return XNOR_OK;
}

xnor_status xnor_model_step_times(const xnor_model *m, double *times, size_t count) {
    if (!m || !times) return xnor_fail(XNOR_EINVAL, "null model or times");
    if (count / 2 < m->n_steps) return xnor_fail(XNOR_EINVAL, "times holds %zu doubles; the model's %zu steps need %zu",
                                                 count, m->n_steps, 2 * m->n_steps);
    for (size_t s = 0; s < m->n_steps; s++)
        times[2 * s] = m->steps[s].last_start * 1e6, times[2 * s + 1] = m->steps[s].last_dur * 1e6;
    return XNOR_OK;
}

xnor_status xnor_model_step_operand(const xnor_model *m, size_t step, size_t k, xnor_tensor_info *info) {
    if (!m || !info) return xnor_fail(XNOR_EINVAL, "null model or info");
    if (step >= m->n_steps) return xnor_fail(XNOR_EINVAL, "step %zu: the model has %zu", step, m->n_steps);
    const rt_step *st = &m->steps[step];
    int64_t present[RT_MAX_ARGS + 1];
    size_t n = 0;
    for (int a = 0; a <= st->n_in; a++)
        if (st->args[a] >= 0) present[n++] = st->args[a];
    if (k >= n) return xnor_fail(XNOR_EINVAL, "operand %zu: step %zu has %zu", k, step, n);
    return info_of(m, k, n, present, info);
}

xnor_status xnor_model_set_num_threads(xnor_model *m, int num_threads) {
    if (!m || num_threads < 0) return xnor_fail(XNOR_EINVAL, "null model or negative thread count");
    m->num_threads = num_threads;
    return XNOR_OK;
}

static double seconds_since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0->tv_nsec);
}

/* Each step, timed when profiling (XNORINFER_PROFILE or xnor_model_set_profiling) is on: one branch per
 * step when it is off. */
static xnor_status run_steps(xnor_model *m) {
    int timed = m->profile || m->tracing;
    struct timespec run0;
    m->last_threads = rt_threads_of(m);
    if (m->last_threads > 1) xnor_pool_wake(); /* the workers wake while the first steps run */
    if (timed) clock_gettime(CLOCK_MONOTONIC, &run0);
    for (size_t s = 0; s < m->n_steps; s++) {
        rt_step *st = &m->steps[s];
        double start = timed ? seconds_since(&run0) : 0;
        xnor_status status = rt_run_step(m, st, s);
        if (status != XNOR_OK) return status;
        if (timed) {
            double dt = seconds_since(&run0) - start;
            st->last_start = start, st->last_dur = dt;
            st->seconds += dt;
            m->op_seconds[st->op] += dt;
            m->op_calls[st->op]++;
        }
    }
    m->runs++;
    return XNOR_OK;
}

static xnor_status run_checked(xnor_model *m, const void *const *inputs, void *const *outputs) {
    if (!inputs || !outputs) return xnor_fail(XNOR_EINVAL, "null inputs or outputs array");
    if (xnor_isa_active() != m->isa)
        return xnor_fail(XNOR_EINVAL, "the weights were laid out for ISA %s but %s is active: open the model again",
                         xnor_isa_name(m->isa), xnor_isa_name(xnor_isa_active()));
    for (size_t i = 0; i < m->n_inputs; i++)
        if (!inputs[i]) return xnor_fail(XNOR_EINVAL, "input %zu is NULL", i);
    for (size_t i = 0; i < m->n_outputs; i++)
        if (!outputs[i]) return xnor_fail(XNOR_EINVAL, "output %zu is NULL", i);
    for (size_t i = 0; i < m->n_inputs; i++) {
        const rt_tensor *t = &m->tensors[m->io[i]];
        memcpy(t->data, inputs[i], t->nbytes);
    }
    xnor_status st = run_steps(m);
    if (st != XNOR_OK) return st;
    for (size_t i = 0; i < m->n_outputs; i++) {
        const rt_tensor *t = &m->tensors[m->io[RT_MAX_IO + i]];
        memcpy(outputs[i], t->data, t->nbytes);
    }
    return XNOR_OK;
}

xnor_status xnor_model_run(xnor_model *m, const void *const *inputs, void *const *outputs) {
    if (!m) return xnor_fail(XNOR_EINVAL, "null model");
    int expected = 0;
    if (!atomic_compare_exchange_strong(&m->busy, &expected, 1))
        return xnor_fail(XNOR_EBUSY, "the model is already running on another thread");
    xnor_status st = run_checked(m, inputs, outputs);
    atomic_store(&m->busy, 0);
    return st;
}
