/* Internal declarations of the float tensor ops (the files of fops/): the shape checks the broadcasting
 * ops share, and the library's own exp. */
#ifndef XNOR_FOPS_H
#define XNOR_FOPS_H

#include "../common.h"

/* The largest tensor in bytes (PTRDIFF_MAX: pointer differences within it stay defined). */
#define XNOR_FOPS_MAX_BYTES (SIZE_MAX / 2)

/* The broadcast shape of up to 3 operands against an output of `rank` dims, collapsed: size-1 output
 * dims dropped and adjacent dims merged where every operand is laid out alike, so the innermost dim is
 * as long as possible.  stride[k][i] is operand k's step (in elements) along dim i: 0 where it is
 * broadcast, and stride[k][rank - 1] is 0 or 1. */
typedef struct {
    size_t rank;
    size_t dims[XNOR_MAX_RANK];
    size_t stride[3][XNOR_MAX_RANK];
    size_t count; /* elements of the output */
} xnor_bshape;

/* Validates `rank` (1..XNOR_MAX_RANK), out_dims (each >= 1, the element count times `out_elem` bytes
 * inside the address space) and each operand's dims (equal to the output's or 1), then fills *s.
 * `what` names the caller in the error message. */
xnor_status xnor_broadcast(const char *what, size_t rank, const size_t *out_dims, size_t out_elem,
                           size_t operands, const size_t *const *dims, xnor_bshape *s);

/* e^x in double precision with the library's own range reduction and polynomial (no libm call), so the
 * bits are the same on every CPU and compiler: k = nearest integer to x*log2(e) (ties upward),
 * r = (x - k*ln2_hi) - k*ln2_lo, exp(r) by its Taylor polynomial of degree 13 (Horner, relative error
 * below 1e-15 for |r| <= ln2/2), times 2^k built from the exponent bits (in two steps where 2^k alone
 * would overflow or be subnormal).  exp(NaN) = NaN, exp(-inf) = 0 (and 0 for x < -746, where the double
 * result underflows), exp(+inf) = +inf (and +inf for x > 709.79). */
double xnor_exp_f64(double x);

#endif
