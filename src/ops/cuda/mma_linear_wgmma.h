// mma_linear's arithmetic through Hopper's wgmma for launches of many rows (private to the CUDA
// backend; mma_linear_kernel.cu's launcher calls it). Plain C++, no CUDA types.
#pragma once

#include <cstdint>

#include "fused_ops_params.h"

namespace flexgen {
namespace cuda_fused {

// Whether the current device runs mma_linear_wgmma (compute capability 9.0, the sm_90a code).
bool mma_linear_wgmma_available();

// Reads FLEXGEN_CUDA_DECODE_SEQ and FLEXGEN_CUDA_ONE_SPLIT_TMA now (a bad value throws
// std::invalid_argument naming it).
void mma_linear_wgmma_read_switches();

// y [rows, N] = x [rows, K] . w [N, K]^T with exactly mma_linear's arithmetic for k_splits splits
// (mma_linear_params.h): each output's split sums over the 64-element groups p, p + S, ... in
// order, four k16 steps a group, added in split order and rounded once. So a row's bits are the
// same as through mma_linear, in any launch. Tiles of 64, 128 or 192 rows x 128 columns, one CTA a
// split of a tile (its stages loaded by TMA), the S CTAs of a tile a thread-block cluster that adds
// the partial sums in shared memory; launches whose clusters would take more than two waves run
// each tile's splits one after another in one CTA instead (the same additions). One split (one
// chain over K) of 65-128 or more than 192 rows runs through prefill_linear_tma (the same
// arithmetic). K % 8 == 0; x, w, y 16-byte aligned. Returns a cudaError_t value (0 = success).
int mma_linear_wgmma(DType t, const void* x, const void* w, void* y, int64_t rows, int N, int K, int k_splits,
                     void* stream, bool pdl);

}  // namespace cuda_fused
}  // namespace flexgen
