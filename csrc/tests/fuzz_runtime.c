/* Fuzz harness for the C runtime's loader and ops: a .xnor file from untrusted bytes.
 *
 * One entry, LLVMFuzzerTestOneInput: open the bytes with xnor_model_open_memory (a 64-byte aligned copy
 * of exactly `size` bytes, so ASan sees any read past the end; the arena limited to 256 MiB), and when
 * they open: query every info, then run on pseudo-random inputs, on zeros, and on the same random
 * inputs again (the two random runs must give the same bytes: a run must not depend on what an earlier
 * run left in the arena), then close.
 *
 * Built with -fsanitize=fuzzer (clang, -DXNOR_LIBFUZZER) libFuzzer drives it.  Otherwise main() is a
 * deterministic mutation driver, usable with gcc:
 *
 *   fuzz_runtime [-n CASES] [-s SEED] [-c CASE] [-o CRASH_DIR] [-v] SEED.xnor...
 *
 * Each case is one seed file mutated by 1..8 of: bit flips, overwritten bytes, an aligned int64 word
 * of the program set to an interesting value (0, 1, -1, 2^31, 2^62, 65, another word's value, ...),
 * tensor records changed consistently (a dim or rank with its byte count updated), step parameters and
 * operand indices, truncation, duplication of a range; most mutations hit the program section (its
 * place is in the header), and in 15 cases of 16 the CRC-32 at header byte 48 is recomputed so the
 * mutation gets past the checksum to the program checks.  Case K of seed S depends only on (S, K):
 * `-c K` replays it alone.  -n 0 runs the files unchanged (how a saved crash is replayed).  Before a
 * sanitizer kills the process the case is written to CRASH_DIR (default /tmp/fuzz_crashes).
 * Exit status 0 only if every case ended without a sanitizer report or a failed check. */
#define _GNU_SOURCE /* dlopen with RTLD_NOLOAD, posix_memalign, getopt */
#include <dlfcn.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "xnorinfer.h"

#define ARENA_LIMIT ((size_t)256 << 20)

static size_t type_size(xnor_tensor_type t) {
    return t == XNOR_T_F32 || t == XNOR_T_I32 ? 4 : t == XNOR_T_U8 ? 1 : t == XNOR_T_BITS ? 8 : 0;
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* A failed check of the harness itself (not a sanitizer report): say what, keep the case, stop. */
static void (*on_failure)(void);
static void check_failed(const char *what) {
    fprintf(stderr, "CHECK FAILED: %s\n", what);
    if (on_failure) on_failure();
    abort();
}
#define CHECK(cond) do { if (!(cond)) check_failed(#cond); } while (0)

static void fill_random(void *p, size_t nbytes, xnor_tensor_type type, uint64_t *rng) {
    unsigned char *b = p;
    if (type != XNOR_T_F32) {
        for (size_t i = 0; i < nbytes; i++) b[i] = (unsigned char)splitmix(rng);
        if (type == XNOR_T_U8 && (*rng & 1)) for (size_t i = 0; i < nbytes; i++) b[i] &= 1;
        return;
    }
    static const uint32_t special[] = {0x00000000u, 0x80000000u, 0x7f800000u, 0xff800000u, 0x7fc00000u,
                                       0x00000001u, 0x7f7fffffu, 0xff7fffffu, 0x3f800000u, 0xbf800000u};
    int specials = splitmix(rng) % 4 == 0; /* zeros, infinities, NaNs, subnormals in one tensor of 4 */
    for (size_t i = 0; i + 4 <= nbytes; i += 4) {
        uint64_t r = splitmix(rng);
        float f;
        if (specials && (r & 63) == 0) memcpy(&f, &special[(r >> 8) % (sizeof special / sizeof special[0])], 4);
        else f = (float)((double)(int32_t)(r >> 32) / 536870912.0); /* uniform in [-4, 4) */
        memcpy(b + i, &f, 4);
    }
}

typedef struct {
    unsigned long long cases, opened, ran, run_failed;
} stats;
static stats totals;
static char last_error[256];

/* The profiling API after a profiled run: every step's info and operands readable, times in order,
 * indices past the end refused. */
static void check_profile(const xnor_model *m) {
    size_t n = xnor_model_num_steps(m);
    xnor_step_info si;
    xnor_tensor_info ti;
    double end = 0;
    CHECK(n > 0);
    for (size_t s = 0; s < n; s++) {
        CHECK(xnor_model_step_info(m, s, &si) == XNOR_OK);
        CHECK(si.op != NULL && si.op[0] && si.name != NULL && si.threads >= 1);
        CHECK(si.dur_us >= 0 && si.start_us >= end - 1e-3); /* steps run one after another */
        end = si.start_us + si.dur_us;
        for (size_t k = 0; k <= si.n_inputs; k++) {
            CHECK(xnor_model_step_operand(m, s, k, &ti) == XNOR_OK);
            CHECK(ti.rank <= XNOR_MAX_RANK && ti.nbytes > 0); /* rank 0: a scalar constant */
        }
        CHECK(xnor_model_step_operand(m, s, si.n_inputs + 1, &ti) != XNOR_OK);
    }
    double *times = malloc(2 * n * sizeof *times);
    CHECK(times != NULL && xnor_model_step_times(m, times, 2 * n) == XNOR_OK);
    for (size_t s = 0; s < n; s++) {
        CHECK(xnor_model_step_info(m, s, &si) == XNOR_OK);
        CHECK(times[2 * s] == si.start_us && times[2 * s + 1] == si.dur_us);
    }
    CHECK(xnor_model_step_times(m, times, 2 * n - 1) != XNOR_OK && xnor_model_step_times(m, NULL, 2 * n) != XNOR_OK);
    free(times);
    CHECK(xnor_model_step_info(m, n, &si) != XNOR_OK && xnor_model_step_info(m, 0, NULL) != XNOR_OK);
    CHECK(xnor_model_step_info(NULL, 0, &si) != XNOR_OK && xnor_model_step_operand(NULL, 0, 0, &ti) != XNOR_OK);
    CHECK(xnor_model_num_steps(NULL) == 0 && xnor_model_set_profiling(NULL, 1) != XNOR_OK);
}

/* One input: open, query, run three times, close.  `variant` picks thread counts and input values. */
static void exercise(const uint8_t *data, size_t size, uint64_t variant) {
    totals.cases++;
    last_error[0] = 0;
    void *buf = NULL;
    if (posix_memalign(&buf, 64, size ? size : 1)) abort();
    if (size) memcpy(buf, data, size);
    xnor_model_options opts = {(int)(variant & 1) + 1, ARENA_LIMIT};
    xnor_model *m = (xnor_model *)&opts; /* must come back NULL on failure */
    xnor_status st = xnor_model_open_memory(buf, size, &opts, &m);
    if (st != XNOR_OK) {
        const char *err = xnor_last_error();
        CHECK(m == NULL && err[0] != 0 && strlen(err) < 4096);
        snprintf(last_error, sizeof last_error, "%s", err);
        free(buf);
        return;
    }
    CHECK(m != NULL);
    totals.opened++;
    CHECK(xnor_model_arena_bytes(m) > 0 && xnor_model_arena_bytes(m) <= ARENA_LIMIT);
    size_t n_in = xnor_model_num_inputs(m), n_out = xnor_model_num_outputs(m);
    CHECK(n_in >= 1 && n_out >= 1 && n_in <= 256 && n_out <= 256);
    xnor_tensor_info info;
    CHECK(xnor_model_input_info(m, n_in, &info) != XNOR_OK && xnor_model_output_info(m, n_out, &info) != XNOR_OK);
    CHECK(xnor_model_input_info(m, 0, NULL) != XNOR_OK);
    void **in = calloc(n_in, sizeof *in), **out = calloc(n_out, sizeof *out), **again = calloc(n_out, sizeof *again);
    size_t *out_bytes = calloc(n_out, sizeof *out_bytes);
    uint64_t rng = variant * 0x2545f4914f6cdd1du + 1;
    for (size_t io = 0; io < n_in + n_out; io++) {
        int is_in = io < n_in;
        size_t i = is_in ? io : io - n_in;
        CHECK((is_in ? xnor_model_input_info(m, i, &info) : xnor_model_output_info(m, i, &info)) == XNOR_OK);
        CHECK(info.name != NULL && strlen(info.name) < (1u << 20));
        CHECK(info.rank <= XNOR_MAX_RANK && type_size(info.type) != 0);
        size_t count = 1;
        for (size_t d = 0; d < XNOR_MAX_RANK; d++) {
            if (d < info.rank) { CHECK(info.dims[d] >= 1); count *= info.dims[d]; }
            else CHECK(info.dims[d] == 0);
        }
        CHECK(info.nbytes == count * type_size(info.type) && info.nbytes <= ARENA_LIMIT);
        void *p = malloc(info.nbytes ? info.nbytes : 1); /* exact size: ASan catches a write past it */
        CHECK(p != NULL);
        if (is_in) {
            fill_random(p, info.nbytes, info.type, &rng);
            in[i] = p;
        } else {
            memset(p, 0xA5, info.nbytes);
            out[i] = p, out_bytes[i] = info.nbytes;
            again[i] = malloc(info.nbytes ? info.nbytes : 1);
            CHECK(again[i] != NULL);
            memset(again[i], 0x5A, info.nbytes);
        }
    }
    /* random inputs; zeros with another thread count; the random inputs again */
    xnor_status first = xnor_model_run(m, (const void *const *)in, out);
    if (first != XNOR_OK) CHECK(xnor_last_error()[0] != 0);
    void **zeros = calloc(n_in, sizeof *zeros);
    for (size_t i = 0; i < n_in; i++) {
        CHECK(xnor_model_input_info(m, i, &info) == XNOR_OK);
        zeros[i] = calloc(1, info.nbytes ? info.nbytes : 1);
    }
    CHECK(xnor_model_set_num_threads(m, (int)((variant >> 1) % 3)) == XNOR_OK); /* 0: the pool's size */
    xnor_status second = xnor_model_run(m, (const void *const *)zeros, again);
    if (second != XNOR_OK) CHECK(xnor_last_error()[0] != 0);
    CHECK(xnor_model_set_num_threads(m, (int)(variant & 1) + 1) == XNOR_OK);
    for (size_t i = 0; i < n_out; i++) memset(again[i], 0x5A, out_bytes[i]);
    CHECK(xnor_model_set_profiling(m, 1) == XNOR_OK); /* a profiled run gives the same results */
    xnor_status third = xnor_model_run(m, (const void *const *)in, again);
    if (third == XNOR_OK) check_profile(m);
    if (third != first) {
        fprintf(stderr, "status %d, then %d on the same inputs (%s)\n", first, third, xnor_last_error());
        check_failed("a run on the same inputs gives the same status");
    }
    if (first == XNOR_OK)
        for (size_t i = 0; i < n_out; i++)
            if (memcmp(out[i], again[i], out_bytes[i])) {
                fprintf(stderr, "output %zu differs between two runs on the same inputs\n", i);
                check_failed("a run does not depend on an earlier run");
            }
    if (first == XNOR_OK || second == XNOR_OK) totals.ran++;
    else totals.run_failed++;
    if (first != XNOR_OK) snprintf(last_error, sizeof last_error, "run: %s", xnor_last_error());
    CHECK(xnor_model_run(m, NULL, out) != XNOR_OK);
    xnor_model_close(m);
    for (size_t i = 0; i < n_in; i++) free(in[i]), free(zeros[i]);
    for (size_t i = 0; i < n_out; i++) free(out[i]), free(again[i]);
    free(in), free(out), free(again), free(zeros), free(out_bytes);
    free(buf);
}

/* CRC-32 as zlib.crc32 (which writes the files) computes it, four bits a step with the 16-entry nibble
 * table: a form of its own rather than a copy of the loader's byte table.  (Bit by bit, the checksum
 * made the harness ~1.7x slower; this form ~1.1x.) */
static uint32_t crc32_of(const unsigned char *p, size_t n) {
    static const uint32_t nibble[16] = {
        0x00000000u, 0x1db71064u, 0x3b6e20c8u, 0x26d930acu, 0x76dc4190u, 0x6b6b51f4u, 0x4db26158u, 0x5005713cu,
        0xedb88320u, 0xf00f9344u, 0xd6d6a3e8u, 0xcb61b38cu, 0x9b64c2b0u, 0x86d3d2d4u, 0xa00ae278u, 0xbdbdf21cu};
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ nibble[crc & 15];
        crc = (crc >> 4) ^ nibble[crc & 15];
    }
    return ~crc;
}

static uint64_t rd64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; } /* little-endian hosts */
static void wr64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }

/* The header's data size made to match the file again (after a truncation or an insertion). */
static void fix_data_size(unsigned char *buf, size_t size) {
    if (size < 64) return;
    uint64_t data_off = rd64(buf + 32);
    if (data_off <= size) wr64(buf + 40, size - data_off);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint64_t h = size; /* the variant: a function of the bytes only */
    for (size_t i = 0; i < size && i < 64; i++) h = h * 31 + data[size - 1 - i];
    exercise(data, size, h);
    return 0;
}

#ifdef XNOR_LIBFUZZER
/* libFuzzer's own mutations, then (15 times in 16) the checksum and data size made valid again, as the
 * driver below does: otherwise nearly every mutated input stops at the checksum. */
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed) {
    size = LLVMFuzzerMutate(data, size, max_size);
    if (size >= 64 && seed % 16) {
        if (seed % 4) fix_data_size(data, size);
        uint32_t crc = crc32_of(data + 64, size - 64);
        memcpy(data + 48, &crc, 4);
    }
    return size;
}
#else
/* ---- the deterministic mutation driver --------------------------------------------------------- */

typedef struct {
    const char *path;
    unsigned char *bytes;
    size_t size;
    size_t prog, prog_words;       /* byte offset of the program in the file, its size in words (0: none) */
    size_t n_tensors, io_word, step_word, n_step_words;
    size_t *steps;                 /* word index of each step record */
    size_t n_steps;
} seed_file;

static void parse_seed(seed_file *s) {
    s->prog_words = 0;
    if (s->size < 64) return;
    uint64_t data_off = rd64(s->bytes + 32), prog_off = rd64(s->bytes + 52), prog_size = 0;
    memcpy(&prog_size, s->bytes + 60, 4);
    prog_size &= 0xFFFFFFFFu;
    if (data_off > s->size || prog_off > s->size - data_off || prog_size > s->size - data_off - prog_off || prog_size < 64)
        return;
    s->prog = (size_t)(data_off + prog_off), s->prog_words = (size_t)prog_size / 8;
    const unsigned char *p = s->bytes + s->prog;
    s->n_tensors = rd64(p + 8);
    size_t n_in = rd64(p + 24), n_out = rd64(p + 32);
    s->n_step_words = rd64(p + 48);
    s->io_word = 8 + 12 * s->n_tensors;
    s->step_word = s->io_word + n_in + n_out;
    s->n_steps = 0;
    if (s->step_word + s->n_step_words > s->prog_words) { s->prog_words = 0; return; }
    s->steps = malloc((s->n_step_words / 4 + 1) * sizeof *s->steps);
    for (size_t w = 0; w + 4 <= s->n_step_words;) {
        const unsigned char *r = p + 8 * (s->step_word + w);
        s->steps[s->n_steps++] = s->step_word + w;
        w += 4 + rd64(r + 8) + rd64(r + 16) + rd64(r + 24);
    }
}

static uint64_t pick_interesting(const unsigned char *prog, size_t words, uint64_t old, uint64_t *rng) {
    static const uint64_t values[] = {
        0, 1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 63, 64, 65, 127, 128, 255, 256, 4096, 65535, 65536,
        (uint64_t)-1, (uint64_t)-2, (uint64_t)-64, (uint64_t)-65,
        UINT64_C(1) << 31, (UINT64_C(1) << 31) - 1, (UINT64_C(1) << 31) + 1, UINT64_C(1) << 32, (UINT64_C(1) << 32) - 1,
        UINT64_C(1) << 40, (UINT64_C(1) << 40) + 1, UINT64_C(1) << 62, (UINT64_C(1) << 62) - 1, UINT64_C(1) << 63,
        INT64_MAX, (uint64_t)INT32_MIN, (uint64_t)INT32_MAX,
        UINT64_C(0x7ff8000000000000), UINT64_C(0x7ff0000000000000), UINT64_C(0xfff0000000000000), /* nan, +-inf */
        UINT64_C(0x3ff0000000000000), UINT64_C(0xbff0000000000000)};                          /* 1.0, -1.0 */
    uint64_t r = splitmix(rng);
    switch (r % 8) {
    case 0: return words ? rd64(prog + 8 * ((r >> 8) % words)) : 0;          /* another word's value */
    case 1: return old + 1;
    case 2: return old - 1;
    case 3: return old * 2;
    case 4: return (uint64_t)((int64_t)((r >> 8) % 80) - 8);                  /* small, some negative */
    case 5: return splitmix(rng);
    default: return values[(r >> 8) % (sizeof values / sizeof values[0])];
    }
}

enum { M_BITS, M_BYTES, M_WORD, M_STEP_WORD, M_TENSOR, M_ARG, M_PARAM, M_CONST_DATA, M_SWAP, M_TRUNCATE,
       M_DUPLICATE, M_HEADER, M_KINDS };
/* Relative frequencies: most mutations keep the file well-formed enough to reach the step checks. */
static const int weights[M_KINDS] = {2, 2, 4, 3, 5, 3, 5, 2, 1, 1, 2, 1};

/* Mutates buf (capacity cap, *size bytes) made from seed s. */
static void mutate(const seed_file *s, unsigned char *buf, size_t *size, size_t cap, uint64_t *rng) {
    int n_mut = 1;
    uint64_t r = splitmix(rng) % 8;
    if (r >= 4) n_mut = 2;
    if (r >= 6) n_mut = 3 + (int)(splitmix(rng) % 6);
    int total_weight = 0;
    for (int i = 0; i < M_KINDS; i++) total_weight += weights[i];
    for (int k = 0; k < n_mut; k++) {
        int kind = 0;
        for (int pick = (int)(splitmix(rng) % (uint64_t)total_weight); pick >= weights[kind]; kind++) pick -= weights[kind];
        /* most kinds work on the program; bit flips, bytes and duplication go anywhere 1 time in 4 */
        int in_prog = s->prog_words && s->prog + 8 * s->prog_words <= *size &&
                      (kind > M_BYTES && kind != M_DUPLICATE ? 1 : splitmix(rng) % 4 != 0);
        if (!in_prog && kind != M_BITS && kind != M_BYTES && kind != M_DUPLICATE && kind != M_TRUNCATE) kind = M_HEADER;
        size_t lo = in_prog ? s->prog : 0, hi = in_prog ? s->prog + 8 * s->prog_words : *size;
        if (hi <= lo) continue;
        unsigned char *prog = buf + s->prog;
        switch (kind) {
        case M_BITS:
            for (int i = 0, n = 1 + (int)(splitmix(rng) % 3); i < n; i++) {
                size_t at = lo + splitmix(rng) % (hi - lo);
                buf[at] ^= (unsigned char)(1u << (splitmix(rng) % 8));
            }
            break;
        case M_BYTES: {
            static const unsigned char bytes[] = {0, 1, 0x7f, 0x80, 0xff, 0x40, 0x3f};
            size_t at = lo + splitmix(rng) % (hi - lo), n = 1 + splitmix(rng) % 8;
            for (size_t i = 0; i < n && at + i < hi; i++)
                buf[at + i] = splitmix(rng) & 1 ? bytes[splitmix(rng) % sizeof bytes] : (unsigned char)splitmix(rng);
            break;
        }
        case M_WORD: case M_STEP_WORD: { /* an aligned program word set to an interesting value */
            size_t w = splitmix(rng) % s->prog_words;
            if (kind == M_STEP_WORD && s->n_step_words) w = s->step_word + splitmix(rng) % s->n_step_words;
            wr64(prog + 8 * w, pick_interesting(prog, s->prog_words, rd64(prog + 8 * w), rng));
            break;
        }
        case M_TENSOR: { /* a tensor's dim (or rank, or type) changed, its byte count kept consistent */
            if (!s->n_tensors) break;
            unsigned char *t = prog + 8 * (8 + 12 * (splitmix(rng) % s->n_tensors));
            uint64_t rank = rd64(t + 8);
            if (rank > 6) break;
            uint64_t choice = splitmix(rng) % 8;
            if (choice == 0) { /* rank: shorter or longer, new dims 1 */
                uint64_t nr = splitmix(rng) % 7;
                for (uint64_t d = 0; d < 6; d++) wr64(t + 16 + 8 * d, d < nr ? (d < rank ? rd64(t + 16 + 8 * d) : 1) : 0);
                wr64(t + 8, rank = nr);
            } else if (choice == 1) {
                wr64(t, 1 + splitmix(rng) % 4);
            } else if (rank) {
                static const uint64_t dims[] = {1, 2, 3, 4, 7, 8, 31, 32, 63, 64, 65, 127, 128, 129, 1000};
                size_t d = splitmix(rng) % rank;
                uint64_t old = rd64(t + 16 + 8 * d);
                uint64_t v = splitmix(rng) & 1 ? dims[splitmix(rng) % 15] : old + 1 - 2 * (splitmix(rng) & 1);
                wr64(t + 16 + 8 * d, v ? v : 1);
            }
            uint64_t count = 1, type = rd64(t), ts = type == 1 || type == 3 ? 4 : type == 2 ? 1 : 8;
            for (uint64_t d = 0; d < rank; d++) count *= rd64(t + 16 + 8 * d);
            wr64(t + 80, count * ts);
            break;
        }
        case M_ARG: case M_PARAM: { /* a step's operand index or parameter */
            if (!s->n_steps) break;
            size_t at = s->steps[splitmix(rng) % s->n_steps];
            if (at + 4 > s->prog_words) break;
            uint64_t n_in = rd64(prog + 8 * (at + 1)), n_out = rd64(prog + 8 * (at + 2)), n_par = rd64(prog + 8 * (at + 3));
            if (n_in > 64 || n_out > 64 || n_par > 64) break; /* already mutated */
            uint64_t n_args = n_in + n_out;
            if (at + 4 + n_args + n_par > s->prog_words) break;
            if (kind == M_ARG && n_args) {
                uint64_t v = splitmix(rng) % 4 == 0 ? (uint64_t)-1 : splitmix(rng) % (s->n_tensors + 1);
                wr64(prog + 8 * (at + 4 + splitmix(rng) % n_args), v);
            } else if (n_par) {
                size_t w = at + 4 + n_args + splitmix(rng) % n_par;
                wr64(prog + 8 * w, pick_interesting(prog, s->prog_words, rd64(prog + 8 * w), rng));
            }
            break;
        }
        case M_CONST_DATA: { /* the values of a constant the program uses: weights, thresholds, BN vectors */
            if (!s->n_tensors) break;
            const unsigned char *t = prog + 8 * (8 + 12 * (splitmix(rng) % s->n_tensors));
            uint64_t offset = rd64(t + 72), nbytes = rd64(t + 80), data_off = rd64(buf + 32);
            if (rd64(t + 64) != 0 || !nbytes || data_off > *size || offset > *size - data_off ||
                nbytes > *size - data_off - offset) break;
            static const uint32_t values[] = {0x00000000u, 0x80000000u, 0x7f800000u, 0xff800000u, 0x7fc00000u,
                                              0x00000001u, 0x7f7fffffu, 0x80000001u, 0xffffffffu, 0x7fffffffu};
            unsigned char *p = buf + data_off + offset;
            for (int i = 0, n = 1 + (int)(splitmix(rng) % 4); i < n; i++) {
                size_t at = (size_t)(splitmix(rng) % nbytes) / 4 * 4;
                if (at + 4 <= nbytes) memcpy(p + at, &values[splitmix(rng) % 10], 4);
                else p[at] = (unsigned char)splitmix(rng);
            }
            break;
        }
        case M_SWAP: {
            size_t a = splitmix(rng) % s->prog_words, b = splitmix(rng) % s->prog_words;
            uint64_t va = rd64(prog + 8 * a);
            wr64(prog + 8 * a, rd64(prog + 8 * b)), wr64(prog + 8 * b, va);
            break;
        }
        case M_TRUNCATE: {
            size_t cut = splitmix(rng) % 4 ? splitmix(rng) % (1 + (*size < 512 ? *size : 512)) : splitmix(rng) % (*size + 1);
            *size -= cut < *size ? cut : *size;
            if (splitmix(rng) & 1) fix_data_size(buf, *size);
            break;
        }
        case M_DUPLICATE: { /* copy a range over another place, or insert it (the file grows) */
            size_t from = lo + splitmix(rng) % (hi - lo), len = 1 + splitmix(rng) % 256;
            if (splitmix(rng) & 1) len = 8 * (1 + splitmix(rng) % 24), from = lo + (from - lo) / 8 * 8;
            if (from + len > *size) len = *size - from;
            size_t to = lo + splitmix(rng) % (hi - lo);
            if (in_prog && (splitmix(rng) & 1)) to = lo + (to - lo) / 8 * 8;
            unsigned char tmp[256];
            memcpy(tmp, buf + from, len);
            if (splitmix(rng) & 1 || *size + len > cap) {
                if (to + len > *size) len = *size - to;
                memcpy(buf + to, tmp, len);
            } else {
                memmove(buf + to + len, buf + to, *size - to);
                memcpy(buf + to, tmp, len);
                *size += len;
                if (*size >= 64 && (splitmix(rng) % 4)) { /* keep the header's sizes in step, mostly */
                    fix_data_size(buf, *size);
                    if (in_prog && len % 8 == 0) {
                        uint32_t ps;
                        memcpy(&ps, buf + 60, 4);
                        ps += (uint32_t)len;
                        memcpy(buf + 60, &ps, 4);
                    }
                }
            }
            break;
        }
        default: { /* a header field */
            static const size_t fields[] = {8, 12, 16, 24, 32, 40, 52, 56, 60};
            size_t at = fields[splitmix(rng) % (sizeof fields / sizeof fields[0])];
            if (at + 8 <= *size) {
                uint64_t v = pick_interesting(buf, 8, rd64(buf + at), rng);
                if (at == 8 || at == 12 || at == 60) { uint32_t v32 = (uint32_t)v; memcpy(buf + at, &v32, 4); }
                else wr64(buf + at, v);
            }
            break;
        }
        }
    }
    if (*size >= 64 && splitmix(rng) % 16) {
        uint32_t crc = crc32_of(buf + 64, *size - 64);
        memcpy(buf + 48, &crc, 4);
    }
}

/* What the process was doing, for the death callback. */
static const char *crash_dir = "/tmp/fuzz_crashes";
static const unsigned char *cur_bytes;
static size_t cur_size;
static unsigned long long cur_seed, cur_case;
static const char *cur_path;

static void save_case(void) {
    if (!cur_bytes) return;
    char path[512];
    mkdir(crash_dir, 0777);
    snprintf(path, sizeof path, "%s/crash-s%llu-c%llu.xnor", crash_dir, cur_seed, cur_case);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(cur_bytes, 1, cur_size, f);
        fclose(f);
    }
    fprintf(stderr, "\n== case %llu of seed %llu (from %s, %zu bytes) saved as %s\n"
                    "== replay: fuzz_runtime -n 0 %s   (or: -s %llu -c %llu with the same seed files)\n",
            cur_case, cur_seed, cur_path ? cur_path : "?", cur_size, path, path, cur_seed, cur_case);
}

static volatile sig_atomic_t timeout_seconds = 60;
static void on_alarm(int sig) {
    (void)sig;
    fprintf(stderr, "case %llu ran longer than %d s\n", cur_case, (int)timeout_seconds);
    save_case();
    _exit(3);
}

/* Register the callback with every sanitizer runtime: gcc loads ASan and UBSan as two shared
 * libraries, each with its own copy of the death callback (clang links one runtime: the weak symbol). */
extern void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));
typedef void (*set_death_callback_fn)(void (*)(void));
static void on_death(void (*callback)(void)) {
    if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(callback);
    static const char *const runtimes[] = {"libasan.so.8", "libasan.so.6", "libasan.so.5", "libasan.so.9", "libubsan.so.1"};
    for (size_t i = 0; i < sizeof runtimes / sizeof runtimes[0]; i++) {
        void *h = dlopen(runtimes[i], RTLD_NOW | RTLD_NOLOAD);
        set_death_callback_fn set = h ? (set_death_callback_fn)dlsym(h, "__sanitizer_set_death_callback") : NULL;
        if (set) set(callback);
        if (h) dlclose(h);
    }
}

/* Error messages seen, with their digits dropped, to show how deep the mutations get. */
#define N_REASONS 512
typedef struct { char text[96]; unsigned long long count; } reason;
static reason reasons[N_REASONS];
static void count_reason(const char *msg) {
    char key[96];
    size_t k = 0;
    for (const char *p = msg; *p && k + 1 < sizeof key; p++)
        if (*p < '0' || *p > '9') key[k++] = *p;
        else if (!k || key[k - 1] != '#') key[k++] = '#';
    key[k] = 0;
    for (int i = 0; i < N_REASONS; i++) {
        if (!reasons[i].count) { snprintf(reasons[i].text, sizeof reasons[i].text, "%s", key); }
        if (!strcmp(reasons[i].text, key)) { reasons[i].count++; return; }
    }
}

static int by_count(const void *a, const void *b) {
    unsigned long long x = ((const reason *)a)->count, y = ((const reason *)b)->count;
    return x < y ? 1 : x > y ? -1 : 0;
}

int main(int argc, char **argv) {
    unsigned long long n_cases = 10000, seed = 1, only = (unsigned long long)-1;
    int verbose = 0, opt;
    while ((opt = getopt(argc, argv, "n:s:c:o:t:v")) != -1) {
        switch (opt) {
        case 'n': n_cases = strtoull(optarg, NULL, 0); break;
        case 's': seed = strtoull(optarg, NULL, 0); break;
        case 'c': only = strtoull(optarg, NULL, 0); break;
        case 'o': crash_dir = optarg; break;
        case 't': timeout_seconds = atoi(optarg); break;
        case 'v': verbose = 1; break;
        default:
            fprintf(stderr, "usage: %s [-n CASES] [-s SEED] [-c CASE] [-o CRASH_DIR] [-t SECONDS] [-v] SEED.xnor...\n", argv[0]);
            return 2;
        }
    }
    int n_seeds = argc - optind;
    if (n_seeds < 1) { fprintf(stderr, "no seed files\n"); return 2; }
    seed_file *seeds = calloc((size_t)n_seeds, sizeof *seeds);
    size_t cap = 0;
    for (int i = 0; i < n_seeds; i++) {
        seed_file *s = &seeds[i];
        s->path = argv[optind + i];
        FILE *f = fopen(s->path, "rb");
        long n = -1;
        if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) { fprintf(stderr, "cannot read %s\n", s->path); return 2; }
        s->bytes = malloc((size_t)n + 1);
        s->size = fread(s->bytes, 1, (size_t)n, f);
        fclose(f);
        parse_seed(s);
        if (s->size + 8192 > cap) cap = s->size + 8192;
    }
    on_death(save_case);
    on_failure = save_case;
    signal(SIGALRM, on_alarm);
    unsigned char *buf = malloc(cap);
    unsigned long long failed_checksum = 0;
    if (n_cases == 0) { /* the files as they are */
        for (int i = 0; i < n_seeds; i++) {
            cur_bytes = seeds[i].bytes, cur_size = seeds[i].size, cur_path = seeds[i].path, cur_case = 0;
            exercise(seeds[i].bytes, seeds[i].size, (uint64_t)i);
            printf("%s: %s\n", seeds[i].path, last_error[0] ? last_error : "opened and ran");
        }
    }
    for (unsigned long long c = only == (unsigned long long)-1 ? 0 : only; c < n_cases; c++) {
        uint64_t rng = seed * 0xd1342543de82ef95u + c * 0x9e3779b97f4a7c15u;
        splitmix(&rng);
        const seed_file *s = &seeds[splitmix(&rng) % (uint64_t)n_seeds];
        size_t size = s->size;
        memcpy(buf, s->bytes, size);
        mutate(s, buf, &size, cap, &rng);
        cur_bytes = buf, cur_size = size, cur_seed = seed, cur_case = c, cur_path = s->path;
        alarm((unsigned)timeout_seconds);
        exercise(buf, size, splitmix(&rng));
        alarm(0);
        if (last_error[0]) count_reason(last_error);
        if (strstr(last_error, "checksum")) failed_checksum++;
        if (only != (unsigned long long)-1) {
            printf("case %llu: %s\n", c, last_error[0] ? last_error : "opened and ran");
            break;
        }
        if (verbose && (c + 1) % 100000 == 0) fprintf(stderr, "%llu cases\n", c + 1);
    }
    cur_bytes = NULL;
    printf("seed %llu: %llu cases from %d seed files: %llu opened, %llu ran (%llu opened but every run failed), "
           "%llu rejected by the checksum; 0 crashes\n", seed, totals.cases, n_seeds, totals.opened, totals.ran,
           totals.run_failed, failed_checksum);
    if (verbose) {
        qsort(reasons, N_REASONS, sizeof reasons[0], by_count);
        printf("most frequent errors (digits as #):\n");
        for (int i = 0; i < 40 && reasons[i].count; i++) printf("%10llu  %s\n", reasons[i].count, reasons[i].text);
    }
    for (int i = 0; i < n_seeds; i++) free(seeds[i].bytes), free(seeds[i].steps);
    free(seeds), free(buf);
    fflush(stdout); /* before LeakSanitizer's check at exit, which ends the process without flushing if it reports */
    return 0;
}
#endif
