/* What every kernel file shares: the platform, bit-row helpers, the error setter and the thread pool.
 * The families build on it: bgemm/bgemm.h, pack/pack.h, bconv/output.h, bconv/bconv.h, fconv/fconv.h,
 * fconv/winograd.h, fops/fops.h, and dispatch.h, which ties their kernels into one table per ISA. */
#ifndef XNOR_COMMON_H
#define XNOR_COMMON_H

#include "xnorinfer/kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#define XNOR_X86 1
#endif
#if defined(__aarch64__)
#define XNOR_ARM64 1
#endif

/* Loops worth vectorising that GCC's -O2 cost model leaves scalar (clang vectorises them anyway). */
#if defined(__GNUC__) && !defined(__clang__)
#define VECTORIZE __attribute__((optimize("tree-vectorize")))
#else
#define VECTORIZE
#endif

#define XNOR_WORDS(k) (((k) + 63) / 64)
/* Mask of the valid bits of a row's last word. */
#define XNOR_TAIL_MASK(k) (((k) % 64) ? ((UINT64_C(1) << ((k) % 64)) - 1) : ~UINT64_C(0))

/* Portable popcount (the reference path must not depend on a CPU instruction). */
static inline unsigned xnor_popcount64_portable(uint64_t x) {
    x = x - ((x >> 1) & UINT64_C(0x5555555555555555));
    x = (x & UINT64_C(0x3333333333333333)) + ((x >> 2) & UINT64_C(0x3333333333333333));
    x = (x + (x >> 4)) & UINT64_C(0x0f0f0f0f0f0f0f0f);
    return (unsigned)((x * UINT64_C(0x0101010101010101)) >> 56);
}

/* Sets the calling thread's xnor_last_error() message and returns status (dispatch.c). */
xnor_status xnor_fail(xnor_status status, const char *fmt, ...);

/* Thread pool (threadpool.c): run fn(ctx, t, nt) for t in [0, nt) on nt threads (the caller is thread 0).
 * If the pool is busy with another caller, the work runs on the calling thread alone (nt = 1). */
typedef void (*xnor_task_fn)(void *ctx, int t, int nt);
void xnor_parallel(int num_threads, xnor_task_fn fn, void *ctx);
/* Wake sleeping workers to spin for the next xnor_parallel, without giving them work: a caller about to
 * run a sequence of parallel steps (a model run) overlaps their wake-up with its first serial work. */
void xnor_pool_wake(void);
/* Threads worth using: the request (<= 0: the pool's size), at most one per min_work units of work. */
int xnor_threads_for(size_t work, size_t min_work, int num_threads);
/* Task t of nt's share [*lo, *hi) of total items, split in whole units (the last one may be short). */
void xnor_split(size_t total, size_t unit, int t, int nt, size_t *lo, size_t *hi);

#endif
