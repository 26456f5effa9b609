// Launch interface of the row-invariant tiled tensor-core linear (prefill_linear_kernel.cu); plain
// C++, no CUDA types.
#pragma once

#include <cstdint>

#include "fused_ops_params.h"

namespace flexgen {
namespace cuda_fused {

// y [rows, N] = x [rows, K] . w [N, K]^T for the many rows of a prefill pass, in tiles of up to
// 128 rows x 256 columns (wgmma on Hopper, with TMA from 256 rows; mma.sync elsewhere). K % 8 == 0;
// x, w, y 16-byte aligned. Row r's result depends on x's row r, w and
// K only: never on `rows`, on the other rows, on the row's place in its tile or on the GPU, so a
// token's bits are the same in a pass of any size or composition. pdl: programmatic dependent
// launch. Returns a cudaError_t value (0 = success).
int prefill_linear(DType t, const void* x, const void* w, void* y, int64_t rows, int N, int K, void* stream,
                   bool pdl = false);

// Whether prefill_linear_silu_mul runs launches of `rows` rows on the current device (Hopper, 256+
// rows: the TMA kernel, whose epilogue takes the SiLU).
bool prefill_linear_silu_mul_fused(int64_t rows);

// y [rows, inter] = silu_mul(prefill_linear(x, w)) for w = [gate | up] ([2 inter, K]) in one launch,
// bit for bit (the product rounded to T, then silu_times of each gate and up pair). inter % 8 ==
// 0; only where prefill_linear_silu_mul_fused(rows) (else cudaErrorNotSupported). Returns a
// cudaError_t value (0 = success).
int prefill_linear_silu_mul(DType t, const void* x, const void* w, void* y, int64_t rows, int inter, int K,
                            void* stream, bool pdl = false);

// Reads the prefill linear's environment switches now (FLEXGEN_CUDA_PREFILL_BN: its tile width,
// prefill_linear_tma.h; FLEXGEN_CUDA_PREFILL_PERSISTENT: persistent CTAs or one a tile): a value
// one does not take throws std::invalid_argument.
void prefill_linear_read_switches();

}  // namespace cuda_fused
}  // namespace flexgen
