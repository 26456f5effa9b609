// The layers' element-wise steps on the CPU (pointwise_cpu.h), rows in parallel.
#include "cpu/pointwise_cpu.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "cpu/gemm_kernels.h"
#include "cpu/pointwise_kernels.h"
#include "cpu/vec_math.h"
#include "flexgen/cpu_isa.h"

namespace flexgen {
namespace {

void check(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument(what);
}

}  // namespace

at::Tensor rms_norm_cpu(const at::Tensor& x_in, const at::Tensor& weight_in, double eps) {
  const auto dt = x_in.scalar_type();
  check(dt == at::kBFloat16 || dt == at::kFloat, "rms_norm_cpu: bf16 or fp32 input expected");
  check(weight_in.scalar_type() == dt && weight_in.dim() == 1 && weight_in.size(0) == x_in.size(-1),
        "rms_norm_cpu: weight must be [hidden] of the input's dtype");
  const at::Tensor x = x_in.contiguous(), weight = weight_in.contiguous();
  at::Tensor out = at::empty_like(x);
  const int64_t N = x.size(-1), rows = N == 0 ? 0 : x.numel() / N;
  const float epsf = static_cast<float>(eps), nf = static_cast<float>(N);
  const CpuIsa isa = cpu_isa();
  if (dt == at::kBFloat16) {
    const auto* xp = reinterpret_cast<const uint16_t*>(x.data_ptr<c10::BFloat16>());
    const auto* wp = reinterpret_cast<const uint16_t*>(weight.data_ptr<c10::BFloat16>());
    auto* op = out.data_ptr<c10::BFloat16>();
    const cpu::BlockKernel dot = cpu::block_kernel(isa);
    at::parallel_for(0, rows, 1, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const uint16_t* xr = xp + r * N;
        float sumsq = 0;
        dot(xr, N, xr, N, N, 1, 1, &sumsq, 1);
        const float inv = 1.0f / std::sqrt(sumsq / nf + epsf);
        for (int64_t c = 0; c < N; ++c) {
          const float y = cpu::widen_bf16(cpu::round_bf16(cpu::widen_bf16(xr[c]) * inv));
          op[r * N + c] = c10::BFloat16(cpu::widen_bf16(wp[c]) * y);
        }
      }
    });
  } else {
    const float* xp = x.data_ptr<float>();
    const float* wp = weight.data_ptr<float>();
    float* op = out.data_ptr<float>();
    const cpu::BlockKernelF32 dot = cpu::block_kernel_f32(isa);
    at::parallel_for(0, rows, 1, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const float* xr = xp + r * N;
        float sumsq = 0;
        dot(xr, N, xr, N, N, 1, 1, &sumsq, 1);
        const float inv = 1.0f / std::sqrt(sumsq / nf + epsf);
        for (int64_t c = 0; c < N; ++c) op[r * N + c] = wp[c] * (xr[c] * inv);
      }
    });
  }
  return out;
}

at::Tensor silu_mul_cpu(const at::Tensor& gate_in, const at::Tensor& up_in) {
  const auto dt = gate_in.scalar_type();
  check(dt == at::kBFloat16 || dt == at::kFloat, "silu_mul_cpu: bf16 or fp32 input expected");
  check(up_in.scalar_type() == dt && up_in.sizes() == gate_in.sizes(), "silu_mul_cpu: gate and up differ");
  const at::Tensor gate = gate_in.contiguous(), up = up_in.contiguous();
  at::Tensor out = at::empty_like(gate);
  const int64_t n = gate.numel();
  const cpu::PointwiseKernels& k = cpu::pointwise_kernels(cpu_isa());
  constexpr int64_t kGrain = 1 << 14;
  if (dt == at::kBFloat16) {
    const auto* g = reinterpret_cast<const uint16_t*>(gate.data_ptr<c10::BFloat16>());
    const auto* u = reinterpret_cast<const uint16_t*>(up.data_ptr<c10::BFloat16>());
    auto* o = reinterpret_cast<uint16_t*>(out.data_ptr<c10::BFloat16>());
    at::parallel_for(0, n, kGrain, [&](int64_t a, int64_t b) { k.silu_mul_bf16(g + a, u + a, o + a, b - a); });
  } else {
    const float* g = gate.data_ptr<float>();
    const float* u = up.data_ptr<float>();
    float* o = out.data_ptr<float>();
    at::parallel_for(0, n, kGrain, [&](int64_t a, int64_t b) { k.silu_mul_f32(g + a, u + a, o + a, b - a); });
  }
  return out;
}

}  // namespace flexgen
