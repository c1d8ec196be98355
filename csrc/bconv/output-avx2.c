/* The float output row (float-row.inc) compiled with AVX2: used by the avx2 and avx512 paths. */
#include <math.h>
#include "output.h"
#ifdef XNOR_X86
#define FLOAT_ROW_NAME xnor_float_row_avx2
#define FLOAT_ROW_TARGET __attribute__((target("avx2")))
#include "float-row.inc"
#endif
