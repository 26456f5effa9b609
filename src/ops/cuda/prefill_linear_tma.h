// prefill_linear's arithmetic through a warp-specialized Hopper kernel for passes of many rows
// (private to the CUDA backend; prefill_linear_kernel.cu's launcher calls it). Plain C++, no CUDA
// types.
#pragma once

#include <cstdint>

#include "fused_ops_params.h"

namespace flexgen {
namespace cuda_fused {

// y [rows, N] = x [rows, K] . w [N, K]^T with exactly prefill_linear's arithmetic (one fp32
// accumulator an output over the k16 steps of K in order, wgmma, rounded once), so a row's bits are
// those of any other prefill_linear launch. Tiles of 128 rows x 256 columns: one warp loads x and w
// stages by TMA, two warpgroups multiply. Compute capability 9.0 only. K % 8 == 0; x, w, y 16-byte
// aligned. Returns a cudaError_t value (0 = success).
int prefill_linear_tma(DType t, const void* x, const void* w, void* y, int rows, int N, int K, void* stream, bool pdl);

}  // namespace cuda_fused
}  // namespace flexgen
