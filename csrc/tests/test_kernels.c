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

/* ---- binary layers ---- */

static int rnd_range(int lo, int hi) { return lo + (int)(rnd() % (uint64_t)(hi - lo + 1)); }

static void check_bconv(const char *isa) {
    xnor_conv_params p = {0};
    p.batch = rnd_range(1, 2);
    p.groups = rnd_range(1, 3) == 3 ? (size_t)rnd_range(2, 3) : 1;
    size_t cg = rnd_range(1, 150), og = rnd_range(1, 40);
    p.in_c = cg * p.groups, p.out_c = og * p.groups;
    p.kernel_h = rnd_range(1, 4), p.kernel_w = rnd_range(1, 4);
    p.stride_h = rnd_range(1, 2), p.stride_w = rnd_range(1, 2);
    p.dilation_h = rnd_range(1, 2), p.dilation_w = rnd_range(1, 2);
    p.pad_top = rnd_range(0, 2), p.pad_bottom = rnd_range(0, 2), p.pad_left = rnd_range(0, 2), p.pad_right = rnd_range(0, 2);
    p.pad_value = rnd_range(0, 1);
    size_t span_h = p.dilation_h * (p.kernel_h - 1) + 1, span_w = p.dilation_w * (p.kernel_w - 1) + 1;
    p.in_h = span_h + rnd_range(0, 5), p.in_w = span_w + rnd_range(0, 5);
    size_t oh, ow;
    cases++;
    if (xnor_conv_output_size(&p, &oh, &ow) != XNOR_OK) { printf("FAIL %s conv geometry\n", isa); failures++; return; }
    size_t xw = (p.in_c + 63) / 64, wpt = (cg + 63) / 64, taps = p.kernel_h * p.kernel_w;
    size_t xn = p.batch * p.in_h * p.in_w * xw, wn = p.out_c * taps * wpt, pix = p.batch * oh * ow;
    uint64_t *x = malloc(xn * 8), *w = malloc(wn * 8), *packed = malloc(pix * ((p.out_c + 63) / 64) * 8);
    int32_t *acc = malloc(pix * p.out_c * 4), *want = malloc(pix * p.out_c * 4), *thr = malloc(p.out_c * 4);
    float *fout = malloc(pix * p.out_c * 4), *scale = malloc(p.out_c * 4), *bias = malloc(p.out_c * 4);
    uint8_t *flip = malloc(p.out_c);
    for (size_t i = 0; i < xn; i++) x[i] = rnd(); /* garbage in every tail */
    for (size_t i = 0; i < wn; i++) w[i] = rnd();
    for (size_t b = 0; b < p.batch; b++)
        for (size_t oy = 0; oy < oh; oy++)
            for (size_t ox = 0; ox < ow; ox++)
                for (size_t o = 0; o < p.out_c; o++) {
                    size_t g = o / og;
                    int32_t sum = 0;
                    for (size_t ky = 0; ky < p.kernel_h; ky++)
                        for (size_t kx = 0; kx < p.kernel_w; kx++) {
                            long iy = (long)(oy * p.stride_h + ky * p.dilation_h) - (long)p.pad_top;
                            long ix = (long)(ox * p.stride_w + kx * p.dilation_w) - (long)p.pad_left;
                            int inside = iy >= 0 && ix >= 0 && iy < (long)p.in_h && ix < (long)p.in_w;
                            if (!inside && p.pad_value == 0) continue;
                            const uint64_t *wr = w + (o * taps + ky * p.kernel_w + kx) * wpt;
                            for (size_t c = 0; c < cg; c++) {
                                int xv = inside ? 1 - 2 * bit_at(x + ((b * p.in_h + iy) * p.in_w + ix) * xw, g * cg + c) : 1;
                                sum += xv * (1 - 2 * bit_at(wr, c));
                            }
                        }
                    want[((b * oh + oy) * ow + ox) * p.out_c + o] = sum;
                }
    for (size_t o = 0; o < p.out_c; o++) {
        thr[o] = rnd_range(-20, 20), flip[o] = rnd() & 1;
        scale[o] = (float)rnd_range(-3, 3) * 0.37f, bias[o] = (float)rnd_range(-50, 50) * 0.11f;
    }
    xnor_output_transform t_int = {.kind = XNOR_OUT_INT32};
    xnor_output_transform t_pk = {.kind = XNOR_OUT_PACKED, .thresholds = thr, .flip = flip};
    xnor_output_transform t_f = {.kind = XNOR_OUT_FLOAT32, .scale = scale, .bias = bias, .clamp_min = -4.0f,
                                 .clamp_max = 6.0f};
    /* every other conv also clamps the integer accumulator before the float transform */
    int acc_clamped = (int)(rnd() & 1);
    if (acc_clamped) t_f.acc_clamp = 1, t_f.acc_min = -3, t_f.acc_max = 11;
    int threads = rnd_range(1, 2), bad = 0;
    /* prepared weights one word past an aligned address: kernels must not assume alignment */
    size_t panel_words, tap_sum_count;
    xnor_bconv_prepared_size(&p, &panel_words, &tap_sum_count);
    uint64_t *panel_store = malloc((panel_words + 1) * 8);
    int32_t *tap_sums = malloc((tap_sum_count + 1) * 4);
    xnor_bconv_prepare(w, &p, panel_store + 1, tap_sums);
    xnor_bconv_prepared prepared = {xnor_isa_active(), panel_store + 1, tap_sums};
    if (xnor_bconv2d_prepared(x, &prepared, &p, &t_int, acc, threads) != XNOR_OK ||
        memcmp(acc, want, pix * p.out_c * 4) != 0) bad |= 1;
    if (xnor_bconv2d(x, w, &p, &t_pk, packed, threads) != XNOR_OK) bad |= 2;
    if (xnor_bconv2d(x, w, &p, &t_f, fout, threads) != XNOR_OK) bad |= 4;
    /* the fused shortcut: the same transform plus a residual, clamped after the add */
    float *residual = malloc(pix * p.out_c * 4 + 4), *fres = malloc(pix * p.out_c * 4 + 4);
    for (size_t i = 0; i < pix * p.out_c; i++) residual[i] = (float)rnd_range(-300, 300) * 0.013f;
    if (xnor_bconv2d_prepared_add(x, &prepared, &p, &t_f, residual, fres, threads) != XNOR_OK) bad |= 8;
    if (xnor_bconv2d_prepared_add(x, &prepared, &p, &t_f, fres, fres, threads) != XNOR_EINVAL ||
        xnor_bconv2d_prepared_add(x, &prepared, &p, &t_int, residual, acc, threads) != XNOR_EINVAL) bad |= 16;
    size_t ow_words = (p.out_c + 63) / 64;
    for (size_t i = 0; i < pix && !bad; i++)
        for (size_t o = 0; o < ow_words * 64; o++) {
            int expect = o < p.out_c ? ((want[i * p.out_c + o] < thr[o]) ^ flip[o]) : 0;
            if (bit_at(packed + i * ow_words, o) != expect) { bad |= 2; break; }
            if (o < p.out_c) {
                int32_t a = want[i * p.out_c + o];
                if (acc_clamped) a = a < -3 ? -3 : a > 11 ? 11 : a;
                float v = (float)a * scale[o] + bias[o];
                float r = v + residual[i * p.out_c + o];
                v = v < -4.0f ? -4.0f : v > 6.0f ? 6.0f : v;
                r = r < -4.0f ? -4.0f : r > 6.0f ? 6.0f : r;
                if (fout[i * p.out_c + o] != v) { bad |= 4; break; }
                if (fres[i * p.out_c + o] != r) { bad |= 8; break; }
            }
        }
    if (bad) {
        printf("FAIL %s bconv (mask %d) b=%zu %zux%zux%zu->%zu k=%zux%zu s=%zux%zu d=%zux%zu pad=%zu,%zu,%zu,%zu "
               "groups=%zu pad_value=%d\n", isa, bad, p.batch, p.in_h, p.in_w, p.in_c, p.out_c, p.kernel_h,
               p.kernel_w, p.stride_h, p.stride_w, p.dilation_h, p.dilation_w, p.pad_top, p.pad_bottom, p.pad_left,
               p.pad_right, p.groups, p.pad_value);
        failures++;
    }
    free(x); free(w); free(packed); free(acc); free(want); free(thr); free(fout); free(scale); free(bias);
    free(flip); free(panel_store); free(tap_sums); free(residual); free(fres);
}

static void check_bmaxpool(const char *isa) {
    xnor_conv_params p = {0};
    p.batch = rnd_range(1, 2), p.in_c = p.out_c = rnd_range(1, 200), p.groups = 1;
    p.kernel_h = rnd_range(1, 3), p.kernel_w = rnd_range(1, 3);
    p.stride_h = rnd_range(1, 3), p.stride_w = rnd_range(1, 3), p.dilation_h = 1, p.dilation_w = 1;
    p.pad_top = rnd_range(0, 1), p.pad_left = rnd_range(0, 1), p.pad_bottom = rnd_range(0, 1), p.pad_right = rnd_range(0, 1);
    p.in_h = p.kernel_h + rnd_range(0, 5), p.in_w = p.kernel_w + rnd_range(0, 5);
    size_t oh, ow, W = (p.in_c + 63) / 64;
    xnor_conv_output_size(&p, &oh, &ow);
    uint64_t *x = malloc(p.batch * p.in_h * p.in_w * W * 8), *out = malloc(p.batch * oh * ow * W * 8);
    for (size_t i = 0; i < p.batch * p.in_h * p.in_w * W; i++) x[i] = rnd() | rnd(); /* mostly -1 */
    cases++;
    int bad = xnor_bmaxpool2d(x, &p, out, rnd_range(1, 2)) != XNOR_OK;
    for (size_t b = 0; b < p.batch && !bad; b++)
        for (size_t oy = 0; oy < oh; oy++)
            for (size_t ox = 0; ox < ow; ox++)
                for (size_t c = 0; c < W * 64; c++) {
                    int all_minus = 1;
                    for (size_t ky = 0; ky < p.kernel_h; ky++)
                        for (size_t kx = 0; kx < p.kernel_w; kx++) {
                            long iy = (long)(oy * p.stride_h + ky) - (long)p.pad_top, ix = (long)(ox * p.stride_w + kx) - (long)p.pad_left;
                            if (iy < 0 || ix < 0 || iy >= (long)p.in_h || ix >= (long)p.in_w) continue;
                            all_minus &= bit_at(x + ((b * p.in_h + iy) * p.in_w + ix) * W, c);
                        }
                    int expect = c < p.in_c ? all_minus : 0;
                    if (bit_at(out + ((b * oh + oy) * ow + ox) * W, c) != expect) bad = 1;
                }
    if (bad) {
        printf("FAIL %s bmaxpool c=%zu k=%zux%zu\n", isa, p.in_c, p.kernel_h, p.kernel_w);
        failures++;
    }
    free(x); free(out);
}

static float rnd_float(void) { return (float)((double)(rnd() >> 11) / 9007199254740992.0 * 2.0 - 1.0); }

/* Float NHWC conv (groups 1, HWIO weights; or depthwise) and pools against plain loops in double. */
static void check_float_layers(const char *isa, int pointwise) {
    xnor_conv_params p = {0};
    int depthwise = rnd() % 3 == 0;
    p.batch = (size_t)rnd_range(1, 2), p.in_h = (size_t)rnd_range(1, 12), p.in_w = (size_t)rnd_range(1, 13);
    p.in_c = (size_t)rnd_range(1, 40), p.out_c = depthwise ? p.in_c : (size_t)rnd_range(1, 40);
    p.kernel_h = (size_t)rnd_range(1, 4), p.kernel_w = (size_t)rnd_range(1, 4);
    p.stride_h = (size_t)rnd_range(1, 3), p.stride_w = (size_t)rnd_range(1, 3);
    p.dilation_h = (size_t)rnd_range(1, 2), p.dilation_w = (size_t)rnd_range(1, 2);
    p.pad_top = (size_t)rnd_range(0, 2), p.pad_bottom = (size_t)rnd_range(0, 2);
    p.pad_left = (size_t)rnd_range(0, 2), p.pad_right = (size_t)rnd_range(0, 2);
    p.groups = depthwise ? p.in_c : 1;
    if (pointwise) { /* 1x1, unit strides, no padding: the matrix-product path over all pixels */
        p.kernel_h = p.kernel_w = p.stride_h = p.stride_w = 1;
        p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 0;
    }
    size_t oh, ow;
    if (xnor_conv_output_size(&p, &oh, &ow) != XNOR_OK) return; /* the kernel does not fit: draw again */
    size_t cin = p.in_c, cout = p.out_c, nw = p.kernel_h * p.kernel_w * (depthwise ? 1 : cin) * cout;
    float *x = malloc(p.batch * p.in_h * p.in_w * cin * 4), *w = malloc(nw * 4), *bias = malloc(cout * 4);
    float *out = malloc(p.batch * oh * ow * cout * 4 + 4), *pooled = malloc(p.batch * oh * ow * cin * 4 + 4);
    for (size_t i = 0; i < p.batch * p.in_h * p.in_w * cin; i++) x[i] = rnd_float();
    for (size_t i = 0; i < nw; i++) w[i] = rnd_float();
    for (size_t i = 0; i < cout; i++) bias[i] = rnd_float();
    const float *use_bias = rnd() % 2 ? bias : NULL;
    int threads = (int)(1 + rnd() % 2);
    cases++;
    xnor_status st = xnor_conv2d_f32(x, w, use_bias, &p, out, threads);
    if (st != XNOR_OK) {
        printf("FAIL %s conv2d_f32: status %d (%s)\n", isa, st, xnor_last_error());
        failures++;
        goto pools;
    }
    for (size_t b = 0; b < p.batch; b++)
        for (size_t oy = 0; oy < oh; oy++)
            for (size_t ox = 0; ox < ow; ox++)
                for (size_t o = 0; o < cout; o++) {
                    double want = use_bias ? use_bias[o] : 0.0, mag = fabs(want);
                    for (size_t ky = 0; ky < p.kernel_h; ky++)
                        for (size_t kx = 0; kx < p.kernel_w; kx++) {
                            long iy = (long)(oy * p.stride_h + ky * p.dilation_h) - (long)p.pad_top;
                            long ix = (long)(ox * p.stride_w + kx * p.dilation_w) - (long)p.pad_left;
                            if (iy < 0 || ix < 0 || iy >= (long)p.in_h || ix >= (long)p.in_w) continue;
                            const float *xp = x + ((b * p.in_h + (size_t)iy) * p.in_w + (size_t)ix) * cin;
                            size_t tap = ky * p.kernel_w + kx;
                            for (size_t ci = depthwise ? o : 0; ci < (depthwise ? o + 1 : cin); ci++) {
                                double v = (double)xp[ci] * (depthwise ? w[tap * cout + o] : w[(tap * cin + ci) * cout + o]);
                                want += v, mag += fabs(v);
                            }
                        }
                    float got = out[((b * oh + oy) * ow + ox) * cout + o];
                    if (!(fabs(got - want) <= 1e-5 * mag + 1e-6)) {
                        printf("FAIL %s conv2d_f32%s %zux%zux%zu->%zu k%zux%zu at (%zu,%zu,%zu,%zu): got %g want %g\n",
                               isa, depthwise ? " depthwise" : "", p.in_h, p.in_w, cin, cout, p.kernel_h,
                               p.kernel_w, b, oy, ox, o, got, want);
                        failures++;
                        goto pools;
                    }
                }
pools:
    p.out_c = p.in_c, p.groups = 1;
    for (int kind = 0; kind < 3; kind++) {
        cases++;
        st = xnor_pool2d_f32(x, &p, (xnor_pool_kind)kind, pooled, threads);
        if (st != XNOR_OK) {
            printf("FAIL %s pool2d_f32 kind %d: status %d (%s)\n", isa, kind, st, xnor_last_error());
            failures++;
            continue;
        }
        int bad = 0;
        for (size_t b = 0; b < p.batch && !bad; b++)
            for (size_t oy = 0; oy < oh && !bad; oy++)
                for (size_t ox = 0; ox < ow && !bad; ox++)
                    for (size_t c = 0; c < cin && !bad; c++) {
                        double sum = 0.0, count = 0.0;
                        float mx = -INFINITY;
                        for (size_t ky = 0; ky < p.kernel_h; ky++)
                            for (size_t kx = 0; kx < p.kernel_w; kx++) {
                                long iy = (long)(oy * p.stride_h + ky * p.dilation_h) - (long)p.pad_top;
                                long ix = (long)(ox * p.stride_w + kx * p.dilation_w) - (long)p.pad_left;
                                if (iy < 0 || ix < 0 || iy >= (long)p.in_h || ix >= (long)p.in_w) continue;
                                float v = x[((b * p.in_h + (size_t)iy) * p.in_w + (size_t)ix) * cin + c];
                                mx = v > mx ? v : mx, sum += v, count += 1.0;
                            }
                        if (kind == 2) count = (double)(p.kernel_h * p.kernel_w);
                        float want = kind == 0 ? mx : (float)(sum / count);
                        float got = pooled[((b * oh + oy) * ow + ox) * cin + c];
                        if (!(got == want || (got != got && want != want))) { /* exact, NaN for 0/0 */
                            printf("FAIL %s pool2d_f32 kind %d at (%zu,%zu,%zu,%zu): got %g want %g\n", isa, kind,
                                   b, oy, ox, c, got, want);
                            failures++;
                            bad = 1;
                        }
                    }
    }
    free(x); free(w); free(bias); free(out); free(pooled);
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
    xnor_conv_params p = {1, 4, 4, 6, 4, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 2, 0};
    float f[256] = {0};
    cases++;
    if (xnor_conv2d_f32(f, f, NULL, &p, f, 1) != XNOR_EINVAL /* groups 2: neither 1 nor depthwise */ ||
        xnor_conv2d_f32(NULL, f, NULL, &p, f, 1) != XNOR_EINVAL || xnor_pool2d_f32(f, &p, XNOR_POOL_MAX, f, 1) !=
        XNOR_EINVAL /* in_c != out_c */ || xnor_pool2d_f32(f, NULL, XNOR_POOL_MAX, f, 1) != XNOR_EINVAL) {
        printf("FAIL bad float-layer arguments were not rejected\n");
        failures++;
    }
    p.out_c = p.in_c, p.groups = 1, p.kernel_h = 9; /* the kernel does not fit the input */
    cases++;
    if (xnor_pool2d_f32(f, &p, XNOR_POOL_AVG, f, 1) != XNOR_EINVAL || xnor_pool2d_f32(f, &p, (xnor_pool_kind)7, f, 1) !=
        XNOR_EINVAL) {
        printf("FAIL bad pooling arguments were not rejected\n");
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
        for (int i = 0; i < 60; i++) check_bconv(name);
        for (int i = 0; i < 40; i++) check_bmaxpool(name);
        for (int i = 0; i < 150; i++) check_float_layers(name, i % 5 == 0);
        printf("%-7s %s\n", name, failures == before ? "ok" : "FAILED");
    }
    check_errors();
    printf("%d passed, %d failed\n", cases - failures, failures);
    return failures != 0;
}
