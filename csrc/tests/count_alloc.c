/* Allocation counter for test_no_alloc (glibc): malloc and friends counted while `xnor_alloc_armed` is
 * set, then passed on to glibc's own allocator.  Linked into the test program only. */
#include <stddef.h>
extern void *__libc_malloc(size_t), *__libc_calloc(size_t, size_t), *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
int xnor_alloc_armed = 0;
long xnor_alloc_count = 0;
void *malloc(size_t n) { xnor_alloc_count += xnor_alloc_armed; return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { xnor_alloc_count += xnor_alloc_armed; return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { xnor_alloc_count += xnor_alloc_armed; return __libc_realloc(p, n); }
void *aligned_alloc(size_t a, size_t n) { xnor_alloc_count += xnor_alloc_armed; return __libc_memalign(a, n); }
int posix_memalign(void **p, size_t a, size_t n) {
    xnor_alloc_count += xnor_alloc_armed;
    *p = __libc_memalign(a, n);
    return *p ? 0 : 12;
}
