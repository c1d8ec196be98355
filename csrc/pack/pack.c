/* Packing driver: validation, the ISA's float32 packer, reference packers for the other types. */
#include "pack.h"
#include "../dispatch.h"

#define PACK_ELEMS_PER_TASK_MIN (1u << 16) /* elements a task is worth (~10 us): fewer, and one thread packs all */

typedef struct {
    const void *x;
    xnor_dtype dtype;
    size_t elem, rows, k;
    uint64_t *out;
} pack_job;

static void pack_rows(const pack_job *job, size_t r0, size_t r1) {
    const char *x = (const char *)job->x + r0 * job->k * job->elem;
    uint64_t *out = job->out + r0 * XNOR_WORDS(job->k);
    size_t rows = r1 - r0, k = job->k;
    switch (job->dtype) {
    case XNOR_F32: xnor_active()->pack_f32((const float *)x, rows, k, out); break;
    case XNOR_F64: xnor_pack_f64_ref((const double *)x, rows, k, out); break;
    case XNOR_F16: xnor_pack_f16_ref((const uint16_t *)x, rows, k, out); break;
    case XNOR_I8: xnor_pack_i8_ref((const int8_t *)x, rows, k, out); break;
    case XNOR_I16: xnor_pack_i16_ref((const int16_t *)x, rows, k, out); break;
    case XNOR_I32: xnor_pack_i32_ref((const int32_t *)x, rows, k, out); break;
    case XNOR_I64: xnor_pack_i64_ref((const int64_t *)x, rows, k, out); break;
    }
}

static void pack_task(void *ctx, int t, int nt) {
    const pack_job *job = ctx;
    size_t r0, r1;
    xnor_split(job->rows, 1, t, nt, &r0, &r1);
    if (r0 < r1) pack_rows(job, r0, r1);
}

static size_t elem_size(xnor_dtype dtype) {
    switch (dtype) {
    case XNOR_I8: return 1;
    case XNOR_F16: case XNOR_I16: return 2;
    case XNOR_F32: case XNOR_I32: return 4;
    case XNOR_F64: case XNOR_I64: return 8;
    }
    return 0;
}

xnor_status xnor_pack(const void *x, xnor_dtype dtype, size_t rows, size_t k, uint64_t *out) {
    return xnor_pack_threads(x, dtype, rows, k, out, 0);
}

xnor_status xnor_pack_threads(const void *x, xnor_dtype dtype, size_t rows, size_t k, uint64_t *out, int num_threads) {
    xnor_status st = xnor_init();
    if (st != XNOR_OK) return st;
    size_t elem = elem_size(dtype);
    if (!elem) return xnor_fail(XNOR_EINVAL, "pack: unknown dtype code %d", (int)dtype);
    if (rows == 0 || k == 0) return XNOR_OK;
    if (!x || !out) return xnor_fail(XNOR_EINVAL, "pack: null pointer");
    if (rows > SIZE_MAX / k / elem) return xnor_fail(XNOR_EINVAL, "pack: rows*k overflows");
    pack_job job = {x, dtype, elem, rows, k, out};
    size_t total = rows * k;
    int nt = rows >= 2 ? xnor_threads_for(total, PACK_ELEMS_PER_TASK_MIN, num_threads) : 1;
    xnor_parallel(nt, pack_task, &job);
    return XNOR_OK;
}

xnor_status xnor_unpack_f32(const uint64_t *words, size_t rows, size_t k, float *out) {
    xnor_status st = xnor_init();
    if (st != XNOR_OK) return st;
    if (rows == 0 || k == 0) return XNOR_OK;
    if (!words || !out) return xnor_fail(XNOR_EINVAL, "unpack: null pointer");
    if (rows > SIZE_MAX / k / sizeof(float)) return xnor_fail(XNOR_EINVAL, "unpack: rows*k overflows");
    size_t W = XNOR_WORDS(k);
    for (size_t r = 0; r < rows; r++) {
        const uint64_t *src = words + r * W;
        float *dst = out + r * k;
        for (size_t i = 0; i < k; i++)
            dst[i] = 1.0f - 2.0f * (float)((src[i >> 6] >> (i & 63)) & 1);
    }
    return XNOR_OK;
}
