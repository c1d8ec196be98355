/* Transpose of a row-major tensor of up to XNOR_MAX_RANK dims, elements of 1, 2, 4 or 8 bytes.
 *
 * The permutation is first collapsed: size-1 dims are dropped and input dims that stay adjacent and in
 * order in the output are merged, so NCHW -> NHWC of (1, 64, 56, 56) becomes the 2-D transpose
 * (64, 3136) -> (3136, 64).  Then either the output's innermost dim is also the input's (rows are
 * copied whole) or it is not, and the plane of the output's innermost dim and the input's innermost dim
 * is copied in square tiles, so both the reads and the writes of a tile stay within a few cache lines.
 */
#include <string.h>
#include "fops.h"

#define TILE 16

/* The plane (rows x cols) of out[i * out_row + j] = in[i + j * in_col]: rows contiguous in the input,
 * cols contiguous in the output, in TILE x TILE blocks.  Elements move as memcpy of a constant size
 * (one load and one store; no aliasing assumption about what the bytes hold). */
#define PLANE_FN(bytes)                                                                                      \
    static void plane_##bytes(const char *in, size_t in_col, char *out, size_t out_row, size_t rows,       \
                              size_t cols) {                                                                \
        for (size_t i0 = 0; i0 < rows; i0 += TILE) {                                                        \
            size_t i1 = rows - i0 < TILE ? rows : i0 + TILE;                                                \
            for (size_t j0 = 0; j0 < cols; j0 += TILE) {                                                    \
                size_t j1 = cols - j0 < TILE ? cols : j0 + TILE;                                            \
                for (size_t i = i0; i < i1; i++) {                                                          \
                    char *dst = out + (i * out_row + j0) * (bytes);                                         \
                    const char *src = in + (i + j0 * in_col) * (bytes);                                     \
                    for (size_t j = j0; j < j1; j++, dst += (bytes), src += in_col * (bytes))              \
                        memcpy(dst, src, (bytes));                                                          \
                }                                                                                           \
            }                                                                                               \
        }                                                                                                   \
    }
PLANE_FN(1)
PLANE_FN(2)
PLANE_FN(4)
PLANE_FN(8)

typedef void (*plane_fn)(const char *in, size_t in_col, char *out, size_t out_row, size_t rows, size_t cols);

xnor_status xnor_transpose(const void *x, size_t elem_size, const size_t *dims, const size_t *perm, size_t rank,
                           void *out) {
    if (!x || !dims || !perm || !out) return xnor_fail(XNOR_EINVAL, "transpose: null pointer");
    if (elem_size != 1 && elem_size != 2 && elem_size != 4 && elem_size != 8)
        return xnor_fail(XNOR_EINVAL, "transpose: elem_size must be 1, 2, 4 or 8, got %zu", elem_size);
    if (rank < 1 || rank > XNOR_MAX_RANK)
        return xnor_fail(XNOR_EINVAL, "transpose: rank must be 1..%d, got %zu", XNOR_MAX_RANK, rank);
    int seen[XNOR_MAX_RANK] = {0};
    size_t count = 1;
    for (size_t i = 0; i < rank; i++) {
        if (perm[i] >= rank || seen[perm[i]]) return xnor_fail(XNOR_EINVAL, "transpose: perm is not a permutation");
        seen[perm[i]] = 1;
        if (!dims[i]) return xnor_fail(XNOR_EINVAL, "transpose: sizes must be >= 1 (dim %zu is 0)", i);
        if (dims[i] > XNOR_FOPS_MAX_BYTES / elem_size / count)
            return xnor_fail(XNOR_EINVAL, "transpose: the tensor is too large for the address space");
        count *= dims[i];
    }
    uintptr_t x0 = (uintptr_t)x, o0 = (uintptr_t)out, bytes = (uintptr_t)(count * elem_size);
    if (x0 < o0 + bytes && o0 < x0 + bytes) return xnor_fail(XNOR_EINVAL, "transpose: out overlaps x");

    /* input strides (elements); then the output's dims with the input stride of each, collapsed */
    size_t in_stride[XNOR_MAX_RANK], step = 1;
    for (size_t i = rank; i-- > 0;) in_stride[i] = step, step *= dims[i];
    size_t od[XNOR_MAX_RANK], is[XNOR_MAX_RANK], n = 0;
    for (size_t i = 0; i < rank; i++) {
        size_t d = dims[perm[i]], s = in_stride[perm[i]];
        if (d == 1) continue;
        if (n > 0 && is[n - 1] == s * d) { /* the previous output dim steps over this one whole: merge */
            od[n - 1] *= d, is[n - 1] = s;
        } else {
            od[n] = d, is[n] = s, n++;
        }
    }
    if (n == 0) od[0] = 1, is[0] = 1, n = 1;
    if (n == 1) { /* the identity, after collapsing */
        memcpy(out, x, count * elem_size);
        return XNOR_OK;
    }
    /* out strides (elements) */
    size_t os[XNOR_MAX_RANK];
    step = 1;
    for (size_t i = n; i-- > 0;) os[i] = step, step *= od[i];

    const char *src = x;
    char *dst = out;
    size_t idx[XNOR_MAX_RANK] = {0};
    if (is[n - 1] == 1) { /* the innermost dim is contiguous in both: copy rows */
        size_t row = od[n - 1] * elem_size, in_off = 0, rows = count / od[n - 1];
        for (size_t r = 0; r < rows; r++) {
            memcpy(dst + r * row, src + in_off * elem_size, row);
            for (size_t d = n - 1; d-- > 0;) {
                in_off += is[d];
                if (++idx[d] < od[d]) break;
                in_off -= is[d] * od[d], idx[d] = 0;
            }
        }
        return XNOR_OK;
    }
    /* p: the output dim holding the input's innermost (stride 1) dim; the plane (p, n-1) is tiled and
     * the other dims are walked around it */
    size_t p = 0;
    while (is[p] != 1) p++;
    plane_fn plane = elem_size == 1 ? plane_1 : elem_size == 2 ? plane_2 : elem_size == 4 ? plane_4 : plane_8;
    size_t planes = count / (od[p] * od[n - 1]), in_off = 0, out_off = 0;
    for (size_t q = 0; q < planes; q++) {
        plane(src + in_off * elem_size, is[n - 1], dst + out_off * elem_size, os[p], od[p], od[n - 1]);
        for (size_t d = n - 1; d-- > 0;) {
            if (d == p) continue;
            in_off += is[d], out_off += os[d];
            if (++idx[d] < od[d]) break;
            in_off -= is[d] * od[d], out_off -= os[d] * od[d], idx[d] = 0;
        }
    }
    return XNOR_OK;
}
