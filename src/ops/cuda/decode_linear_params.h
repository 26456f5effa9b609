// Launch interface of the decode linear that gives every row its prefill bits
// (decode_linear_kernel.cu); plain C++, no CUDA types.
#pragma once

#include <cstdint>

#include "fused_ops_params.h"
#include "mma_linear_params.h"

namespace flexgen {
namespace cuda_fused {

// y [rows, N] = x [rows, K] . w [N, K]^T for the rows of a decode step, each row's result the bits
// prefill_linear gives the same row (one fp32 accumulator over the k16 steps of K in order,
// rounded once): never dependent on `rows`, the other rows or the GPU, and a token's K/V are the
// same whether a prefill pass or a decode step computed them. K % 8 == 0; x, w 16-byte aligned.
// read_once: no later launch of this step reads w (its lines are the first L2 evicts). ep: a
// pair epilogue (mma_linear_params.h; Kind::Plain writes y). pdl: programmatic dependent launch.
// Returns a cudaError_t value (0 = success).
int decode_linear(DType t, const void* x, const void* w, void* y, int64_t rows, int N, int K, bool read_once,
                  const MmaEpilogue& ep, void* stream, bool pdl = false);

// Benchmarks: the launch shapes that serve `rows` rows (they set the speed, never the bits), the
// name of shape c, and a launch through shape c (-1: the one decode_linear picks).
int decode_linear_shapes(int64_t rows);
const char* decode_linear_shape_name(int64_t rows, int c);
int decode_linear_with_shape(int c, DType t, const void* x, const void* w, void* y, int64_t rows, int N, int K,
                             bool read_once, const MmaEpilogue& ep, void* stream, bool pdl = false);

}  // namespace cuda_fused
}  // namespace flexgen
