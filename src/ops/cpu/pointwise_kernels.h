// Element-wise kernels of the layers on the CPU (private to the ops CPU backend), one
// implementation per instruction-set path, all with the SAME arithmetic, so every path gives
// bitwise the same result (the portable one is the reference):
//   silu_mul: out = round(round(silu(g)) * u) for bf16 (each round: to bf16, nearest even, NaN ->
//             0x7FC0 as c10::BFloat16 does), out = silu(g) * u for fp32, where
//             silu(g) = g / (1 + exp2(-g * log2 e)) in fp32, exp2 and the bf16 rounding
//             vec_math.h's.
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
