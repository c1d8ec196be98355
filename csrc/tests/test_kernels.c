/* Kernel tester (XNNPACK's pattern): random inputs, every ISA path this CPU has, awkward shapes,
 * garbage tail bits, compared with a plain reference written here, independent of the library.
 * Runs natively and under qemu-aarch64.  Exit status 0 only if every case matches. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "xnorinfer.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rnd(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static int failures = 0, cases = 0;

/* The reference: unpack to +-1 ints and multiply, ignoring tail bits by construction. */
static int bit_at(const uint64_t *row, size_t i) { return (int)((row[i / 64] >> (i % 64)) & 1); }

static void check_bgemm(size_t m, size_t n, size_t k, int threads, const char *isa) {
    size_t W = (k + 63) / 64;
    uint64_t *a = malloc(m * W * 8), *b = malloc(n * W * 8);
    int32_t *c = malloc(m * n * 4);
    for (size_t i = 0; i < m * W; i++) a[i] = rnd(); /* random words: tails hold garbage */
    for (size_t i = 0; i < n * W; i++) b[i] = rnd();
    if (rnd() % 3 == 0) /* sometimes nearly-equal rows, so results near +k occur */
        for (size_t i = 0; i < m * W && i < n * W; i++) b[i] = a[i] ^ (rnd() & rnd() & rnd());
    xnor_status st = xnor_bgemm(a, b, c, m, n, k, threads);
    cases++;
    if (st != XNOR_OK) {
        printf("FAIL %s bgemm m=%zu n=%zu k=%zu: status %d (%s)\n", isa, m, n, k, st, xnor_last_error());
        failures++;
    } else {
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++) {
                int32_t want = 0;
                for (size_t q = 0; q < k; q++)
                    want += (1 - 2 * bit_at(a + i * W, q)) * (1 - 2 * bit_at(b + j * W, q));
                if (c[i * n + j] != want) {
                    printf("FAIL %s bgemm m=%zu n=%zu k=%zu threads=%d at (%zu,%zu): got %d want %d\n",
                           isa, m, n, k, threads, i, j, c[i * n + j], want);
                    failures++;
                    i = m;
                    break;
                }
            }
    }
    free(a); free(b); free(c);
}

static void check_pack(size_t rows, size_t k, const char *isa) {
    size_t W = (k + 63) / 64;
    float *x = malloc(rows * k * 4);
    uint64_t *out = malloc(rows * W * 8);
    float *back = malloc(rows * k * 4);
    const float specials[] = {0.0f, -0.0f, NAN, -NAN, INFINITY, -INFINITY, 1e-45f, -1e-45f};
    for (size_t i = 0; i < rows * k; i++) {
        uint64_t r = rnd();
        x[i] = (r % 5 == 0) ? specials[(r >> 8) % 8] : (float)((int64_t)(r >> 11) % 2001 - 1000) / 7.0f;
    }
    memset(out, 0xAB, rows * W * 8);
    xnor_status st = xnor_pack(x, XNOR_F32, rows, k, out);
    cases++;
    int bad = st != XNOR_OK;
    for (size_t r = 0; r < rows && !bad; r++) {
        for (size_t i = 0; i < W * 64; i++) {
            int want = i < k ? (x[r * k + i] < 0.0f) : 0; /* tail bits are written as 0 */
            if (bit_at(out + r * W, i) != want) { bad = 1; break; }
        }
    }
    if (!bad) {
        st = xnor_unpack_f32(out, rows, k, back);
        for (size_t i = 0; i < rows * k && !bad; i++)
            if (back[i] != (x[i] < 0.0f ? -1.0f : 1.0f)) bad = 1;
    }
    if (bad) {
        printf("FAIL %s pack/unpack rows=%zu k=%zu\n", isa, rows, k);
        failures++;
    }
    free(x); free(out); free(back);
}

static void check_errors(void) {
    uint64_t w = 0;
    int32_t c = 0;
    cases++;
    if (xnor_bgemm(NULL, &w, &c, 1, 1, 1, 1) != XNOR_EINVAL || xnor_bgemm(&w, &w, &c, 1, 1, 0, 1) != XNOR_EINVAL ||
        xnor_pack(&w, (xnor_dtype)99, 1, 1, &w) != XNOR_EINVAL ||
        xnor_bgemm(&w, &w, &c, SIZE_MAX / 2, SIZE_MAX / 2, 64, 1) != XNOR_EINVAL) {
        printf("FAIL bad arguments were not rejected\n");
        failures++;
    }
}

int main(void) {
    if (xnor_init() != XNOR_OK) {
        printf("FAIL init: %s\n", xnor_last_error());
        return 1;
    }
    static const size_t ks[] = {1, 2, 63, 64, 65, 127, 128, 511, 512, 513, 1000, 4097, 9000};
    static const size_t ms[] = {1, 2, 3, 4, 5, 6, 7, 9, 13, 31, 33};
    static const size_t ns[] = {1, 3, 7, 8, 17, 31, 32, 33, 65, 100};
    unsigned supported = xnor_isa_supported();
    for (int isa = 0; isa < XNOR_ISA_COUNT; isa++) {
        if (!(supported & (1u << isa))) continue;
        const char *name = xnor_isa_name((xnor_isa)isa);
        xnor_isa_select((xnor_isa)isa);
        int before = failures;
        for (size_t ki = 0; ki < sizeof ks / sizeof *ks; ki++)
            for (size_t mi = 0; mi < sizeof ms / sizeof *ms; mi++)
                for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++) {
                    if (ks[ki] > 1000 && (ms[mi] * ns[ni]) % 5 != 0) continue; /* keep the run short */
                    check_bgemm(ms[mi], ns[ni], ks[ki], (int)(1 + rnd() % 2), name);
                }
        check_bgemm(70, 130, 20000, 2, name);  /* several k-blocks */
        check_bgemm(9, 17, 70000, 2, name);    /* first, middle and last k-blocks for narrow panels */
        check_bgemm(2, 5, 140000, 1, name);    /* long direct rows: wide accumulators must not overflow */
        check_bgemm(200, 64, 300, 2, name);     /* thread split over rows */
        for (size_t ki = 0; ki < sizeof ks / sizeof *ks; ki++) check_pack(3, ks[ki], name);
        printf("%-7s %s\n", name, failures == before ? "ok" : "FAILED");
    }
    check_errors();
    printf("%d passed, %d failed\n", cases - failures, failures);
    return failures != 0;
}
