// Warp-specialized Hopper tiled linear (contract: prefill_linear_tma.h): prefill_linear's bits at
// closer to the tensor cores' rate for passes of many rows.
//
// A CTA computes a 128-row x BN-column tile of y through tma_tile.cuh's pipeline: one producer warp
// streams the x and w stages by TMA, two consumer warpgroups of 64 rows multiply with wgmma and
// round their accumulators once into y.
//
// Arithmetic: one fp32 accumulator an output takes the k16 steps of K in increasing order from
// zero, each a wgmma of x[r, k .. k+15] with w[n, k .. k+15]; elements past K are zeros (TMA fills
// them); rounded once to T. That is prefill_linear's (and its mma.sync kernel's) order, so the
// bits are the same whatever kernel or tile a row goes through.
#include <cuda_runtime.h>

#include <cstdint>

#include "kernel_attribute.cuh"
#include "pdl.cuh"
#include "prefill_linear_tma.h"
#include "tensor_map.h"
#include "tile_stages.cuh"
#include "tma_tile.cuh"
#include "wgmma_tile.cuh"

namespace flexgen {
namespace cuda_fused {

namespace {

using tile_stages::TmaTile;

// 128 x 256 tiles, or 128 x 128 where 256-column tiles would leave more than half the SMs idle
// (H200, 3B matrices at 512-8192 rows: 128 x 256 1.1-1.35x the cp.async kernel's 128 x 128 from
// 2464 rows; at 512 rows with 48 tiles, 128 x 128 tiles 1.5-1.7x 128 x 256).
using WideTile = TmaTile<2, 256, 4, 1>;    // 193 KB
using NarrowTile = TmaTile<2, 128, 4, 1>;  // 129 KB

template <typename T, typename C>
__global__ void __launch_bounds__(C::kThreads, C::MINB)
    prefill_linear_tma_kernel(const __grid_constant__ CUtensorMap xmap, const __grid_constant__ CUtensorMap wmap,
                              T* __restrict__ y, int rows, int N, int K) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ unsigned char smem_raw[];
  const int m0 = blockIdx.x * C::BM, n0 = blockIdx.y * C::BN, ktiles = (K + tile_stages::kBK - 1) / tile_stages::kBK;
  float d[C::kNB][64];
  tile_stages::tma_tile_run<T, C>(smem_raw, &xmap, &wmap, m0, n0, 0, 1, ktiles, d);
  if (static_cast<int>(threadIdx.x) >= C::kConsumers) return;  // the producer warp
#pragma unroll
  for (int b = 0; b < C::kNB; ++b) tile_stages::wgmma_tile_store<T>(d[b], y, rows, N, m0, n0 + 128 * b);
#else
  __trap();
#endif
}

template <typename T, typename C>
int launch_tile(DType t, const void* x, const void* w, void* y, int rows, int N, int K, bool pdl, cudaStream_t st) {
  constexpr auto kernel = prefill_linear_tma_kernel<T, C>;
  if (const cudaError_t e = cuda_launch::allow_dynamic_smem<kernel>(C::kSmemBytes); e != cudaSuccess)
    return static_cast<int>(e);
  CUtensorMap xmap, wmap;
  if (const int e = cuda_tma::encode_k_major(&xmap, t, x, rows, K, C::BM); e != 0) return e;
  if (const int e = cuda_tma::encode_k_major(&wmap, t, w, N, K, C::BN); e != 0) return e;
  // Row tiles vary fastest: the CTAs of one column tile run together and share its weights in L2.
  const dim3 grid(static_cast<unsigned>((rows + C::BM - 1) / C::BM), static_cast<unsigned>((N + C::BN - 1) / C::BN));
  return static_cast<int>(cuda_pdl::launch(kernel, grid, dim3(C::kThreads), C::kSmemBytes, st, pdl, xmap, wmap,
                                           static_cast<T*>(y), rows, N, K));
}

template <typename T>
int launch(DType t, const void* x, const void* w, void* y, int rows, int N, int K, bool pdl, cudaStream_t st) {
  const int64_t narrow_tiles = int64_t{(rows + 127) / 128} * ((N + 127) / 128);
  return narrow_tiles <= tile_stages::sm_count() ? launch_tile<T, NarrowTile>(t, x, w, y, rows, N, K, pdl, st)
                                                 : launch_tile<T, WideTile>(t, x, w, y, rows, N, K, pdl, st);
}

}  // namespace

int prefill_linear_tma(DType t, const void* x, const void* w, void* y, int rows, int N, int K, void* stream, bool pdl) {
  if (rows < 1 || N <= 0 || K <= 0 || K % 8 != 0) return static_cast<int>(cudaErrorInvalidValue);
  const auto st = static_cast<cudaStream_t>(stream);
  return t == DType::BF16 ? launch<__nv_bfloat16>(t, x, w, y, rows, N, K, pdl, st)
                          : launch<__half>(t, x, w, y, rows, N, K, pdl, st);
}

}  // namespace cuda_fused
}  // namespace flexgen
