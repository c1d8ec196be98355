/* Classify the digits demo's held-out images with the C runtime and print the accuracy.
 *   digits MODEL.xnor IMAGES.f32 LABELS.u8 [--profile]   (files from `xnorinfer convert` and export_digits.py)
 * --profile: each step of the last run, timed (xnor_model_set_profiling).
 * Runs the model's own batch (the first input dim) per call; a short last batch is zero-padded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "xnorinfer.h"

static void *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n)) && fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
    if (f) fclose(f);
    if (!buf) { fprintf(stderr, "error: cannot read %s\n", path); exit(1); }
    *size = (size_t)n;
    return buf;
}

/* The last run's steps: each one's runtime op, the layer it computes, its output shape and its time. */
static void print_profile(const xnor_model *m) {
    printf("last run, by step:\n");
    for (size_t s = 0; s < xnor_model_num_steps(m); s++) {
        xnor_step_info step;
        xnor_tensor_info y;
        if (xnor_model_step_info(m, s, &step) != XNOR_OK || xnor_model_step_operand(m, s, step.n_inputs, &y) != XNOR_OK) return;
        char dims[64] = "";
        for (size_t d = 0, at = 0; d < y.rank && at < sizeof dims - 24; d++)
            at += (size_t)snprintf(dims + at, sizeof dims - at, d ? "x%zu" : "%zu", y.dims[d]);
        printf("  %3zu %-10s %-24s %-16s %9.1f us  %d thread(s)\n", s, step.op, step.name, dims, step.dur_us, step.threads);
    }
}

int main(int argc, char **argv) {
    int profile = argc == 5 && !strcmp(argv[4], "--profile");
    if (argc != 4 && !profile) { fprintf(stderr, "usage: %s MODEL.xnor IMAGES.f32 LABELS.u8 [--profile]\n", argv[0]); return 2; }
    xnor_model *m;
    if (xnor_model_open_file(argv[1], NULL, &m) != XNOR_OK) { fprintf(stderr, "error: %s\n", xnor_last_error()); return 1; }
    if (profile) xnor_model_set_profiling(m, 1);
    xnor_tensor_info in, out;
    if (xnor_model_num_inputs(m) != 1 || xnor_model_num_outputs(m) != 1 || xnor_model_input_info(m, 0, &in) != XNOR_OK ||
        xnor_model_output_info(m, 0, &out) != XNOR_OK || in.type != XNOR_T_F32 || out.type != XNOR_T_F32 ||
        in.rank < 1 || out.rank != 2 || out.dims[0] != in.dims[0]) {
        fprintf(stderr, "error: expected one float32 input (batch, ...) and one float32 output (batch, classes)\n");
        return 1;
    }
    size_t batch = in.dims[0], image_bytes = in.nbytes / batch, classes = out.dims[1], n_images, image_file;
    unsigned char *labels = read_all(argv[3], &n_images);
    float *images = read_all(argv[2], &image_file);
    if (image_file != n_images * image_bytes) { fprintf(stderr, "error: %s does not hold %zu images of %zu bytes\n", argv[2], n_images, image_bytes); return 1; }
    float *x = calloc(1, in.nbytes), *scores = malloc(out.nbytes);
    size_t correct = 0;
    for (size_t first = 0; first < n_images; first += batch) {
        size_t count = n_images - first < batch ? n_images - first : batch;
        memset(x, 0, in.nbytes);
        memcpy(x, (char *)images + first * image_bytes, count * image_bytes);
        const void *inputs[] = {x};
        void *outputs[] = {scores};
        if (xnor_model_run(m, inputs, outputs) != XNOR_OK) { fprintf(stderr, "error: %s\n", xnor_last_error()); return 1; }
        for (size_t i = 0; i < count; i++) {
            size_t best = 0; /* the first maximum, as numpy's argmax */
            for (size_t c = 1; c < classes; c++) if (scores[i * classes + c] > scores[i * classes + best]) best = c;
            correct += best == labels[first + i];
        }
    }
    printf("%zu images, batch %zu, %s: accuracy %.2f%% (%zu correct)\n", n_images, batch, xnor_isa_name(xnor_isa_active()),
           100.0 * (double)correct / (double)n_images, correct);
    if (profile) print_profile(m);
    xnor_model_close(m);
    free(x), free(scores), free(images), free(labels);
    return 0;
}
