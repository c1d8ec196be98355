/*
 * xnorinfer — binary neural network inference on the CPU, from C.  Includes both halves of the API:
 *   xnorinfer/kernels.h   the kernels: packing, binary GEMM, binary and float layers, float tensor ops
 *   xnorinfer/model.h     the runtime: open and run a whole `.xnor` model
 */
#ifndef XNORINFER_H
#define XNORINFER_H

#include "xnorinfer/kernels.h"
#include "xnorinfer/model.h"

#endif
