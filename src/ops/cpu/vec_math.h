// The fixed element functions the CPU kernels share (private to the ops CPU backend), written once
// per instruction-set path with the same arithmetic (scalar here; vec_math_avx2.h and
// vec_math_avx512.h lane by lane):
//   exp2(t) = 0 for t <= -126 (and NaN), +inf for t >= 127, else n = round-half-even(t),
//             f = t - n, the Cephes exp2f polynomial in f by Horner's rule with fused
//             multiply-adds, times 2^n (exact: the result is normal);
//   widen(bf16) = the bf16 bits as the high half of an fp32;
//   round_bf16(x) = nearest even, NaN -> 0x7FC0 (what c10::BFloat16 does).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace flexgen::cpu {

constexpr float kExp2Coef[7] = {1.535336188319500e-4f, 1.339887440266574e-3f, 9.618437357674640e-3f,
                                5.550332471162809e-2f, 2.402264791363012e-1f, 6.931472028550421e-1f, 1.0f};
constexpr float kLog2eF = 1.44269504088896341f;

inline float exp2_scalar(float t) {
  if (!(t > -126.0f)) return 0.0f;
  if (t >= 127.0f) return std::numeric_limits<float>::infinity();
  const float n = std::nearbyint(t);
  const float f = t - n;
  float p = kExp2Coef[0];
  for (int i = 1; i < 7; ++i) p = std::fma(p, f, kExp2Coef[i]);
  const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

inline float widen_bf16(uint16_t h) {
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

}  // namespace flexgen::cpu
