/* Bit-identity check of the C runtime against the Python executor, for any architecture (CI runs it
 * natively and under qemu-aarch64).
 *
 *   test_runtime CASE_DIR
 *
 * CASE_DIR holds one directory per case (written by tools/make_runtime_cases.py): model.xnor,
 * input_<i>.bin and expected_<i>.bin, the raw bytes (C order) of input i and of what the Python
 * executor produced for output i.  Each model is opened, run once, and every output byte compared.
 * A mismatch is reported by output: how many values differ, the first of them, the largest absolute
 * difference (float32 outputs).  A case with a file expect_fallback (inputs on which the Python
 * session itself falls back: an exact 0 at a sign that keeps zeros) must return XNOR_EFALLBACK.  Exit status 0 only if every case opens, runs and matches exactly. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "xnorinfer.h"

static unsigned char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) &&
        fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) *size = (size_t)n;
    return buf;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Compares output `index`; returns 1 if equal.  `got` and `want` hold nbytes each. */
static int compare(const char *name, size_t index, const xnor_tensor_info *info, const unsigned char *got,
                   const unsigned char *want) {
    if (!memcmp(got, want, info->nbytes)) return 1;
    size_t elem = info->type == XNOR_T_U8 ? 1 : info->type == XNOR_T_BITS ? 8 : 4, count = info->nbytes / elem;
    size_t differ = 0, first = 0;
    double max_abs = 0;
    for (size_t i = 0; i < count; i++) {
        if (!memcmp(got + i * elem, want + i * elem, elem)) continue;
        if (!differ++) first = i;
        if (info->type == XNOR_T_F32) {
            float g, w;
            memcpy(&g, got + i * elem, 4), memcpy(&w, want + i * elem, 4);
            double d = fabs((double)g - (double)w);
            if (d > max_abs || d != d) max_abs = d != d ? INFINITY : d;
        }
    }
    printf("MISMATCH %s output %zu (%s): %zu of %zu values differ", name, index, info->name, differ, count);
    if (info->type == XNOR_T_F32) {
        float g, w;
        memcpy(&g, got + first * 4, 4), memcpy(&w, want + first * 4, 4);
        printf(", max |diff| %.9g; first at element %zu: %.9g, expected %.9g", max_abs, first, g, w);
    } else {
        printf("; first at element %zu", first);
    }
    printf("\n");
    return 0;
}

/* Runs one case; returns 1 if it matches, 2 if it fell back as expected, 0 if it fails. */
static int run_case(const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/model.xnor", dir, name);
    xnor_model *m;
    if (xnor_model_open_file(path, NULL, &m) != XNOR_OK) {
        printf("FAIL %s: cannot open: %s\n", name, xnor_last_error());
        return 0;
    }
    size_t n_in = xnor_model_num_inputs(m), n_out = xnor_model_num_outputs(m);
    void **in = calloc(n_in, sizeof *in), **out = calloc(n_out, sizeof *out), **want = calloc(n_out, sizeof *want);
    int ok = 1;
    for (size_t i = 0; i < n_in + n_out && ok; i++) {
        int is_in = i < n_in;
        size_t k = is_in ? i : i - n_in, size = 0;
        xnor_tensor_info info;
        if ((is_in ? xnor_model_input_info(m, k, &info) : xnor_model_output_info(m, k, &info)) != XNOR_OK) abort();
        snprintf(path, sizeof path, "%s/%s/%s_%zu.bin", dir, name, is_in ? "input" : "expected", k);
        unsigned char *bytes = read_file(path, &size);
        if (!bytes || size != info.nbytes) {
            printf("FAIL %s: %s: %s (the model's %s %zu \"%s\" has %zu bytes)\n", name, path,
                   bytes ? "wrong size" : "cannot read", is_in ? "input" : "output", k, info.name, info.nbytes);
            free(bytes);
            ok = 0;
            break;
        }
        if (is_in) in[k] = bytes;
        else want[k] = bytes, out[k] = malloc(info.nbytes ? info.nbytes : 1);
    }
    snprintf(path, sizeof path, "%s/%s/expect_fallback", dir, name);
    FILE *marker = fopen(path, "rb");
    int fallback = marker != NULL;
    if (marker) fclose(marker);
    xnor_status st = ok ? xnor_model_run(m, (const void *const *)in, out) : XNOR_OK;
    if (ok && fallback) { /* the Python session fell back on these inputs: the runtime must say so */
        if (st == XNOR_EFALLBACK) printf("ok   %s (XNOR_EFALLBACK, as the session: %s)\n", name, xnor_last_error());
        else printf("FAIL %s: expected XNOR_EFALLBACK, got status %d (%s)\n", name, st, xnor_last_error());
        ok = st == XNOR_EFALLBACK;
        fallback = 2; /* reported */
    } else if (ok && st != XNOR_OK) {
        printf("FAIL %s: run: %s\n", name, xnor_last_error());
        ok = 0;
    }
    for (size_t k = 0; k < n_out && ok && fallback != 2; k++) {
        xnor_tensor_info info;
        xnor_model_output_info(m, k, &info);
        if (!compare(name, k, &info, out[k], want[k])) ok = 0;
    }
    if (ok && fallback != 2) printf("ok   %s (%zu inputs, %zu outputs, arena %zu bytes)\n", name, n_in, n_out, xnor_model_arena_bytes(m));
    for (size_t k = 0; k < n_in; k++) free(in[k]);
    for (size_t k = 0; k < n_out; k++) free(out[k]), free(want[k]);
    free(in), free(out), free(want);
    xnor_model_close(m);
    return ok && fallback == 2 ? 2 : ok;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s CASE_DIR   (cases from tools/make_runtime_cases.py)\n", argv[0]);
        return 2;
    }
    if (xnor_init() != XNOR_OK) { printf("FAIL: %s\n", xnor_last_error()); return 1; }
    DIR *d = opendir(argv[1]);
    if (!d) { printf("FAIL: cannot open the directory %s\n", argv[1]); return 1; }
    char **names = NULL;
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s/model.xnor", argv[1], e->d_name);
        FILE *f = e->d_name[0] != '.' ? fopen(path, "rb") : NULL;
        if (!f) continue;
        fclose(f);
        names = realloc(names, (n + 1) * sizeof *names);
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    size_t identical = 0, fell_back = 0;
    for (size_t i = 0; i < n; i++) {
        int r = run_case(argv[1], names[i]);
        identical += r == 1, fell_back += r == 2;
        free(names[i]);
    }
    free(names);
    printf("%zu of %zu cases pass (ISA %s): %zu bit-identical to the Python executor, %zu fall back as expected, "
           "%zu fail\n", identical + fell_back, n, xnor_isa_name(xnor_isa_active()), identical, fell_back,
           n - identical - fell_back);
    return n > 0 && identical + fell_back == n ? 0 : 1;
}
