// The LLaMA forward pass's elementwise maps on 16-bit values, each rounded to T where libtorch's
// ops round (transformers' modules): shared by the standalone kernels (fused_ops_kernel.cu) and
// the decode linear's epilogues (mma_linear_kernel.cu), so both give the same bits.
#pragma once

#include "half_math.cuh"

namespace flexgen {
namespace cuda_half {

// at::silu(gate) * up: T(T(silu(gate)) * up).
template <typename T>
__device__ __forceinline__ T silu_times(T gate, T up) {
  const float g = f(gate);
  const T s = to<T>(g / (1.f + __expf(-g)));
  return to<T>(f(s) * f(up));
}

// RoPE of one pair (x1 = element i, x2 = element i + D/2 of a head): q * cos + rotate_half(q) *
// sin, rounded after each op; c1/s1 are cos/sin at i, c2/s2 at i + D/2.
template <typename T>
__device__ __forceinline__ void rope_pair(float x1, float x2, T c1, T s1, T c2, T s2, T& o1, T& o2) {
  o1 = to<T>(f(to<T>(x1 * f(c1))) + f(to<T>(-x2 * f(s1))));
  o2 = to<T>(f(to<T>(x2 * f(c2))) + f(to<T>(x1 * f(s2))));
}

}  // namespace cuda_half
}  // namespace flexgen
