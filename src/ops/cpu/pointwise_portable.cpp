// The portable element-wise kernels (pointwise_kernels.h): plain C++ with std::fma; the reference
// the vector paths must equal bit for bit. Also the kernel table.
#include <cmath>
#include <cstring>
#include <limits>

#include "cpu/pointwise_kernels.h"

namespace flexgen::cpu {
namespace {

inline float exp_canon(float y) {
  const float t = y * 1.44269504088896341f;
  if (!(t > -126.0f)) return 0.0f;
  if (t >= 127.0f) return std::numeric_limits<float>::infinity();
  const float n = std::nearbyint(t);
  const float f = t - n;
  float p = 1.535336188319500e-4f;
  p = std::fma(p, f, 1.339887440266574e-3f);
  p = std::fma(p, f, 9.618437357674640e-3f);
  p = std::fma(p, f, 5.550332471162809e-2f);
  p = std::fma(p, f, 2.402264791363012e-1f);
  p = std::fma(p, f, 6.931472028550421e-1f);
  p = std::fma(p, f, 1.0f);
  const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

inline float silu(float g) { return g / (1.0f + exp_canon(-g)); }

inline float widen(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline uint16_t round_bf16(float x) {
  if (std::isnan(x)) return 0x7FC0;
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return static_cast<uint16_t>((u + ((u >> 16) & 1u) + 0x7FFFu) >> 16);
}

void silu_mul_bf16(const uint16_t* g, const uint16_t* u, uint16_t* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = round_bf16(widen(round_bf16(silu(widen(g[i])))) * widen(u[i]));
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
