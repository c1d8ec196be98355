/* Kernel tester (XNNPACK's pattern): random inputs, every ISA path this CPU has, awkward shapes,
 * garbage tail bits, compared with a plain reference written here, independent of the library.
 * Runs natively and under qemu-aarch64.  Exit status 0 only if every case matches. */
#include <float.h>
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

/* threads < 0: xnor_pack, else xnor_pack_threads on that many (0: the pool's size) */
static void check_pack(size_t rows, size_t k, const char *isa, int threads) {
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
    xnor_status st = threads < 0 ? xnor_pack(x, XNOR_F32, rows, k, out)
                                 : xnor_pack_threads(x, XNOR_F32, rows, k, out, threads);
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
        printf("FAIL %s pack/unpack rows=%zu k=%zu threads=%d\n", isa, rows, k, threads);
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
    /* weights prepared at another input size (the other layout: nibble-split or plain, by output size)
     * run the same; weights of another layer's shape, or not from prepare at all, are refused */
    xnor_conv_params p_alt = p;
    p_alt.in_h = p_alt.in_w = oh * ow >= 8 ? 1 : 64;
    size_t alt_words, alt_sums;
    xnor_bconv_prepared_size(&p_alt, &alt_words, &alt_sums);
    uint64_t *alt_store = malloc(alt_words * 8);
    int32_t *alt_tap_sums = malloc((alt_sums + 1) * 4);
    int32_t *acc2 = malloc(pix * p.out_c * 4 + 4);
    xnor_bconv_prepared alt = {xnor_isa_active(), alt_store, alt_tap_sums};
    if (xnor_bconv_prepare(w, &p_alt, alt_store, alt_tap_sums) != XNOR_OK ||
        xnor_bconv2d_prepared(x, &alt, &p, &t_int, acc2, threads) != XNOR_OK || memcmp(acc2, want, pix * p.out_c * 4) != 0)
        bad |= 32;
    xnor_conv_params p_other = p;
    p_other.out_c += p.groups;
    memset(alt_store, 0, alt_words * 8);
    if (xnor_bconv2d_prepared(x, &prepared, &p_other, &t_int, acc2, threads) != XNOR_EINVAL ||
        xnor_bconv2d_prepared(x, &alt, &p, &t_int, acc2, threads) != XNOR_EINVAL)
        bad |= 64;
    free(alt_store); free(alt_tap_sums); free(acc2);
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

/* ---- float tensor ops ---- */

double xnor_exp_f64(double x); /* the library's own exp (fops/fops.h): checked against expl here */

static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
/* the same float32, bit for bit, or both NaN (payloads are not specified) */
static int same_f(float a, float b) { return (a != a && b != b) || f2u(a) == f2u(b); }

/* Winograd's float conv (xnor_conv2d_f32_run_prepared): geometries it takes (strides 1-4, a 3x3 kernel
 * per stride phase, padding, batch, channels that are not whole vectors) against plain loops in double,
 * within 1e-5 of the largest sum of |products| in the output's 4x4 tile; exact inputs (small integers, power-of-two weights) and an Inf
 * must give the direct conv's bits; prepared weights of another layer are refused. */
static void check_winograd(const char *isa) {
    xnor_conv_params p = {0};
    p.batch = (size_t)rnd_range(1, 2), p.groups = 1, p.dilation_h = p.dilation_w = 1;
    p.stride_h = (size_t)rnd_range(1, 4), p.stride_w = rnd() % 3 ? p.stride_h : (size_t)rnd_range(1, 4);
    p.kernel_h = (size_t)rnd_range((int)(2 * p.stride_h + 1), (int)(3 * p.stride_h));
    p.kernel_w = (size_t)rnd_range((int)(2 * p.stride_w + 1), (int)(3 * p.stride_w));
    size_t phases = p.stride_h * p.stride_w;
    p.in_c = (size_t)rnd_range((int)((8 + phases - 1) / phases), (int)((8 + phases - 1) / phases) + 13);
    p.out_c = (size_t)rnd_range(16, 45);
    p.pad_top = (size_t)rnd_range(0, (int)p.kernel_h - 1), p.pad_bottom = (size_t)rnd_range(0, (int)p.kernel_h - 1);
    p.pad_left = (size_t)rnd_range(0, (int)p.kernel_w - 1), p.pad_right = (size_t)rnd_range(0, (int)p.kernel_w - 1);
    size_t want_h = (size_t)rnd_range(8, 23), want_w = (size_t)rnd_range(8, 23);
    size_t span_h = (want_h - 1) * p.stride_h + p.kernel_h, span_w = (want_w - 1) * p.stride_w + p.kernel_w;
    p.in_h = span_h > p.pad_top + p.pad_bottom ? span_h - p.pad_top - p.pad_bottom : 1;
    p.in_w = span_w > p.pad_left + p.pad_right ? span_w - p.pad_left - p.pad_right : 1;
    size_t oh, ow, floats;
    if (xnor_conv_output_size(&p, &oh, &ow) != XNOR_OK || oh < 8 || ow < 8) return;
    cases++;
    if (xnor_conv2d_f32_prepared_size(&p, &floats) != XNOR_OK || (!floats) != (xnor_isa_active() == XNOR_ISA_REF)) {
        printf("FAIL %s winograd: prepared size %zu for a geometry it takes\n", isa, floats);
        failures++;
        return;
    }
    if (!floats) return; /* the reference path runs the direct conv, which check_float_layers covers */
    size_t nx = p.batch * p.in_h * p.in_w * p.in_c, nw = p.kernel_h * p.kernel_w * p.in_c * p.out_c;
    size_t no = p.batch * oh * ow * p.out_c;
    float *x = malloc(nx * 4), *w = malloc(nw * 4), *bias = malloc(p.out_c * 4), *prep = malloc(floats * 4);
    float *out = malloc(no * 4), *direct = malloc(no * 4);
    double *want_all = NULL, *mag_all = NULL;
    for (size_t i = 0; i < nx; i++) x[i] = rnd_float();
    for (size_t i = 0; i < nw; i++) w[i] = rnd_float();
    for (size_t i = 0; i < p.out_c; i++) bias[i] = rnd_float();
    const float *use_bias = rnd() % 2 ? bias : NULL;
    int threads = (int)(1 + rnd() % 2), bad = 0;
    if (xnor_conv2d_f32_prepare(w, &p, prep) != XNOR_OK ||
        xnor_conv2d_f32_run_prepared(x, w, prep, use_bias, &p, out, threads) != XNOR_OK) {
        printf("FAIL %s winograd: %s\n", isa, xnor_last_error());
        failures++;
        goto done;
    }
    /* the reference and each output's sum of |products|, then each 4x4 output tile's largest such sum:
     * Winograd's rounding scales with its whole tile's inputs (a padded border output shares it) */
    want_all = malloc(no * sizeof(double)), mag_all = malloc(no * sizeof(double));
    for (size_t b = 0; b < p.batch; b++)
        for (size_t oy = 0; oy < oh; oy++)
            for (size_t ox = 0; ox < ow; ox++)
                for (size_t o = 0; o < p.out_c; o++) {
                    double want = use_bias ? use_bias[o] : 0.0, mag = fabs(want);
                    for (size_t ky = 0; ky < p.kernel_h; ky++)
                        for (size_t kx = 0; kx < p.kernel_w; kx++) {
                            long iy = (long)(oy * p.stride_h + ky) - (long)p.pad_top;
                            long ix = (long)(ox * p.stride_w + kx) - (long)p.pad_left;
                            if (iy < 0 || ix < 0 || iy >= (long)p.in_h || ix >= (long)p.in_w) continue;
                            const float *xp = x + ((b * p.in_h + (size_t)iy) * p.in_w + (size_t)ix) * p.in_c;
                            for (size_t ci = 0; ci < p.in_c; ci++) {
                                double v = (double)xp[ci] * w[((ky * p.kernel_w + kx) * p.in_c + ci) * p.out_c + o];
                                want += v, mag += fabs(v);
                            }
                        }
                    want_all[((b * oh + oy) * ow + ox) * p.out_c + o] = want;
                    mag_all[((b * oh + oy) * ow + ox) * p.out_c + o] = mag;
                }
    for (size_t b = 0; b < p.batch && !bad; b++)
        for (size_t oy = 0; oy < oh && !bad; oy++)
            for (size_t ox = 0; ox < ow && !bad; ox++)
                for (size_t o = 0; o < p.out_c && !bad; o++) {
                    double want = want_all[((b * oh + oy) * ow + ox) * p.out_c + o], mag = 0;
                    for (size_t ty = oy / 4 * 4; ty < oy / 4 * 4 + 4 && ty < oh; ty++)
                        for (size_t tx = ox / 4 * 4; tx < ox / 4 * 4 + 4 && tx < ow; tx++) {
                            double v = mag_all[((b * oh + ty) * ow + tx) * p.out_c + o];
                            mag = v > mag ? v : mag;
                        }
                    float got = out[((b * oh + oy) * ow + ox) * p.out_c + o];
                    if (!(fabs(got - want) <= 1e-5 * mag + 1e-6)) {
                        printf("FAIL %s winograd %zux%zux%zu->%zu k%zux%zu s%zux%zu pad %zu,%zu,%zu,%zu b%zu at "
                               "(%zu,%zu,%zu,%zu): got %g want %g\n", isa, p.in_h, p.in_w, p.in_c, p.out_c, p.kernel_h,
                               p.kernel_w, p.stride_h, p.stride_w, p.pad_top, p.pad_bottom, p.pad_left, p.pad_right,
                               p.batch, b, oy, ox, o, got, want);
                        bad = 1;
                    }
                }
    /* +-1 and 0 inputs with weights +-2^-2: exact sums, so the direct conv's bits (which are exact) */
    for (size_t i = 0; i < nx; i++) x[i] = (float)((int)(rnd() % 3) - 1);
    for (size_t i = 0; i < nw; i++) w[i] = rnd() % 2 ? 0.25f : -0.25f;
    xnor_conv2d_f32_prepare(w, &p, prep);
    xnor_conv2d_f32_run_prepared(x, w, prep, NULL, &p, out, threads);
    xnor_conv2d_f32(x, w, NULL, &p, direct, threads);
    if (!bad && memcmp(out, direct, no * 4)) {
        printf("FAIL %s winograd: exact inputs do not give the direct conv's exact sums\n", isa);
        bad = 1;
    }
    /* an Inf: the direct conv's Inf / NaN pattern, not NaN over a whole tile */
    x[rnd() % nx] = rnd() % 2 ? INFINITY : -INFINITY;
    x[0] = 0.5f; /* and a value that is not an integer, so only the Inf sends it to the direct conv */
    xnor_conv2d_f32_run_prepared(x, w, prep, NULL, &p, out, threads);
    xnor_conv2d_f32(x, w, NULL, &p, direct, threads);
    for (size_t i = 0; i < no && !bad; i++)
        if (!same_f(out[i], direct[i])) {
            printf("FAIL %s winograd: an Inf in the input gives %g where the direct conv gives %g\n", isa, out[i], direct[i]);
            bad = 1;
        }
    /* weights prepared for another layer */
    xnor_conv_params other = p;
    other.out_c = p.out_c + 1; /* still a geometry Winograd takes */
    if (!bad && xnor_conv2d_f32_run_prepared(x, w, prep, NULL, &other, out, threads) != XNOR_EINVAL) {
        printf("FAIL %s winograd: prepared weights of another out_c accepted\n", isa);
        bad = 1;
    }
    failures += bad;
done:
    free(x), free(w), free(bias), free(prep), free(out), free(direct), free(want_all), free(mag_all);
}

/* Floats with the awkward values over-represented: zeros of both signs, NaN, infinities, subnormals,
 * huge values, halves (rounding ties), small integers, and arbitrary bit patterns. */
static float rnd_special(void) {
    uint64_t r = rnd();
    float s = (r >> 40) & 1 ? -1.0f : 1.0f;
    switch (r % 14) {
    case 0: return s * 0.0f;
    case 1: return (r >> 41) & 1 ? NAN : -NAN;
    case 2: return s * INFINITY;
    case 3: return s * u2f((uint32_t)(r >> 44) & 0x7fffffu); /* subnormal (or 0) */
    case 4: return s * 3.0e38f * (float)((r >> 20) % 100) / 99.0f;
    case 5: return s * ((float)((r >> 20) % 16) + 0.5f);  /* a tie for the roundings */
    case 6: return s * (float)((r >> 20) % 5);
    case 7: return u2f((uint32_t)(r >> 20));              /* any bits */
    case 8: return s * 0.5f;
    default: return rnd_float() * (float)(1u << ((r >> 20) % 12));
    }
}

/* Random broadcast shapes: out dims, and each operand's dims (equal to out's or 1) in one of the
 * layouts the kernels have fast paths for, or random. */
static size_t rnd_shape(size_t *dims, size_t max_count) {
    size_t rank = (size_t)rnd_range(1, 6), count;
    do {
        count = 1;
        for (size_t i = 0; i < rank; i++) dims[i] = (size_t)rnd_range(1, i + 2 < rank ? 4 : 9), count *= dims[i];
    } while (count > max_count);
    return rank;
}

static void rnd_operand(const size_t *out, size_t rank, size_t *d) {
    int kind = rnd_range(0, 5);
    for (size_t i = 0; i < rank; i++) {
        switch (kind) {
        case 0: d[i] = out[i]; break;                                  /* same shape */
        case 1: d[i] = 1; break;                                       /* scalar */
        case 2: d[i] = i == rank - 1 ? out[i] : 1; break;              /* per channel, last axis */
        case 3: d[i] = i == (rank > 1) ? out[i] : 1; break;            /* per channel, axis 1 (NCHW) */
        default: d[i] = rnd() % 2 ? out[i] : 1; break;                 /* random */
        }
    }
}

/* Element `o` (row-major index into out) of an operand of dims d broadcast to out. */
static size_t bidx(size_t o, const size_t *out, const size_t *d, size_t rank) {
    size_t idx = 0, stride = 1;
    for (size_t i = rank; i-- > 0;) {
        size_t c = o % out[i];
        o /= out[i];
        if (d[i] != 1) idx += c * stride;
        stride *= d[i];
    }
    return idx;
}

static float ref_max(float a, float b) { /* numpy's np.maximum on x86-64 */
    if (isnan(a)) return a;
    if (isnan(b)) return b;
    return a > b ? a : b;
}
static float ref_min(float a, float b) {
    if (isnan(a)) return a;
    if (isnan(b)) return b;
    return a < b ? a : b;
}

static void check_arith(const char *isa) {
    size_t out[6], da[6], db[6];
    size_t rank = rnd_shape(out, 3000), n = 1;
    for (size_t i = 0; i < rank; i++) n *= out[i];
    rnd_operand(out, rank, da);
    rnd_operand(out, rank, db);
    float *a = malloc(n * 4), *b = malloc(n * 4), *o = malloc(n * 4 + 4);
    for (size_t i = 0; i < n; i++) a[i] = rnd_special(), b[i] = rnd_special();
    if (rnd() % 4 == 0) /* equal operands: the ties of max/min and the comparisons */
        for (size_t i = 0; i < n; i++) b[i] = (rnd() % 2) ? a[i] : -a[i];
    for (int op = 0; op < XNOR_ARITH_COUNT; op++) {
        cases++;
        int in_place = op < XNOR_ARITH_GREATER && rnd() % 4 == 0, full_a = 1;
        for (size_t i = 0; i < rank; i++) full_a &= da[i] == out[i];
        float *ac = a;
        if (in_place && full_a) { /* out == a */
            ac = malloc(n * 4);
            memcpy(ac, a, n * 4);
        }
        void *dst = ac != a ? (void *)ac : (void *)o;
        xnor_status st = xnor_arith_f32((xnor_arith_op)op, ac, da, b, db, dst, out, rank);
        int bad = st != XNOR_OK;
        for (size_t i = 0; i < n && !bad; i++) {
            float x = a[bidx(i, out, da, rank)], y = b[bidx(i, out, db, rank)], want = 0.0f;
            int cmp = -1;
            switch (op) {
            case XNOR_ARITH_ADD: want = x + y; break;
            case XNOR_ARITH_SUB: want = x - y; break;
            case XNOR_ARITH_MUL: want = x * y; break;
            case XNOR_ARITH_DIV: want = x / y; break;
            case XNOR_ARITH_MAX: want = ref_max(x, y); break;
            case XNOR_ARITH_MIN: want = ref_min(x, y); break;
            case XNOR_ARITH_PRELU: want = x < 0 ? x * y : x; break;
            case XNOR_ARITH_GREATER: cmp = x > y; break;
            case XNOR_ARITH_GREATER_EQUAL: cmp = x >= y; break;
            case XNOR_ARITH_LESS: cmp = x < y; break;
            case XNOR_ARITH_LESS_EQUAL: cmp = x <= y; break;
            case XNOR_ARITH_EQUAL: cmp = x == y; break;
            }
            if (cmp >= 0 ? ((uint8_t *)dst)[i] != cmp : !same_f(((float *)dst)[i], want)) {
                printf("FAIL %s arith op %d rank %zu at %zu: %a op %a gave %a\n", isa, op, rank, i, x, y,
                       cmp >= 0 ? (double)((uint8_t *)dst)[i] : (double)((float *)dst)[i]);
                bad = 1;
            }
        }
        if (st != XNOR_OK) printf("FAIL %s arith op %d: status %d (%s)\n", isa, op, st, xnor_last_error());
        failures += bad;
        if (ac != a) free(ac);
    }
    /* where: cond of any nonzero byte, broadcast like the operands */
    size_t dc[6];
    rnd_operand(out, rank, dc);
    uint8_t *c = malloc(n);
    for (size_t i = 0; i < n; i++) c[i] = rnd() % 2 ? 0 : (uint8_t)(1 + rnd() % 255);
    cases++;
    xnor_status st = xnor_where_f32(c, dc, a, da, b, db, o, out, rank);
    int bad = st != XNOR_OK;
    for (size_t i = 0; i < n && !bad; i++) {
        float want = c[bidx(i, out, dc, rank)] ? a[bidx(i, out, da, rank)] : b[bidx(i, out, db, rank)];
        if (f2u(o[i]) != f2u(want)) bad = 1; /* a copy: NaN bits too */
    }
    if (bad) {
        printf("FAIL %s where rank %zu: status %d\n", isa, rank, st);
        failures++;
    }
    free(a); free(b); free(o); free(c);
}

/* np.round: half to even, written without rint */
static float ref_round(float v) {
    if (!(fabsf(v) < 8388608.0f)) return v; /* integral already (or inf, NaN) */
    float f = floorf(v), d = v - f, r = d > 0.5f ? f + 1.0f : d < 0.5f ? f : (fmodf(f, 2.0f) == 0.0f ? f : f + 1.0f);
    return r == 0.0f ? copysignf(0.0f, v) : r;
}
static float ref_sign(float v) {
    if (isnan(v)) return v;
    return v > 0 ? 1.0f : v < 0 ? -1.0f : 0.0f;
}

static void check_unary(const char *isa) {
    size_t n = (size_t)rnd_range(1, 300);
    float *x = malloc(n * 4), *o = malloc(n * 4);
    for (size_t i = 0; i < n; i++) x[i] = rnd_special();
    for (int op = 0; op < XNOR_UN_COUNT; op++) {
        cases++;
        xnor_status st = xnor_unary_f32((xnor_unary_op)op, x, o, n);
        int bad = st != XNOR_OK;
        for (size_t i = 0; i < n && !bad; i++) {
            float v = x[i], want = 0.0f;
            switch (op) {
            case XNOR_UN_RELU: want = isnan(v) ? v : v > 0.0f ? v : 0.0f; break;
            case XNOR_UN_NEG: want = -v; break;
            case XNOR_UN_ABS: want = fabsf(v); break;
            case XNOR_UN_ROUND: want = ref_round(v); break;
            case XNOR_UN_FLOOR: want = floorf(v); break;
            case XNOR_UN_CEIL: want = ceilf(v); break;
            case XNOR_UN_TRUNC: want = v < 0 ? ceilf(v) : floorf(v); break;
            case XNOR_UN_ROUND_UP: want = ref_sign(v) * ceilf(fabsf(v)); break;
            case XNOR_UN_ROUND_HALF_UP: want = ref_sign(v) * floorf(fabsf(v) + 0.5f); break;
            case XNOR_UN_ROUND_HALF_DOWN: want = ref_sign(v) * ceilf(fabsf(v) - 0.5f); break;
            /* long double's exp, then one rounding: the library's double exp may differ from it in the last
               bit of the double, which can move the float32 result by one ulp at a rounding tie */
            case XNOR_UN_SIGMOID: want = (float)(1.0L / (1.0L + expl(-(long double)v))); break;
            }
            int close = op == XNOR_UN_SIGMOID && (o[i] == nextafterf(want, INFINITY) || o[i] == nextafterf(want, -INFINITY));
            if (!same_f(o[i], want) && !close) {
                printf("FAIL %s unary op %d of %a: got %a want %a\n", isa, op, v, o[i], want);
                bad = 1;
            }
        }
        failures += bad;
    }
    /* in place */
    cases++;
    memcpy(o, x, n * 4);
    if (xnor_unary_f32(XNOR_UN_ROUND_HALF_UP, o, o, n) != XNOR_OK) failures++;
    for (size_t i = 0; i < n; i++)
        if (!same_f(o[i], ref_sign(x[i]) * floorf(fabsf(x[i]) + 0.5f))) { printf("FAIL %s unary in place\n", isa); failures++; break; }
    free(x); free(o);
}

static void check_batchnorm(const char *isa) {
    size_t outer = (size_t)rnd_range(1, 3), ch = (size_t)rnd_range(1, 40), inner = rnd() % 2 ? 1 : (size_t)rnd_range(1, 50);
    size_t n = outer * ch * inner;
    float *x = malloc(n * 4), *o = malloc(n * 4), *p = malloc(4 * ch * 4);
    for (size_t i = 0; i < n; i++) x[i] = rnd_special();
    for (size_t i = 0; i < 4 * ch; i++) p[i] = rnd() % 8 ? rnd_float() * 3.0f : rnd_special();
    const float *mean = p, *denom = p + ch, *scale = p + 2 * ch, *bias = p + 3 * ch;
    cases++;
    int bad = xnor_batchnorm_f32(x, mean, denom, scale, bias, outer, ch, inner, o) != XNOR_OK;
    for (size_t i = 0; i < n && !bad; i++) {
        size_t c = i / inner % ch;
        float t = x[i] - mean[c];
        t = t / denom[c];
        t = t * scale[c];
        t = t + bias[c];
        if (!same_f(o[i], t)) {
            printf("FAIL %s batchnorm (%zu, %zu, %zu) at %zu: got %a want %a\n", isa, outer, ch, inner, i, o[i], t);
            bad = 1;
        }
    }
    failures += bad;
    free(x); free(o); free(p);
}

static void check_exp(void) {
    static const double specials[] = {0.0, -0.0, -1e-300, 1e-300, -1.0, 1.0, -0.34657359027997264,
                                      0.34657359027997264, -708.39641853226408, -708.4, -744.0, -745.1,
                                      -745.2, 709.7, 709.78, -7.0e-17};
    int bad = 0;
    cases++;
    for (int i = 0; i < 20000 + 16 && !bad; i++) {
        double x;
        if (i < 16) x = specials[i];
        else if (i % 4 == 0) x = -746.0 + 1456.0 * ((double)(rnd() >> 11) / 9007199254740992.0);
        else x = -40.0 * ((double)(rnd() >> 11) / 9007199254740992.0); /* softmax's range */
        double got = xnor_exp_f64(x);
        long double want = expl((long double)x), err = fabsl((long double)got - want);
        if (want > (long double)DBL_MAX ? got != INFINITY : !(err <= 1e-15L * want + 4.9406564584124654e-324L)) {
            printf("FAIL exp(%a) = %a, want %.21Lg (relative error %Lg)\n", x, got, want, err / want);
            bad = 1;
        }
    }
    if (xnor_exp_f64(0.0) != 1.0 || xnor_exp_f64(-INFINITY) != 0.0 || xnor_exp_f64(INFINITY) != INFINITY ||
        !isnan(xnor_exp_f64(NAN)) || xnor_exp_f64(-800.0) != 0.0 || xnor_exp_f64(710.0) != INFINITY ||
        xnor_exp_f64(-745.2) != 0.0 || xnor_exp_f64(-745.1) != 0x1p-1074 /* the smallest subnormal */) {
        printf("FAIL exp special values\n");
        bad = 1;
    }
    failures += bad;
}

/* x (outer, mid, inner) -> (outer * inner, mid): the layout the inner == 1 paths take */
static void to_rows(const float *x, size_t outer, size_t mid, size_t inner, float *t) {
    for (size_t o = 0; o < outer; o++)
        for (size_t i = 0; i < mid; i++)
            for (size_t j = 0; j < inner; j++) t[(o * inner + j) * mid + i] = x[(o * mid + i) * inner + j];
}

static void check_softmax_mean(const char *isa) {
    size_t outer = (size_t)rnd_range(1, 3), mid = (size_t)rnd_range(1, 70);
    size_t inner = rnd() % 3 == 0 ? 1 : (size_t)rnd_range(1, rnd() % 4 ? 20 : 600); /* past one chunk */
    size_t n = outer * mid * inner, cols = outer * inner;
    float *x = malloc(n * 4), *o = malloc(n * 4), *t = malloc(n * 4), *ot = malloc(n * 4);
    float *m = malloc(cols * 4), *mt = malloc(cols * 4);
    int special = rnd() % 4 == 0, scale = rnd_range(0, 6);
    for (size_t i = 0; i < n; i++)
        x[i] = special && rnd() % 8 == 0 ? rnd_special() : rnd_float() * (float)(1 << scale) * 10.0f;
    cases += 2;
    int bad = 0;
    if (xnor_softmax_f32(x, outer, mid, inner, o) != XNOR_OK || xnor_mean_f32(x, outer, mid, inner, m) != XNOR_OK) {
        printf("FAIL %s softmax/mean: %s\n", isa, xnor_last_error());
        failures++;
        goto done;
    }
    for (size_t col = 0; col < cols && !bad; col++) {
        size_t ob = col / inner, j = col % inner;
        const float *xc = x + ob * mid * inner + j;
        const float *oc = o + ob * mid * inner + j;
        /* the documented formula, step by step */
        float mx = xc[0];
        int has_nan = 0;
        for (size_t i = 0; i < mid; i++) mx = xc[i * inner] > mx ? xc[i * inner] : mx;
        for (size_t i = 0; i < mid; i++) has_nan |= isnan(xc[i * inner]);
        if (has_nan) mx = NAN;
        double sum = 0.0;
        long double lsum = 0.0L, msum = 0.0L, mag = 0.0L;
        for (size_t i = 0; i < mid; i++) {
            sum += (double)(float)xnor_exp_f64((double)(xc[i * inner] - mx));
            lsum += expl((long double)(xc[i * inner] - mx)); /* the float32 difference, as specified */
            msum += (long double)xc[i * inner], mag += fabsl((long double)xc[i * inner]);
        }
        for (size_t i = 0; i < mid && !bad; i++) {
            float e = (float)xnor_exp_f64((double)(xc[i * inner] - mx));
            float want = (float)((double)e / sum);
            long double exact = expl((long double)(xc[i * inner] - mx)) / lsum;
            if (!same_f(oc[i * inner], want)) {
                printf("FAIL %s softmax (%zu, %zu, %zu) col %zu i %zu: got %a, the formula gives %a\n", isa, outer, mid,
                       inner, col, i, oc[i * inner], want);
                bad = 1;
            } else if (!isnan(exact) && !isinf(exact) && !(fabsl((long double)want - exact) <= 4e-7L * exact + 1.5e-45L)) {
                printf("FAIL %s softmax col %zu i %zu: %a is off the long double %Lg\n", isa, col, i, want, exact);
                bad = 1;
            }
        }
        /* mean: the formula exactly, and close to the long double mean */
        double s = 0.0;
        for (size_t i = 0; i < mid; i++) s += (double)xc[i * inner];
        float want = (float)(s / (double)mid), got = m[ob * inner + j];
        long double exact = msum / (long double)mid;
        if (!same_f(got, want)) {
            printf("FAIL %s mean (%zu, %zu, %zu) col %zu: got %a, the formula gives %a\n", isa, outer, mid, inner, col, got, want);
            bad = 1;
        } else if (isfinite(exact) && !(fabsl((long double)got - exact) <= 1e-7L * fabsl(exact) + 1e-15L * mag / mid + 1e-45L)) {
            printf("FAIL %s mean col %zu: %a is off the long double %Lg\n", isa, col, got, exact);
            bad = 1;
        }
    }
    /* the same columns laid out as rows (inner == 1) give the same bits; in place gives the same bits */
    to_rows(x, outer, mid, inner, t);
    if (xnor_softmax_f32(t, cols, mid, 1, ot) != XNOR_OK || xnor_mean_f32(t, cols, mid, 1, mt) != XNOR_OK ||
        xnor_softmax_f32(t, cols, mid, 1, t) != XNOR_OK) bad = 1;
    to_rows(o, outer, mid, inner, x); /* x is no longer needed: the softmax as rows */
    for (size_t i = 0; i < n && !bad; i++)
        if (!same_f(ot[i], x[i]) || !same_f(t[i], x[i])) {
            printf("FAIL %s softmax (%zu, %zu, %zu): the row layout or in place gives other bits\n", isa, outer, mid, inner);
            bad = 1;
        }
    for (size_t col = 0; col < cols && !bad; col++)
        if (!same_f(mt[col], m[col])) {
            printf("FAIL %s mean (%zu, %zu, %zu): the row layout gives other bits\n", isa, outer, mid, inner);
            bad = 1;
        }
    failures += bad;
done:
    free(x); free(o); free(t); free(ot); free(m); free(mt);
}

/* Exact properties: a constant column's softmax is (float)(1.0 / n) everywhere and its mean is the
 * constant; a column with +inf, NaN, or only -inf gives NaN; -inf entries beside finite ones give 0. */
static void check_softmax_specials(void) {
    float x[8], o[8];
    int bad = 0;
    cases++;
    for (size_t n = 1; n <= 8; n++) {
        for (size_t i = 0; i < n; i++) x[i] = -3.75f;
        xnor_softmax_f32(x, 1, n, 1, o);
        for (size_t i = 0; i < n; i++) bad |= o[i] != (float)(1.0 / (double)n);
        xnor_mean_f32(x, 1, n, 1, o);
        bad |= o[0] != -3.75f;
    }
    const float rows[4][3] = {{1.0f, INFINITY, 2.0f}, {1.0f, NAN, 2.0f}, {-INFINITY, -INFINITY, -INFINITY},
                              {INFINITY, INFINITY, 0.0f}};
    for (int r = 0; r < 4; r++) {
        xnor_softmax_f32(rows[r], 1, 3, 1, o);
        for (int i = 0; i < 3; i++) bad |= !isnan(o[i]);
    }
    const float part[3] = {-INFINITY, 0.0f, -INFINITY};
    xnor_softmax_f32(part, 1, 3, 1, o);
    bad |= f2u(o[0]) != 0 || o[1] != 1.0f || f2u(o[2]) != 0;
    if (bad) {
        printf("FAIL softmax/mean special values\n");
        failures++;
    }
}

static void check_transpose(const char *isa) {
    size_t dims[6], perm[6], rank = rnd_shape(dims, 4000), n = 1, es = (size_t)1 << rnd_range(0, 3);
    if (rnd() % 8 == 0) rank = 4, dims[0] = 1, dims[1] = (size_t)rnd_range(1, 70), dims[2] = dims[3] = (size_t)rnd_range(1, 20);
    for (size_t i = 0; i < rank; i++) n *= dims[i], perm[i] = i;
    for (size_t i = rank; i-- > 1;) { /* Fisher-Yates */
        size_t j = rnd() % (i + 1), tmp = perm[i];
        perm[i] = perm[j], perm[j] = tmp;
    }
    unsigned char *x = malloc(n * es), *o = malloc(n * es);
    for (size_t i = 0; i < n * es; i++) x[i] = (unsigned char)rnd();
    cases++;
    int bad = xnor_transpose(x, es, dims, perm, rank, o) != XNOR_OK;
    size_t od[6], in_stride[6], step = 1;
    for (size_t i = rank; i-- > 0;) in_stride[i] = step, step *= dims[i];
    for (size_t i = 0; i < rank; i++) od[i] = dims[perm[i]];
    for (size_t q = 0; q < n && !bad; q++) {
        size_t rem = q, src = 0;
        for (size_t i = rank; i-- > 0;) src += (rem % od[i]) * in_stride[perm[i]], rem /= od[i];
        if (memcmp(o + q * es, x + src * es, es) != 0) bad = 1;
    }
    if (bad) {
        printf("FAIL %s transpose rank %zu elem %zu dims", isa, rank, es);
        for (size_t i = 0; i < rank; i++) printf(" %zu", dims[i]);
        printf(" perm");
        for (size_t i = 0; i < rank; i++) printf(" %zu", perm[i]);
        printf("\n");
        failures++;
    }
    free(x); free(o);
}

/* The activation-sized cases the fast paths exist for: NCHW <-> NHWC of 1x64x56x56, and the arith
 * layouts over it (same shape, scalar, last-axis and axis-1 channel vectors). */
static void check_fops_large(void) {
    size_t nchw[4] = {1, 64, 56, 56}, nhwc[4] = {1, 56, 56, 64}, to_nhwc[4] = {0, 2, 3, 1}, to_nchw[4] = {0, 3, 1, 2};
    size_t n = 64 * 56 * 56;
    float *x = malloc(n * 4), *t = malloc(n * 4), *back = malloc(n * 4), *o = malloc(n * 4), *v = malloc(64 * 4);
    for (size_t i = 0; i < n; i++) x[i] = rnd_float();
    for (size_t i = 0; i < 64; i++) v[i] = rnd_float();
    cases++;
    int bad = xnor_transpose(x, 4, nchw, to_nhwc, 4, t) != XNOR_OK || xnor_transpose(t, 4, nhwc, to_nchw, 4, back) != XNOR_OK;
    for (size_t c = 0; c < 64 && !bad; c++)
        for (size_t p = 0; p < 56 * 56; p++)
            if (f2u(t[p * 64 + c]) != f2u(x[c * 56 * 56 + p]) || f2u(back[c * 56 * 56 + p]) != f2u(x[c * 56 * 56 + p])) {
                bad = 1;
                break;
            }
    size_t vlast[4] = {1, 1, 1, 64}, vchan[4] = {1, 64, 1, 1}, one[4] = {1, 1, 1, 1};
    if (!bad && (xnor_arith_f32(XNOR_ARITH_MUL, t, nhwc, v, vlast, o, nhwc, 4) != XNOR_OK)) bad = 1;
    for (size_t i = 0; i < n && !bad; i++) bad = f2u(o[i]) != f2u(t[i] * v[i % 64]);
    if (!bad && (xnor_arith_f32(XNOR_ARITH_SUB, x, nchw, v, vchan, o, nchw, 4) != XNOR_OK)) bad = 1;
    for (size_t i = 0; i < n && !bad; i++) bad = f2u(o[i]) != f2u(x[i] - v[i / (56 * 56)]);
    if (!bad && (xnor_arith_f32(XNOR_ARITH_DIV, v, one, x, nchw, o, nchw, 4) != XNOR_OK)) bad = 1;
    for (size_t i = 0; i < n && !bad; i++) bad = f2u(o[i]) != f2u(v[0] / x[i]);
    if (!bad && (xnor_arith_f32(XNOR_ARITH_ADD, x, nchw, back, nchw, o, nchw, 4) != XNOR_OK)) bad = 1;
    for (size_t i = 0; i < n && !bad; i++) bad = f2u(o[i]) != f2u(x[i] + x[i]);
    if (bad) {
        printf("FAIL float tensor ops on a 1x64x56x56 activation\n");
        failures++;
    }
    free(x); free(t); free(back); free(o); free(v);
}

/* The same bits on every CPU: softmax, mean and exp of fixed inputs hash to constants recorded once
 * (on x86-64; the AArch64 run under qemu must reproduce them). */
static void check_fops_golden(void) {
    enum { N = 4 * 1000 };
    static float x[N], o[N];
    uint32_t s = 12345u;
    for (int i = 0; i < N; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)((int32_t)(s >> 8) - (1 << 23)) / (float)(1 << 19); /* [-16, 16) */
    }
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a over the output bits */
#define HASH_FLOATS(p, n) for (int i_ = 0; i_ < (n); i_++) { uint32_t u_ = f2u((p)[i_]); for (int b_ = 0; b_ < 4; b_++) h = (h ^ ((u_ >> (8 * b_)) & 255)) * 0x100000001b3u; }
    xnor_softmax_f32(x, 4, 1000, 1, o);
    HASH_FLOATS(o, N);
    xnor_softmax_f32(x, 2, 50, 40, o);
    HASH_FLOATS(o, N);
    xnor_mean_f32(x, 4, 1000, 1, o);
    HASH_FLOATS(o, 4);
    xnor_mean_f32(x, 8, 25, 20, o);
    HASH_FLOATS(o, 160);
    for (int i = 0; i < N; i++) {
        double e = xnor_exp_f64((double)x[i] * 44.0), ee = e;
        uint64_t u;
        memcpy(&u, &ee, 8);
        for (int b = 0; b < 8; b++) h = (h ^ ((u >> (8 * b)) & 255)) * 0x100000001b3u;
    }
#undef HASH_FLOATS
    cases++;
    if (h != UINT64_C(0xef99087cd77aea39)) {
        printf("FAIL softmax/mean/exp of fixed inputs hash to %016llx, not the recorded %016llx\n",
               (unsigned long long)h, (unsigned long long)UINT64_C(0xef99087cd77aea39));
        failures++;
    }
}

static int rejected(xnor_status st, const char *what) {
    return st == XNOR_EINVAL && strstr(xnor_last_error(), what) != NULL;
}

static void check_fops_errors(void) {
    float f[64] = {0};
    uint8_t c[64] = {0};
    size_t d2[2] = {2, 3}, d1[2] = {1, 3}, bad_d[2] = {2, 2}, zero[2] = {0, 3}, huge[3] = {SIZE_MAX / 8, 4, 2}; /* bytes > PTRDIFF_MAX even at 1 byte each */
    size_t d7[7] = {1, 1, 1, 1, 1, 1, 1}, perm[3] = {0, 1, 1}, id[3] = {0, 1, 2};
    cases++;
    int ok = rejected(xnor_arith_f32(XNOR_ARITH_ADD, NULL, d2, f, d2, f, d2, 2), "arith_f32") &&
             rejected(xnor_arith_f32(XNOR_ARITH_ADD, f, NULL, f, d2, f, d2, 2), "arith_f32") &&
             rejected(xnor_arith_f32(XNOR_ARITH_ADD, f, d2, f, d2, NULL, d2, 2), "arith_f32") &&
             rejected(xnor_arith_f32((xnor_arith_op)XNOR_ARITH_COUNT, f, d2, f, d2, f, d2, 2), "unknown op") &&
             rejected(xnor_arith_f32((xnor_arith_op)-1, f, d2, f, d2, f, d2, 2), "unknown op") &&
             rejected(xnor_arith_f32(XNOR_ARITH_ADD, f, d2, f, d2, f, d2, 0), "rank") &&
             rejected(xnor_arith_f32(XNOR_ARITH_ADD, f, d7, f, d7, f, d7, 7), "rank") &&
             rejected(xnor_arith_f32(XNOR_ARITH_ADD, f, d2, f, bad_d, f, d2, 2), "neither 1 nor") &&
             rejected(xnor_arith_f32(XNOR_ARITH_ADD, f, d1, f, d1, f, zero, 2), ">= 1") &&
             rejected(xnor_arith_f32(XNOR_ARITH_EQUAL, f, huge, f, huge, c, huge, 3), "too large") &&
             rejected(xnor_where_f32(c, d2, f, bad_d, f, d2, f, d2, 2), "neither 1 nor") &&
             rejected(xnor_where_f32(NULL, d2, f, d2, f, d2, f, d2, 2), "where_f32") &&
             rejected(xnor_where_f32(c, d2, f, d2, f, NULL, f, d2, 2), "where_f32") &&
             rejected(xnor_unary_f32((xnor_unary_op)XNOR_UN_COUNT, f, f, 4), "unknown op") &&
             rejected(xnor_unary_f32(XNOR_UN_RELU, f, NULL, 4), "null") &&
             rejected(xnor_unary_f32(XNOR_UN_RELU, f, f, 0), ">= 1") &&
             rejected(xnor_unary_f32(XNOR_UN_RELU, f, f, SIZE_MAX / 2), "too large") &&
             rejected(xnor_batchnorm_f32(f, f, f, NULL, f, 1, 2, 3, f), "null") &&
             rejected(xnor_batchnorm_f32(f, f, f, f, f, 1, 0, 3, f), ">= 1") &&
             rejected(xnor_batchnorm_f32(f, f, f, f, f, SIZE_MAX / 16, 2, 3, f), "too large") &&
             rejected(xnor_softmax_f32(f, 0, 2, 3, f), ">= 1") && rejected(xnor_softmax_f32(NULL, 1, 2, 3, f), "null") &&
             rejected(xnor_softmax_f32(f, 1 << 22, 1 << 22, 1 << 22, f), "too large") &&
             rejected(xnor_mean_f32(f, 1, 2, 0, f), ">= 1") && rejected(xnor_mean_f32(f, 1, 2, 3, NULL), "null") &&
             rejected(xnor_transpose(f, 3, d2, id, 2, f + 32), "elem_size") &&
             rejected(xnor_transpose(f, 4, d2, perm, 3, f + 32), "permutation") &&
             rejected(xnor_transpose(f, 4, d2, id + 1, 2, f + 32), "permutation") &&
             rejected(xnor_transpose(f, 4, d7, id, 7, f + 32), "rank") &&
             rejected(xnor_transpose(f, 4, zero, id, 2, f + 32), ">= 1") &&
             rejected(xnor_transpose(f, 4, d2, id, 2, f + 3), "overlaps") &&
             rejected(xnor_transpose(f, 8, huge, id, 3, f + 32), "too large") &&
             rejected(xnor_transpose(NULL, 4, d2, id, 2, f), "null");
    if (!ok) {
        printf("FAIL bad float tensor op arguments were not rejected (last message: %s)\n", xnor_last_error());
        failures++;
    }
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
    /* the prepared float conv: null pointers, a geometry it does not take, a buffer that is not prepare's */
    size_t floats = 1;
    xnor_conv_params wg = {1, 12, 12, 8, 16, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0}, huge = wg;
    huge.in_c = ((size_t)1 << 62) + 1; /* C' = in_c * 4 * 4 would wrap to 16 */
    huge.stride_h = huge.stride_w = 4, huge.kernel_h = huge.kernel_w = 11;
    cases++;
    if (xnor_conv2d_f32_prepared_size(NULL, &floats) != XNOR_EINVAL || xnor_conv2d_f32_prepared_size(&wg, NULL) != XNOR_EINVAL ||
        xnor_conv2d_f32_prepare(f, &p, f) != XNOR_EINVAL /* groups 2: runs direct, nothing to prepare */ ||
        xnor_conv2d_f32_prepared_size(&huge, &floats) != XNOR_OK || floats != 0) {
        printf("FAIL the prepared float conv accepted bad arguments\n");
        failures++;
    }
    if (xnor_isa_active() != XNOR_ISA_REF && xnor_conv2d_f32_prepared_size(&wg, &floats) == XNOR_OK && floats) {
        float *buf = calloc(floats, sizeof(float)), *x = calloc(12 * 12 * 8, sizeof(float)), *w = calloc(9 * 8 * 16, sizeof(float));
        float *o = calloc(10 * 10 * 16, sizeof(float));
        cases++;
        if (xnor_conv2d_f32_prepare(NULL, &wg, buf) != XNOR_EINVAL ||
            xnor_conv2d_f32_run_prepared(x, w, buf, NULL, &wg, o, 1) != XNOR_EINVAL /* zeros: no header */) {
            printf("FAIL the prepared float conv ran on a buffer prepare did not write\n");
            failures++;
        }
        free(buf), free(x), free(w), free(o);
    }
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
        check_bgemm(9, 128, 1000, 1, name);     /* nibble-split bgemm (n >= 16 panels) at its smallest m, n */
        check_bgemm(33, 257, 4097, 2, name);    /* ... and with ragged m, n, k */
        for (size_t ki = 0; ki < sizeof ks / sizeof *ks; ki++) check_pack(3, ks[ki], name, -1);
        check_pack(1001, 200, name, 1), check_pack(1001, 200, name, 2), check_pack(3001, 70, name, 0); /* split rows */
        for (int i = 0; i < 60; i++) check_bconv(name);
        for (int i = 0; i < 40; i++) check_bmaxpool(name);
        for (int i = 0; i < 150; i++) check_float_layers(name, i % 5 == 0);
        for (int i = 0; i < 40; i++) check_winograd(name);
        for (int i = 0; i < 40; i++) check_arith(name), check_unary(name), check_batchnorm(name);
        for (int i = 0; i < 60; i++) check_softmax_mean(name), check_transpose(name);
        printf("%-7s %s\n", name, failures == before ? "ok" : "FAILED");
    }
    check_errors();
    check_exp();
    check_softmax_specials();
    check_fops_golden();
    check_fops_large();
    check_fops_errors();
    printf("%d passed, %d failed\n", cases - failures, failures);
    return failures != 0;
}
