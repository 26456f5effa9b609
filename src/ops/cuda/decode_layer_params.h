// Launch interface of the persistent decode-layer kernel (decode_layer_kernel.cu): the projections
// of one batch-1 decode step that follow a layer's attention, in one launch. Plain C++, no CUDA
// types.
#pragma once

#include <cstdint>

#include "fused_ops_params.h"
#include "mma_linear_params.h"

namespace flexgen {
namespace cuda_fused {

// One projection of the chain: y = x . w^T for one row, w [N, K] (K % 8 == 0), x the row in
// global memory or, with norm_weight, rms_norm(h, norm_weight) (h the chain's residual row, K its
// length, K <= 8192). Its outputs go through `ep` (SiluMul into y, RopeCache into q and the
// caches, as mma_linear_epilogue) or, with add_to_residual (ep Plain), into the residual: h[n] =
// T(h[n] + T(y[n])) (add_rms_norm's residual add).
struct DecodeLayerProjection {
  const void* w = nullptr;
  int N = 0, K = 0;
  const void* x = nullptr;
  const void* norm_weight = nullptr;
  bool add_to_residual = false;
  MmaEpilogue ep;
  void* y = nullptr;
};

constexpr int kDecodeLayerMaxProjections = 4;

// The chain: projections run in order, each seeing every output of the ones before (a grid-wide
// barrier between them, through a device counter of the chain's `barrier` slot); each output is
// the bits of mma_linear_epilogue for that one row with k_splits = mma_linear_k_splits(N) followed
// by the separate kernels it replaces (rms_norm, add_rms_norm's add). The first projection's x is
// what the previous kernel wrote (read after programmatic dependent launch's wait).
struct DecodeLayerChain {
  DecodeLayerProjection proj[kDecodeLayerMaxProjections];
  int count = 0;
  void* h = nullptr;  // the residual row [hidden]
  float eps = 0.f;    // the norms' epsilon
  int barrier = 0;    // 0 .. kDecodeLayerBarriers - 1: chains that may run at once use distinct slots
};

constexpr int kDecodeLayerBarriers = 256;

// The longest K a projection of the chain takes (its x is held in shared memory).
constexpr int kDecodeLayerMaxK = 16384;

// Reads the kernel's environment switches now (FLEXGEN_CUDA_LAYER_STAGES, FLEXGEN_CUDA_LAYER_AHEAD:
// a value they do not take throws std::invalid_argument).
void decode_layer_read_switches();

// Launches the chain on `stream` (one CTA an SM, all resident at once: they wait for each other).
// Returns a cudaError_t value (0 = success; cudaErrorInvalidValue for a chain it does not take).
int decode_layer_chain(DType t, const DecodeLayerChain& chain, void* stream, bool pdl);

}  // namespace cuda_fused
}  // namespace flexgen
