/* The F(4x4, 3x3) transforms' arithmetic, written once for any element type, so the portable loops
 * (winograd.c) and the SIMD ones (fconv-avx2.c) evaluate the same expressions in the same order and give
 * the same bits.  ADD, SUB and MULC (multiply by a constant) are the element type's operations. */
#ifndef XNOR_FCONV_WINOGRAD_H
#define XNOR_FCONV_WINOGRAD_H

/* B^T on six values: rows [4,0,-5,0,1,0], [0,-4,-4,1,1,0], [0,4,-4,-1,1,0], [0,-2,-1,2,1,0],
 * [0,2,-1,-2,1,0], [0,4,0,-5,0,1]. */
#define XNOR_WG_IN_G(T, ADD, SUB, MULC, d0, d1, d2, d3, d4, d5, t0, t1, t2, t3, t4, t5) \
    do {                                                                             \
        T d31_ = MULC(SUB(d3, d1), 2.0f), d42_ = SUB(d4, d2);                        \
        (t0) = ADD(SUB(MULC(d0, 4.0f), MULC(d2, 5.0f)), d4);                         \
        (t1) = SUB(ADD(d3, d4), MULC(ADD(d1, d2), 4.0f));                            \
        (t2) = ADD(SUB(d4, d3), MULC(SUB(d1, d2), 4.0f));                            \
        (t3) = ADD(d42_, d31_);                                                      \
        (t4) = SUB(d42_, d31_);                                                      \
        (t5) = ADD(SUB(MULC(d1, 4.0f), MULC(d3, 5.0f)), d5);                         \
    } while (0)

/* A^T on six values: rows [1,1,1,1,1,0], [0,1,-1,2,-2,0], [0,1,1,4,4,0], [0,1,-1,8,-8,1]. */
#define XNOR_WG_OUT_G(T, ADD, SUB, MULC, m0, m1, m2, m3, m4, m5, y0, y1, y2, y3) \
    do {                                                                      \
        T a_ = ADD(m1, m2), b_ = SUB(m1, m2), c_ = ADD(m3, m4), e_ = SUB(m3, m4); \
        (y0) = ADD(ADD(m0, a_), c_);                                          \
        (y1) = ADD(b_, MULC(e_, 2.0f));                                       \
        (y2) = ADD(a_, MULC(c_, 4.0f));                                       \
        (y3) = ADD(ADD(b_, MULC(e_, 8.0f)), m5);                              \
    } while (0)

#endif
