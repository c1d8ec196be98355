/* AVX2 path: kernel not written yet.  The empty table makes dispatch report avx2 as unsupported. */
#include "../internal.h"
const xnor_kernels xnor_kernels_avx2 = {0};
