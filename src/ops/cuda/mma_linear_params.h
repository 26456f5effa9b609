// Launch interface of the row-invariant tensor-core linear (mma_linear_kernel.cu); plain C++, no
// CUDA types.
#pragma once

#include "fused_ops_params.h"

namespace flexgen {
namespace cuda_fused {

// y [rows, N] = x [rows, K] . w [N, K]^T for any number of rows (one launch; CTAs of 64 rows side
// by side), reading each weight from memory once at bandwidth. K % 8 == 0; x, w 16-byte aligned. Row r's
// result depends on x's row r, w, K and k_splits only: never on `rows`, on the other rows or on
// the GPU, so a row decoded alone and in a batch of any size gets the same bits. k_splits (1, 2, 4
// or 8): warps that share an output column's K (mma_linear_k_splits). read_once: no later launch
// of this step reads w again (its lines go into L2 as the first to evict). pdl: programmatic
// dependent launch. Returns a cudaError_t value (0 = success).
int mma_linear(DType t, const void* x, const void* w, void* y, int64_t rows, int N, int K, int k_splits,
               bool read_once, void* stream, bool pdl = false);

// The K splits for N outputs, from N alone (enough warps to fill any GPU: 16-column tiles x splits
// >= 2048, at most 8), so that every GPU and every batch computes the same bits.
int mma_linear_k_splits(int N);

}  // namespace cuda_fused
}  // namespace flexgen
