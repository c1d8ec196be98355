/* The binary GEMM family: the micro-kernel and direct-kernel contracts every ISA implements, the
 * nibble-split layout, and the panel packing the GEMM and conv drivers share (bgemm.c). */
#ifndef XNOR_BGEMM_H
#define XNOR_BGEMM_H

#include "../common.h"

/* The largest micro-tile any kernel uses; drivers size their stack buffers with these. */
#define XNOR_MAX_MR 8
#define XNOR_MAX_NR 64

/* Flags of a GEMM micro-kernel call. */
#define XNOR_UK_FIRST 1u  /* first k-block: start the count at 0 instead of reading c */
#define XNOR_UK_LAST 2u   /* last k-block: write k - 2*count instead of the running count */

/*
 * GEMM micro-kernel.  For r < mr (mr <= kernel's MR) and j < nr (nr <= kernel's NR):
 *   count = sum over w < kc of popcount(a[r*lda + w] ^ panel[w*NR + j])
 *   (plus c[r*ldc + j] unless XNOR_UK_FIRST);
 *   c[r*ldc + j] = XNOR_UK_LAST ? k - 2*count : count.
 * `panel` holds kc words of NR columns interleaved (see xnor_pack_panel); its columns >= nr and tail
 * bits are zero.  Neither panel nor a need be aligned (prepared weights may live in numpy arrays).  Rows of `a` are read as they are (the driver corrects garbage tail bits of a).
 * Columns >= nr of c are never written.
 */
typedef void (*xnor_gemm_ukernel_fn)(size_t mr, size_t nr, size_t kc, const uint64_t *a, size_t lda,
                                     const uint64_t *panel, int32_t *c, size_t ldc, int32_t k,
                                     unsigned flags);

/*
 * Nibble-split operands, for kernels that count bits with 4-bit table lookups (AVX2's VPSHUFB): each
 * word x of a row or a panel is stored as the two words x & 0x0f0f... and (x >> 4) & 0x0f0f..., so the
 * XOR of two split words is already a lookup index and the kernel spends no mask or shift per product.
 * Counts are unchanged (popcount(a ^ b) is the sum over the two halves).  Split layout, kc words:
 *   row r:  a[r*lda + 2*w] low nibbles, a[r*lda + 2*w + 1] high nibbles (lda counts split words);
 *   panel:  panel[w*2*NR + j] low nibbles, panel[w*2*NR + NR + j] high nibbles.
 * It doubles the bytes of both operands, so drivers use it only where the weights are reused over
 * many pixels (XNOR_SPLIT_MIN_PIXELS); a dense layer at batch 1 streams its weights and stays plain.
 */
#define XNOR_NIBBLES_LO UINT64_C(0x0f0f0f0f0f0f0f0f)
#define XNOR_SPLIT_MIN_PIXELS 8
void xnor_split_nibbles(const uint64_t *src, size_t n, uint64_t *dst);

/*
 * Direct (unpacked) kernel for small m: c[i*ldc + j] = k - 2 * sum over w < words of
 * popcount((a[i*lda + w] ^ b[j*ldb + w]) & (w == words-1 ? tail_mask : ~0)) for i < m, j < n.
 * Both a and b may carry garbage tail bits.
 */
typedef void (*xnor_gemm_direct_fn)(size_t m, size_t n, size_t words, uint64_t tail_mask,
                                    const uint64_t *a, size_t lda, const uint64_t *b, size_t ldb,
                                    int32_t *c, size_t ldc, int32_t k);

/* Copy n rows of b (columns of the product) starting at row j0, words [w0, w0+kc), into an
 * NR-interleaved panel (nibble-split when split != 0: 2*kc*NR words); rows past n are zero, and bits
 * past k in the row's last word are cleared. */
void xnor_pack_panel(const uint64_t *b, size_t ldb, size_t j0, size_t n, size_t nr_panel, size_t w0,
                     size_t kc, size_t k, int split, uint64_t *panel);

#endif
