/*
 * xnorinfer — binary neural network kernels.  The one public C header.
 *
 * Bit convention (used everywhere in the project):
 *   ±1 values are packed 64 to a uint64_t along the last axis.  Element 64*j + i of a row is bit i of
 *   word j.  Bit 1 means -1, bit 0 means +1.  Packing maps x < 0 to -1 and everything else (0, -0.0,
 *   NaN) to +1.  The unused tail bits of a row's last word are written as 0 by the packers, and no
 *   kernel depends on them: callers may hand in words with garbage tail bits.
 *   The dot product of two packed rows of length K is  K - 2 * popcount(a XOR b).
 *
 * Every function validates what it can (null pointers, zero or overflowing sizes) and returns an
 * xnor_status; xnor_last_error() gives a message for the calling thread's last failure.
 */
#ifndef XNORINFER_H
#define XNORINFER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define XNOR_API __attribute__((visibility("default")))
#else
#define XNOR_API
#endif

typedef enum {
    XNOR_OK = 0,
    XNOR_EINVAL = 1,       /* bad argument: null pointer, size zero or too large, words/k mismatch */
    XNOR_ENOMEM = 2,       /* an allocation failed */
    XNOR_EUNSUPPORTED = 3  /* the requested ISA is not available on this CPU or in this build */
} xnor_status;

/* Element types accepted by xnor_pack.  Unsigned types are deliberately absent (they are never < 0). */
typedef enum {
    XNOR_F16 = 1, XNOR_F32 = 2, XNOR_F64 = 3,
    XNOR_I8 = 4, XNOR_I16 = 5, XNOR_I32 = 6, XNOR_I64 = 7
} xnor_dtype;

/* ISA paths.  XNOR_ISA_REF is the plain reference kernel: slow, obviously right, always available. */
typedef enum {
    XNOR_ISA_REF = 0, XNOR_ISA_SCALAR = 1, XNOR_ISA_AVX2 = 2, XNOR_ISA_AVX512 = 3, XNOR_ISA_NEON = 4,
    XNOR_ISA_COUNT = 5
} xnor_isa;

/* Library set-up.  Reads XNORINFER_ISA (ref|scalar|avx2|avx512|neon) and XNORINFER_NUM_THREADS once.
 * Called implicitly by every entry point; calling it explicitly surfaces an error early
 * (XNOR_EUNSUPPORTED when XNORINFER_ISA names a path this CPU lacks). */
XNOR_API xnor_status xnor_init(void);

/* Message describing the calling thread's most recent error (never NULL). */
XNOR_API const char *xnor_last_error(void);

/* Bit mask of the ISA paths this CPU and build support (bit i = xnor_isa i). */
XNOR_API unsigned xnor_isa_supported(void);
/* The path in use, and its name ("avx512", ...). */
XNOR_API xnor_isa xnor_isa_active(void);
XNOR_API const char *xnor_isa_name(xnor_isa isa);
/* Switch the path for the whole process (tests and benchmarks use it to cover every path). */
XNOR_API xnor_status xnor_isa_select(xnor_isa isa);

/* Threads: the pool's size (workers + the calling thread).  0 in num_threads arguments means this. */
XNOR_API int xnor_num_threads(void);

/* Pack `rows` rows of `k` elements (row-major, contiguous) into rows * ceil(k/64) words. */
XNOR_API xnor_status xnor_pack(const void *x, xnor_dtype dtype, size_t rows, size_t k, uint64_t *out);

/* Unpack rows * ceil(k/64) words into rows * k floats equal to +1.0f or -1.0f. */
XNOR_API xnor_status xnor_unpack_f32(const uint64_t *words, size_t rows, size_t k, float *out);

/* Binary GEMM: c[i*n + j] = k - 2 * popcount(a_i XOR b_j) over the k valid bits, for i < m, j < n.
 * a is m rows and b is n rows of ceil(k/64) packed words each, both contiguous; c is m*n int32.
 * num_threads <= 0 uses the pool's size.  Safe to call from several threads at once. */
XNOR_API xnor_status xnor_bgemm(const uint64_t *a, const uint64_t *b, int32_t *c,
                       size_t m, size_t n, size_t k, int num_threads);

/* Register-only XOR-popcount-accumulate loop of the active ISA, `iters` iterations; returns the number
 * of binary multiply-accumulates it performed (the benchmark divides by its wall time to get the
 * CPU's peak) and stores a checksum in *sink so nothing is optimised away. */
XNOR_API double xnor_popcount_peak_loop(uint64_t iters, uint64_t *sink);

#ifdef __cplusplus
}
#endif
#endif
