/* Winograd F(4x4, 3x3) for float convolutions, strided ones by polyphase decomposition.
 *
 * A conv of stride (sh, sw) is a stride-1 conv over the input's sh*sw phases: phase (p, q) holds the
 * pixels (u*sh + p, v*sw + q), and kernel tap (a*sh + p, b*sw + q) of the original weights becomes
 * tap (a, b) of that phase (taps past the kernel are zero).  When every phase kernel is 3x3 (3x3 stride 1,
 * 5x5 or 6x6 stride 2, 7x7..9x9 stride 3, 9x9..12x12 stride 4: AlexNet's 11x11 stem), the result is one
 * stride-1 3x3 conv with C' = sh*sw*in_c input channels, which Winograd's F(4x4, 3x3) computes with 36
 * products per 4x4 outputs instead of 144: 4x fewer multiply-adds, 3.4x for the 11x11 stem after the
 * zero taps (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural Networks"; the transforms
 * are theirs, with interpolation points 0, +-1, +-2 and infinity).
 *
 * Work goes by blocks of up to WG_TILES tiles along one tile row: the 6 rows of phase pixels under
 * the block are gathered into a strip and transformed (V = B^T d B: 36 positions xi per tile); then 36
 * matrix products M[xi] = V[xi] U[xi] over C', by the ISA's float block kernel (the direct conv's
 * register tile, as a 1x1 conv); then Y = A^T M A plus bias.  U = G g G^T is prepared once per weights.
 * The output channels go in slices whose U (36 x C' x slice floats) stays in L2 while every block
 * passes through it; a block's input transform is redone per slice, which costs less than streaming
 * U from L3 for every block.
 *
 * Rounding differs from the direct conv's (the transforms combine inputs before the products): errors
 * are about 10x the direct sum's, up to ~4e-6 of the largest sum of |products| in the output's 4x4 tile
 * (a tile shares its rounding, so an output at a padded border with few terms of its own carries its
 * neighbours' error).  The reference ISA keeps the direct conv; the tests compare with float64. */
#include <stdlib.h>
#include <string.h>
#include "winograd.h"
#include "fconv.h"
#include "../dispatch.h"
#include "winograd-transforms.inc"

#define S_ADD(a, b) ((a) + (b))
#define S_SUB(a, b) ((a) - (b))
#define S_MULC(a, c) ((a) * (c))
#define XNOR_WG_IN(...) XNOR_WG_IN_G(float, S_ADD, S_SUB, S_MULC, __VA_ARGS__)
#define XNOR_WG_OUT(...) XNOR_WG_OUT_G(float, S_ADD, S_SUB, S_MULC, __VA_ARGS__)

#define WG_TILES 18            /* tiles per block: 3 block-kernel calls of 6 */
#define WG_MAX_C 4096          /* C' and out_c bounds that keep the per-thread buffers bounded */
#define WG_MAX_U_BYTES ((size_t)64 << 20) /* larger layers keep the direct conv (and their memory) */
#define WG_OC 16               /* output channels per block-kernel call */
#define WG_PIXELS 6            /* rows (tiles) per block-kernel call */
#define WG_U_BYTES (1 << 20)   /* a slice's transformed weights (L2 or close: streamed once per block) */

static size_t phase_channels(const xnor_conv_params *p) { return p->stride_h * p->stride_w * p->in_c; }

int xnor_winograd_applies(const xnor_conv_params *p, const xnor_kernels *kern) {
    /* Every path but the reference one, which keeps the plain loop to compare the others with. */
    if (!p || !kern || xnor_isa_active() == XNOR_ISA_REF || p->groups != 1 || p->dilation_h != 1 || p->dilation_w != 1)
        return 0;
    if (!p->stride_h || !p->stride_w || p->stride_h > 4 || p->stride_w > 4 || p->in_c > WG_MAX_C) return 0; /* no overflow in C' */
    if ((p->kernel_h + p->stride_h - 1) / p->stride_h != 3 || (p->kernel_w + p->stride_w - 1) / p->stride_w != 3)
        return 0;
    size_t oh, ow, cp = phase_channels(p);
    if (xnor_conv_output_size(p, &oh, &ow) != XNOR_OK || oh < 8 || ow < 8) return 0;
    /* Too few channels: the transforms and memory passes cost more than the products saved.  Too many:
     * the transformed weights (4x the weights' floats) would pass WG_MAX_U_BYTES. */
    return cp >= 8 && cp <= WG_MAX_C && p->out_c >= 16 && p->out_c <= WG_MAX_C &&
           36 * cp * p->out_c <= WG_MAX_U_BYTES / sizeof(float);
}

/* Output channels per slice: whole block-kernel widths whose U fits WG_U_BYTES (at least one). */
static size_t slice_channels(const xnor_conv_params *p) {
    size_t per16 = 36 * phase_channels(p) * WG_OC * sizeof(float), n = WG_U_BYTES / per16;
    size_t sl = (n ? n : 1) * WG_OC;
    return sl < p->out_c ? sl : p->out_c;
}

size_t xnor_winograd_weights_floats(const xnor_conv_params *p) { return 36 * phase_channels(p) * p->out_c; }

static size_t strip_floats(size_t cp) { return 6 * (4 * WG_TILES + 2) * cp; }

size_t xnor_winograd_workspace_bytes(const xnor_conv_params *p, int num_threads) {
    size_t nt = num_threads >= 1 ? (size_t)num_threads : 1, cp = phase_channels(p);
    size_t per = (strip_floats(cp) + 36 * WG_TILES * cp + 36 * WG_TILES * slice_channels(p)) * sizeof(float);
    per = (per + 63) & ~(size_t)63;
    return nt * per;
}

/* U[xi][c'][o] = (G g G^T)[xi] for each phase kernel g (3x3, zero past the original kernel), with
 * G = [[1/4,0,0],[-1/6,-1/6,-1/6],[-1/6,1/6,-1/6],[1/24,1/12,1/6],[1/24,-1/12,1/6],[0,0,1]]; computed
 * in double, rounded once. */
void xnor_winograd_prepare(const float *w, const xnor_conv_params *p, float *u) {
    static const double G[6][3] = {{1.0 / 4, 0, 0},
                                   {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                   {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                   {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                   {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                   {0, 0, 1}};
    size_t sh = p->stride_h, sw = p->stride_w, cp = phase_channels(p), oc = p->out_c;
    for (size_t ph = 0; ph < sh; ph++)
        for (size_t pw = 0; pw < sw; pw++)
            for (size_t ch = 0; ch < p->in_c; ch++) {
                size_t c = (ph * sw + pw) * p->in_c + ch;
                for (size_t o = 0; o < oc; o++) {
                    double g[3][3], t[6][3];
                    for (size_t a = 0; a < 3; a++)
                        for (size_t b = 0; b < 3; b++) {
                            size_t ky = a * sh + ph, kx = b * sw + pw;
                            g[a][b] = ky < p->kernel_h && kx < p->kernel_w
                                          ? w[((ky * p->kernel_w + kx) * p->in_c + ch) * oc + o] : 0.0;
                        }
                    for (size_t i = 0; i < 6; i++)
                        for (size_t b = 0; b < 3; b++) t[i][b] = G[i][0] * g[0][b] + G[i][1] * g[1][b] + G[i][2] * g[2][b];
                    for (size_t i = 0; i < 6; i++)
                        for (size_t j = 0; j < 6; j++)
                            u[((i * 6 + j) * cp + c) * oc + o] =
                                (float)(t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2]);
                }
            }
}

/* The transforms, portable (the AVX2 ones in fconv-avx2.c evaluate the same expressions in the same
 * order, so both give the same bits; the build keeps the compiler from contracting them into FMAs).
 *
 * Input: n tiles side by side along a strip of 6 rows of phase pixels (row i at strip + i*row_stride,
 * pixel v at + v*cp; tile k covers pixels 4k..4k+5): V[xi][k][c] = (B^T d B)[xi], xi = 6*i + j at
 * v + xi*v_stride + k*cp, with B^T = [[4,0,-5,0,1,0],[0,-4,-4,1,1,0],[0,4,-4,-1,1,0],[0,-2,-1,2,1,0],
 * [0,2,-1,-2,1,0],[0,4,0,-5,0,1]] (XNOR_WG_IN below, on one row or column of six).
 *
 * Output: the n tiles' products M[xi][k][o] (m + xi*m_stride + k*ldm, o < nch) to output pixels:
 * Y = A^T M A + bias, A^T = [[1,1,1,1,1,0],[0,1,-1,2,-2,0],[0,1,1,4,4,0],[0,1,-1,8,-8,1]]; row a of
 * tile k's 4x4 goes to out[a] + (4k + b)*ld, for the first `cols` pixels of the strip; out[a] NULL:
 * that row lies past the output. */
VECTORIZE
void xnor_winograd_input_ref(const float *strip, size_t row_stride, size_t n, size_t cp, float *v, size_t v_stride) {
    for (size_t k = 0; k < n; k++) {
        const float *base = strip + 4 * k * cp;
        float *out = v + k * cp;
        for (size_t c = 0; c < cp; c++) {
            float d[6][6], t[6][6];
            for (size_t i = 0; i < 6; i++)
                for (size_t j = 0; j < 6; j++) d[i][j] = base[i * row_stride + j * cp + c];
            for (size_t j = 0; j < 6; j++)
                XNOR_WG_IN(d[0][j], d[1][j], d[2][j], d[3][j], d[4][j], d[5][j], t[0][j], t[1][j], t[2][j], t[3][j],
                           t[4][j], t[5][j]);
            for (size_t i = 0; i < 6; i++) {
                float y[6];
                XNOR_WG_IN(t[i][0], t[i][1], t[i][2], t[i][3], t[i][4], t[i][5], y[0], y[1], y[2], y[3], y[4], y[5]);
                for (size_t j = 0; j < 6; j++) out[(6 * i + j) * v_stride + c] = y[j];
            }
        }
    }
}

VECTORIZE
void xnor_winograd_output_ref(const float *m, size_t m_stride, size_t ldm, size_t n, size_t nch, const float *bias,
                              float *const out[4], size_t ld, size_t cols) {
    for (size_t k = 0; k < n; k++) {
        const float *mk = m + k * ldm;
        for (size_t o = 0; o < nch; o++) {
            float q[6][6], s[4][6], y[4][4];
            for (size_t xi = 0; xi < 36; xi++) q[xi / 6][xi % 6] = mk[xi * m_stride + o];
            for (size_t j = 0; j < 6; j++) XNOR_WG_OUT(q[0][j], q[1][j], q[2][j], q[3][j], q[4][j], q[5][j], s[0][j], s[1][j], s[2][j], s[3][j]);
            for (size_t a = 0; a < 4; a++) XNOR_WG_OUT(s[a][0], s[a][1], s[a][2], s[a][3], s[a][4], s[a][5], y[a][0], y[a][1], y[a][2], y[a][3]);
            float b = bias ? bias[o] : 0.0f;
            for (size_t a = 0; a < 4; a++) {
                if (!out[a]) continue;
                for (size_t c = 0; c < 4 && 4 * k + c < cols; c++) out[a][(4 * k + c) * ld + o] = b + y[a][c];
            }
        }
    }
}

typedef struct {
    const float *x, *u, *bias;
    const xnor_conv_params *p;
    float *out;
    size_t out_h, out_w, tiles_h, tiles_w, cp, slice;
    xnor_fconv_block_fn block;
    xnor_winograd_input_fn input;
    xnor_winograd_output_fn output;
    char *workspace;
    size_t per_thread;
} wjob;

/* Phase pixels [v0, v0 + nv) of phase rows u0..u0+5 into strip[6][nv][C'] (zero outside the input).
 * Phase pixel (u, v), channel (ph*sw + q)*in_c + ch is input pixel (u*sh + ph, v*sw + q). */
static void gather_strip(const wjob *job, size_t b, size_t u0, size_t v0, size_t nv, float *strip) {
    const xnor_conv_params *p = job->p;
    size_t sh = p->stride_h, sw = p->stride_w, c = p->in_c, run = sw * c, cp = job->cp;
    const float *image = job->x + b * p->in_h * p->in_w * c;
    for (size_t i = 0; i < 6; i++)
        for (size_t ph = 0; ph < sh; ph++) {
            long y = (long)((u0 + i) * sh + ph) - (long)p->pad_top;
            float *dst = strip + i * nv * cp + ph * run;
            if (y < 0 || y >= (long)p->in_h) {
                for (size_t v = 0; v < nv; v++) memset(dst + v * cp, 0, run * sizeof(float));
                continue;
            }
            const float *row = image + (size_t)y * p->in_w * c;
            for (size_t v = 0; v < nv; v++) {
                long x0 = (long)((v0 + v) * sw) - (long)p->pad_left;
                float *d = dst + v * cp;
                if (x0 >= 0 && x0 + (long)sw <= (long)p->in_w) {
                    memcpy(d, row + (size_t)x0 * c, run * sizeof(float));
                } else {
                    for (size_t q = 0; q < sw; q++) {
                        long xx = x0 + (long)q;
                        if (xx < 0 || xx >= (long)p->in_w) memset(d + q * c, 0, c * sizeof(float));
                        else memcpy(d + q * c, row + (size_t)xx * c, c * sizeof(float));
                    }
                }
            }
        }
}

/* Tiles are numbered along tile rows, image after image; a block is WG_TILES consecutive ones (the
 * block kernel's calls stay 6 tiles tall), its runs of tiles within one tile row are its segments. */
#define FOR_SEGMENTS(job, t0, n, b, ty, tx0, k0, len)                                                      \
    for (size_t k0 = 0, len, b, ty, tx0; k0 < (n) &&                                                      \
         (b = ((t0) + k0) / ((job)->tiles_h * (job)->tiles_w), ty = ((t0) + k0) / (job)->tiles_w % (job)->tiles_h, \
         tx0 = ((t0) + k0) % (job)->tiles_w,                                                               \
         len = (job)->tiles_w - tx0 < (n) - k0 ? (job)->tiles_w - tx0 : (n) - k0, 1);                       \
         k0 += len)

static void wtask(void *ctx, int t, int nt) {
    wjob *job = ctx;
    const xnor_conv_params *p = job->p;
    size_t cp = job->cp, oc = p->out_c, sl = job->slice, tiles = p->batch * job->tiles_h * job->tiles_w, t0, t1;
    xnor_split(tiles, WG_TILES, t, nt, &t0, &t1);
    float *strip = (float *)(job->workspace + (size_t)t * job->per_thread);
    float *v = strip + strip_floats(cp), *m = v + 36 * WG_TILES * cp;
    size_t v_stride = WG_TILES * cp, m_stride = WG_TILES * sl;
    for (size_t ob0 = 0; ob0 < oc; ob0 += sl) {
        size_t nsl = oc - ob0 < sl ? oc - ob0 : sl;
        for (size_t blk = t0; blk < t1; blk += WG_TILES) {
            size_t n = t1 - blk < WG_TILES ? t1 - blk : WG_TILES;
            FOR_SEGMENTS(job, blk, n, b, ty, tx0, k0, len) {
                gather_strip(job, b, 4 * ty, 4 * tx0, 4 * len + 2, strip);
                job->input(strip, (4 * len + 2) * cp, len, cp, v + k0 * cp, v_stride);
            }
            for (size_t xi = 0; xi < 36; xi++) {
                const float *uxi = job->u + xi * cp * oc + ob0;
                for (size_t ob = 0; ob < nsl; ob += WG_OC) {
                    size_t n_oc = nsl - ob < WG_OC ? nsl - ob : WG_OC;
                    for (size_t k = 0; k < n; k += WG_PIXELS)
                        job->block(v + xi * v_stride + k * cp, cp, n - k < WG_PIXELS ? n - k : WG_PIXELS, 0, 0, 0, 1,
                                   0, 1, 1, cp, uxi + ob, oc, n_oc, NULL, m + xi * m_stride + k * sl + ob, sl);
                }
            }
            FOR_SEGMENTS(job, blk, n, b, ty, tx0, k0, len) {
                float *rows[4];
                for (size_t a = 0; a < 4; a++)
                    rows[a] = 4 * ty + a < job->out_h
                                  ? job->out + ((b * job->out_h + 4 * ty + a) * job->out_w + 4 * tx0) * oc + ob0 : NULL;
                job->output(m + k0 * sl, m_stride, sl, len, nsl, job->bias ? job->bias + ob0 : NULL, rows, oc,
                            job->out_w - 4 * tx0);
            }
        }
    }
}

xnor_status xnor_winograd_run(const float *x, const float *u, const float *bias, const xnor_conv_params *p,
                              float *out, int num_threads, void *workspace, size_t workspace_bytes) {
    const xnor_kernels *kern = xnor_active();
    if (!x || !u || !out || !workspace) return xnor_fail(XNOR_EINVAL, "winograd: null pointer");
    if (!xnor_winograd_applies(p, kern)) return xnor_fail(XNOR_EINVAL, "winograd: not applicable to this conv");
    wjob job;
    memset(&job, 0, sizeof job);
    job.x = x, job.u = u, job.bias = bias, job.p = p, job.out = out, job.cp = phase_channels(p);
    job.slice = slice_channels(p);
    job.block = kern->fconv_block ? kern->fconv_block : xnor_fconv_block_ref;
    job.input = kern->winograd_input ? kern->winograd_input : xnor_winograd_input_ref;
    job.output = kern->winograd_output ? kern->winograd_output : xnor_winograd_output_ref;
    job.workspace = workspace;
    xnor_conv_output_size(p, &job.out_h, &job.out_w);
    job.tiles_h = (job.out_h + 3) / 4, job.tiles_w = (job.out_w + 3) / 4;
    job.per_thread = xnor_winograd_workspace_bytes(p, 1);
    size_t tiles = p->batch * job.tiles_h * job.tiles_w, blocks = (tiles + WG_TILES - 1) / WG_TILES;
    int nt = xnor_threads_for(tiles * 36 * job.cp * p->out_c, 1 << 16, num_threads);
    if ((size_t)nt > blocks) nt = (int)blocks;
    if ((size_t)nt > workspace_bytes / job.per_thread) nt = (int)(workspace_bytes / job.per_thread);
    if (nt < 1) return xnor_fail(XNOR_EINVAL, "winograd: the workspace of %zu bytes is too small", workspace_bytes);
    xnor_parallel(nt, wtask, &job);
    return XNOR_OK;
}
