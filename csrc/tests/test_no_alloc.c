/* The runtime's promise that a run allocates nothing: open each model given, run it once (the thread
 * pool starts), then count every malloc/calloc/realloc/aligned_alloc during 10 more runs, with 1 thread
 * and with the pool's size.  Exit status 1 if any run allocated.
 *   test_no_alloc MODEL.xnor...        (linked with count_alloc.c) */
#include <stdio.h>
#include <stdlib.h>
#include "xnorinfer.h"

extern int xnor_alloc_armed;
extern long xnor_alloc_count;

int main(int argc, char **argv) {
    int failed = 0;
    for (int a = 1; a < argc; a++) {
        xnor_model *m;
        if (xnor_model_open_file(argv[a], NULL, &m) != XNOR_OK) {
            printf("FAIL %s: %s\n", argv[a], xnor_last_error());
            failed = 1;
            continue;
        }
        void *in[64] = {0}, *out[64] = {0};
        xnor_tensor_info t;
        for (size_t i = 0; i < xnor_model_num_inputs(m) && i < 64; i++) {
            xnor_model_input_info(m, i, &t);
            float *x = malloc(t.nbytes);
            for (size_t j = 0; j < t.nbytes / sizeof(float); j++) x[j] = (float)((j * 7919) % 13) - 6.5f; /* no 0 */
            in[i] = x;
        }
        for (size_t i = 0; i < xnor_model_num_outputs(m) && i < 64; i++) {
            xnor_model_output_info(m, i, &t);
            out[i] = malloc(t.nbytes);
        }
        xnor_status first = xnor_model_run(m, (const void *const *)in, out), st = XNOR_OK;
        long counts[2];
        for (int pass = 0; pass < 2; pass++) {
            xnor_model_set_num_threads(m, pass == 0 ? 1 : 0);
            xnor_alloc_count = 0;
            xnor_alloc_armed = 1;
            for (int r = 0; r < 10; r++) {
                xnor_status s = xnor_model_run(m, (const void *const *)in, out);
                if (s != XNOR_OK) st = s;
            }
            xnor_alloc_armed = 0;
            counts[pass] = xnor_alloc_count;
        }
        int ok = counts[0] == 0 && counts[1] == 0 && (first == XNOR_OK || first == XNOR_EFALLBACK) && st == first;
        printf("%s %s: %ld / %ld allocations in 10 runs at 1 / all threads (status %d), arena %zu bytes\n",
               ok ? "ok  " : "FAIL", argv[a], counts[0], counts[1], (int)st, xnor_model_arena_bytes(m));
        failed |= !ok;
        xnor_model_close(m);
        for (int i = 0; i < 64; i++) free(in[i]), free(out[i]);
    }
    return failed;
}
