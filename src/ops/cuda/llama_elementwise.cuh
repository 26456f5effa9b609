// The LLaMA forward pass's elementwise maps on 16-bit values, each rounded to T where libtorch's
// ops round (transformers' modules): shared by the standalone kernels (fused_ops_kernel.cu) and
// the decode linear's epilogues (mma_linear_kernel.cu, decode_layer_kernel.cu) and the decode-layer
// kernel's norms, so all give the same bits.
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

// The sum over a warp's 32 lanes by an xor butterfly: every lane gets the same bits (a + b == b + a).
__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// LlamaRMSNorm's pieces. The squares of one 8-element chunk added to ss in order; the reciprocal
// of the root mean square from the sum of squares of n elements; an output element T(w T(x r)).
__device__ __forceinline__ float sum_squares8(const float (&v)[8], float ss) {
#pragma unroll
  for (int k = 0; k < 8; ++k) ss = fmaf(v[k], v[k], ss);
  return ss;
}
__device__ __forceinline__ float rms_reciprocal(float sum_squares, int n, float eps) {
  return rsqrtf(sum_squares / static_cast<float>(n) + eps);
}
template <typename T>
__device__ __forceinline__ T rms_scaled(float x, float w, float r) {
  return to<T>(w * f(to<T>(x * r)));
}

}  // namespace cuda_half
}  // namespace flexgen
