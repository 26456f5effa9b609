// The portable element-wise kernels (pointwise_kernels.h): plain C++ with std::fma; the reference
// the vector paths must equal bit for bit. Also the kernel table.
#include <cmath>
#include <cstring>
#include <limits>

#include "cpu/pointwise_kernels.h"
#include "cpu/vec_math.h"

namespace flexgen::cpu {
namespace {

inline float silu(float g) { return g / (1.0f + exp2_scalar(-g * kLog2eF)); }

void silu_mul_bf16(const uint16_t* g, const uint16_t* u, uint16_t* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = round_bf16(widen_bf16(round_bf16(silu(widen_bf16(g[i])))) * widen_bf16(u[i]));
}

void silu_mul_f32(const float* g, const float* u, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = silu(g[i]) * u[i];
}

}  // namespace

const PointwiseKernels& pointwise_kernels_portable() {
  static const PointwiseKernels k{silu_mul_bf16, silu_mul_f32};
  return k;
}

const PointwiseKernels& pointwise_kernels(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::Avx2: return pointwise_kernels_avx2();
    case CpuIsa::Avx512:
    case CpuIsa::Avx512Bf16: return pointwise_kernels_avx512();
    case CpuIsa::Portable: break;
  }
  return pointwise_kernels_portable();
}

}  // namespace flexgen::cpu
