// The one-row decode linear's tile pieces shared by mma_linear_kernel.cu and the persistent decode
// layer kernel (decode_layer_kernel.cu): a weight stage's layout and the pair epilogues, so both
// compute and write the same bits.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "half_math.cuh"
#include "llama_elementwise.cuh"
#include "mma_linear_params.h"

namespace flexgen {
namespace cuda_fused {

// The weight row of tile column n (tiles of 16 columns): itself for a plain linear; with a pair
// epilogue, columns 0..7 of a tile are 8 outputs and 8..15 their partners (SiluMul: gate rows 8 t ..
// 8 t + 7 and the same up rows, I = N / 2 further on; RopeCache: within each q and k head, dims
// 8 u .. 8 u + 7 and the same + D / 2, the rotation's pairs; the v rows stay in order).
__device__ __forceinline__ int weight_row(const MmaEpilogue& ep, int n, int N) {
  const int c = n & 15;
  if (ep.kind == MmaEpilogue::Kind::SiluMul) return c < 8 ? (n >> 4) * 8 + c : N / 2 + (n >> 4) * 8 + c - 8;
  if (ep.kind == MmaEpilogue::Kind::RopeCache && n < (ep.H + ep.Hkv) * ep.D) {
    const int head = n / ep.D, u = (n - head * ep.D) >> 4;
    return head * ep.D + (c < 8 ? 8 * u + c : ep.D / 2 + 8 * u + c - 8);
  }
  return n;
}

// A pair epilogue's outputs for one row r (of the call) from tile column na (columns 0..7 of its
// tile) and its partner na + 8: a0, a1 the fp32 sums of their weight rows.
template <typename T>
__device__ __forceinline__ void pair_epilogue(const MmaEpilogue& ep, T* __restrict__ y, int r, int na, int N,
                                              float a0, float a1) {
  const int w0 = weight_row(ep, na, N), w1 = weight_row(ep, na + 8, N);
  // The linear's output as libtorch would hold it: rounded once, then the bias added (at::add).
  // Read-only inputs go through __ldg: the compiler may then issue them before this thread's
  // earlier stores (plain loads would wait for them: they might alias).
  const T* bias = static_cast<const T*>(ep.bias);
  using cuda_half::f;
  using cuda_half::to;
  const T x0 = bias ? to<T>(f(to<T>(a0)) + f(__ldg(bias + w0))) : to<T>(a0);
  const T x1 = bias ? to<T>(f(to<T>(a1)) + f(__ldg(bias + w1))) : to<T>(a1);
  if (ep.kind == MmaEpilogue::Kind::SiluMul) {
    y[static_cast<int64_t>(r) * (N / 2) + w0] = cuda_half::silu_times(x0, x1);
    return;
  }
  // RopeCache: q or k (w0 = head * D + d, d < D / 2, w1 = w0 + D / 2), or two v elements.
  const int D = ep.D, head = w0 / D, d0 = w0 - head * D, d1 = w1 - head * D;
  const int64_t slot =
      head < ep.H ? 0 : static_cast<int64_t>(__ldg(reinterpret_cast<const long long*>(ep.first_slot) + r));
  if (head < ep.H + ep.Hkv) {
    const T* cs = static_cast<const T*>(ep.cos) + static_cast<int64_t>(r) * D;
    const T* sn = static_cast<const T*>(ep.sin) + static_cast<int64_t>(r) * D;
    T o0, o1;
    cuda_half::rope_pair(f(x0), f(x1), __ldg(cs + d0), __ldg(sn + d0), __ldg(cs + d1), __ldg(sn + d1), o0, o1);
    T* dst = head < ep.H ? static_cast<T*>(ep.q_out) + (static_cast<int64_t>(r) * ep.H + head) * D
                         : static_cast<T*>(ep.k_cache) + r * ep.cs0 + (head - ep.H) * ep.cs1 + slot * ep.cs2;
    dst[d0] = o0;
    dst[d1] = o1;
  } else {
    T* dst = static_cast<T*>(ep.v_cache) + r * ep.cs0 + (head - ep.H - ep.Hkv) * ep.cs1 + slot * ep.cs2;
    dst[d0] = x0;
    dst[d1] = x1;
  }
}

// One stage: 16 weight rows x 64 elements (128 bytes a row), 16-byte units XOR-swizzled by row & 7
// (conflict-free ldmatrix reads).
constexpr int kStageBytes = 16 * 128;
__device__ __forceinline__ int unit_offset(int row, int unit) { return row * 128 + ((unit ^ (row & 7)) << 4); }

}  // namespace cuda_fused
}  // namespace flexgen
