// The wgmma main loop over cp.async stages (prefill_linear_kernel.cu) and the plain store of every
// wgmma linear's accumulators (also prefill_linear_tma_kernel.cu, mma_linear_wgmma_kernel.cu): a CTA
// of WG warpgroups, each 64 rows x 128 columns of fp32 accumulators, over the K stages its
// TileLoader holds (tile_stages.cuh). Hopper only (wgmma.cuh).
#pragma once

#include <cstdint>

#include "cp_async.cuh"
#include "half_math.cuh"
#include "llama_elementwise.cuh"
#include "pdl.cuh"
#include "tile_stages.cuh"
#include "wgmma.cuh"

namespace flexgen {
namespace cuda_fused {
namespace tile_stages {

// d = the warpgroup's 64 x 128 tile of x . w^T over the loader's stages, one fp32 accumulator an
// output over the k16 steps in stage order (after the loader's prologue). Lets the next kernel
// launch once the stages are consumed. d[4 j + e]: tile row 64 wg + 16 (warp % 4) + g + 8 (e >> 1),
// column 8 j + 2 t + (e & 1).
template <typename T, typename C>
__device__ __forceinline__ void wgmma_tile_loop(const TileLoader<T, C>& ld, float (&d)[64]) {
  const int wg = static_cast<int>(threadIdx.x) >> 7;
#pragma unroll
  for (int i = 0; i < 64; ++i) d[i] = 0.f;
  for (int kt = 0; kt < ld.ktiles; ++kt) {
    cuda_async::cp_async_wait<C::ST - 2>();
    cuda_wgmma::fence_proxy_async();
    __syncthreads();  // stage kt is in for every thread; the slot loaded next was read by finished wgmmas
    ld.next(kt);
    const uint32_t sx = ld.slot(kt) + wg * 64 * kRowBytes, sw = ld.slot(kt) + C::BM * kRowBytes;
    cuda_wgmma::fence();
#pragma unroll
    for (int kk = 0; kk < kBK / 16; ++kk)
      cuda_wgmma::Wgmma<T>::run(d, cuda_wgmma::smem_desc(sx + 32 * kk), cuda_wgmma::smem_desc(sw + 32 * kk), 1);
    cuda_wgmma::commit();
    cuda_wgmma::wait<0>();
  }
  cuda_async::cp_async_wait<0>();
  cuda_pdl::pdl_trigger();
}

// The first of the two tile rows this thread's wgmma accumulators hold (the second is 8 below):
// 64 rows a warpgroup, 16 a warp of it, one a lane quad.
__device__ __forceinline__ int wgmma_thread_row() {
  const int tid = static_cast<int>(threadIdx.x);
  return 64 * (tid >> 7) + 16 * ((tid >> 5) & 3) + ((tid & 31) >> 2);
}

// y's rows and columns of this thread's part of d (wgmma_tile_loop's layout; H / 4 column pairs:
// 64 x 2 H tiles) for the CTA's tile at (m0, n0), rounded once; rows past `rows` or before r_lo and
// columns past N or before c_lo are not written.
template <typename T, int H>
__device__ __forceinline__ void wgmma_tile_store(const float (&d)[H], T* __restrict__ y, int rows, int N, int m0,
                                                 int n0, int r_lo = 0, int c_lo = 0) {
  using T2 = typename cuda_half::Pair<T>::type;
  const int t = static_cast<int>(threadIdx.x) & 3;
  const bool pairs = (N & 1) == 0;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int r = m0 + wgmma_thread_row() + 8 * h;
    if (r >= rows || r < r_lo) continue;
    T* yr = y + static_cast<int64_t>(r) * N;
#pragma unroll
    for (int j = 0; j < H / 4; ++j) {
      const int c = n0 + 8 * j + 2 * t;
      const float lo = d[4 * j + 2 * h], hi = d[4 * j + 2 * h + 1];
      if (pairs && c >= c_lo && c + 1 < N) {
        const uint32_t v = cuda_half::Mma<T>::pack(lo, hi);
        *reinterpret_cast<T2*>(yr + c) = *reinterpret_cast<const T2*>(&v);
      } else {
        if (c >= c_lo && c < N) yr[c] = cuda_half::to<T>(lo);
        if (c + 1 >= c_lo && c + 1 < N) yr[c + 1] = cuda_half::to<T>(hi);
      }
    }
  }
}

// The SiLU-times-up of a [gate | up] tile (tma_load_w's two boxes): this thread's accumulators
// d[NB][BW / 2] (tma_consume's layout over a BN = NB BW column tile) hold gate columns in their
// first half of floats and the up columns BN / 2 to the right in the second (the same rows, columns
// and lanes), so y [rows, I] at the tile's (m0, j0) gets silu_times(T(gate), T(up)): the bits of
// wgmma_tile_store's two outputs through silu_mul. Rows past `rows` or before r_lo, columns past I
// or before c_lo not written.
template <typename T, int NB, int BW>
__device__ __forceinline__ void wgmma_tile_store_silu(const float (&d)[NB][BW / 2], T* __restrict__ y, int rows,
                                                      int I, int m0, int j0, int r_lo, int c_lo) {
  using T2 = typename cuda_half::Pair<T>::type;
  constexpr int kHalf = NB * BW / 4;  // floats of gate (and of up) a thread
  static_assert(kHalf % 4 == 0, "whole 8-column groups of gate and of up");
  const int t = static_cast<int>(threadIdx.x) & 3;
  const bool pairs = (I & 1) == 0;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int r = m0 + wgmma_thread_row() + 8 * h;
    if (r >= rows || r < r_lo) continue;
    T* yr = y + static_cast<int64_t>(r) * I;
#pragma unroll
    for (int j = 0; j < kHalf / 4; ++j) {
      const int c = j0 + 8 * j + 2 * t;
      constexpr int kPer = BW / 2;
      const int f0 = 4 * j + 2 * h, u0 = f0 + kHalf;  // flat indices of gate (c, c + 1) and up
      const T o0 = cuda_half::silu_times(cuda_half::to<T>(d[f0 / kPer][f0 % kPer]),
                                         cuda_half::to<T>(d[u0 / kPer][u0 % kPer]));
      const T o1 = cuda_half::silu_times(cuda_half::to<T>(d[(f0 + 1) / kPer][(f0 + 1) % kPer]),
                                         cuda_half::to<T>(d[(u0 + 1) / kPer][(u0 + 1) % kPer]));
      if (pairs && c >= c_lo && c + 1 < I) {
        T2 v;
        v.x = o0, v.y = o1;
        *reinterpret_cast<T2*>(yr + c) = v;
      } else {
        if (c >= c_lo && c < I) yr[c] = o0;
        if (c + 1 >= c_lo && c + 1 < I) yr[c + 1] = o1;
      }
    }
  }
}

}  // namespace tile_stages
}  // namespace cuda_fused
}  // namespace flexgen
