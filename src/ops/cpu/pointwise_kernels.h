// Element-wise kernels of the layers on the CPU (private to the ops CPU backend), one
// implementation per instruction-set path, all with the SAME arithmetic, so every path gives
// bitwise the same result (the portable one is the reference):
//   silu_mul: out = round(round(silu(g)) * u) for bf16 (each round: to bf16, nearest even, NaN ->
//             0x7FC0 as c10::BFloat16 does), out = silu(g) * u for fp32, where
//             silu(g) = g / (1 + exp(-g)) in fp32 and exp(y) = exp2(y * log2 e) with
//             exp2(t) = 0 for t <= -126 (and NaN), +inf for t >= 127, else n = round-half-even(t),
//             f = t - n, the Cephes exp2f polynomial in f by Horner's rule with fused
//             multiply-adds, times 2^n.
#pragma once

#include <cstdint>

#include "flexgen/cpu_isa.h"

namespace flexgen::cpu {

struct PointwiseKernels {
  void (*silu_mul_bf16)(const uint16_t* g, const uint16_t* u, uint16_t* out, int64_t n);
  void (*silu_mul_f32)(const float* g, const float* u, float* out, int64_t n);
};

// The kernels of a path (any path this build has; the caller checks the CPU can run it).
const PointwiseKernels& pointwise_kernels(CpuIsa isa);

const PointwiseKernels& pointwise_kernels_portable();
const PointwiseKernels& pointwise_kernels_avx2();
const PointwiseKernels& pointwise_kernels_avx512();

}  // namespace flexgen::cpu
