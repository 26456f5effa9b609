// TMA tensor maps of row-major [rows, K] bf16/fp16 matrices (private to the CUDA backend): boxes of
// 64 elements of K x box_rows rows in the 128-byte-swizzled layout of the tiled linears' stages
// (tile_stages.cuh), zeros outside the matrix. Host code; the driver's encoder is found through the
// runtime, so nothing links libcuda.
#pragma once

#include <cuda.h>

#include <cstdint>

#include "fused_ops_params.h"

namespace flexgen {
namespace cuda_tma {

// Writes the map of `base` ([rows, K], row pitch K elements) into *map. K % 8 == 0, base 16-byte
// aligned, 1 <= box_rows <= 256. Returns a cudaError_t value (0 = success).
int encode_k_major(CUtensorMap* map, cuda_fused::DType t, const void* base, int64_t rows, int64_t K, int box_rows);

}  // namespace cuda_tma
}  // namespace flexgen
