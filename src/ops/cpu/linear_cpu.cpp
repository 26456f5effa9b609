// The model's linear layer on the CPU (cpu/linear_cpu.h). Decode steps multiply a few activation rows by
// large bf16 weights, where libtorch 1.13's bf16 GEMV reads memory at a
// fraction of the machine's bandwidth; for that case an AVX512-BF16 kernel
// (vdpbf16ps, fp32 accumulation, weights streamed once for all rows) is used
// when the CPU has it. Everything else goes to at::linear.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>

#include "cpu/linear_cpu.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define FLEXGEN_HAVE_BF16_KERNEL 1
#endif

namespace flexgen {
namespace {

constexpr int64_t kMaxKernelRows = 8;

#ifdef FLEXGEN_HAVE_BF16_KERNEL

// out[m, n] = sum_k x[m, k] * w[n, k] for n in [n0, n1); M <= 4 rows of x.
template <int M>
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void gemv_block(const uint16_t* x, int64_t K,
                                                                      const uint16_t* w, int64_t n0,
                                                                      int64_t n1, float* out, int64_t ldo) {
  const int64_t kfull = K / 32 * 32;
  const __mmask32 tail = static_cast<__mmask32>((K % 32) ? ((1u << (K % 32)) - 1u) : 0u);
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4) {
    __m512 acc[M][4];
    for (int m = 0; m < M; ++m)
      for (int j = 0; j < 4; ++j) acc[m][j] = _mm512_setzero_ps();
    const uint16_t* w0 = w + n * K;
    for (int64_t k = 0; k < kfull; k += 32) {
      __m512bh wv[4];
      for (int j = 0; j < 4; ++j) wv[j] = (__m512bh)_mm512_loadu_si512(w0 + j * K + k);
      for (int m = 0; m < M; ++m) {
        const __m512bh xv = (__m512bh)_mm512_loadu_si512(x + m * K + k);
        for (int j = 0; j < 4; ++j) acc[m][j] = _mm512_dpbf16_ps(acc[m][j], xv, wv[j]);
      }
    }
    if (tail) {
      __m512bh wv[4];
      for (int j = 0; j < 4; ++j) wv[j] = (__m512bh)_mm512_maskz_loadu_epi16(tail, w0 + j * K + kfull);
      for (int m = 0; m < M; ++m) {
        const __m512bh xv = (__m512bh)_mm512_maskz_loadu_epi16(tail, x + m * K + kfull);
        for (int j = 0; j < 4; ++j) acc[m][j] = _mm512_dpbf16_ps(acc[m][j], xv, wv[j]);
      }
    }
    for (int m = 0; m < M; ++m)
      for (int j = 0; j < 4; ++j) out[m * ldo + n + j] = _mm512_reduce_add_ps(acc[m][j]);
  }
  for (; n < n1; ++n) {  // leftover output rows, one at a time
    __m512 acc[M];
    for (int m = 0; m < M; ++m) acc[m] = _mm512_setzero_ps();
    const uint16_t* w0 = w + n * K;
    for (int64_t k = 0; k < kfull; k += 32) {
      const __m512bh wv = (__m512bh)_mm512_loadu_si512(w0 + k);
      for (int m = 0; m < M; ++m)
        acc[m] = _mm512_dpbf16_ps(acc[m], (__m512bh)_mm512_loadu_si512(x + m * K + k), wv);
    }
    if (tail) {
      const __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(tail, w0 + kfull);
      for (int m = 0; m < M; ++m)
        acc[m] = _mm512_dpbf16_ps(acc[m], (__m512bh)_mm512_maskz_loadu_epi16(tail, x + m * K + kfull), wv);
    }
    for (int m = 0; m < M; ++m) out[m * ldo + n] = _mm512_reduce_add_ps(acc[m]);
  }
}

void gemv_rows(const uint16_t* x, int64_t M, int64_t K, const uint16_t* w, int64_t n0, int64_t n1, float* out,
               int64_t ldo) {
  for (int64_t m0 = 0; m0 < M; m0 += 4) {
    const int64_t mb = std::min<int64_t>(4, M - m0);
    const uint16_t* xm = x + m0 * K;
    float* om = out + m0 * ldo;
    switch (mb) {
      case 1: gemv_block<1>(xm, K, w, n0, n1, om, ldo); break;
      case 2: gemv_block<2>(xm, K, w, n0, n1, om, ldo); break;
      case 3: gemv_block<3>(xm, K, w, n0, n1, om, ldo); break;
      default: gemv_block<4>(xm, K, w, n0, n1, om, ldo); break;
    }
  }
}

bool cpu_has_bf16_kernel() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512bf16");
  }();
  return has;
}

#endif

}  // namespace

namespace {
std::atomic<bool> g_gemv_enabled{true};
}  // namespace

void set_bf16_gemv_enabled(bool enabled) { g_gemv_enabled = enabled; }

bool bf16_gemv_kernel_available() {
#ifdef FLEXGEN_HAVE_BF16_KERNEL
  return cpu_has_bf16_kernel();
#else
  return false;
#endif
}

std::vector<at::Tensor> bf16_gemv_multi(const at::Tensor& x, const std::vector<at::Tensor>& weights) {
#ifdef FLEXGEN_HAVE_BF16_KERNEL
  if (!cpu_has_bf16_kernel()) throw std::runtime_error("bf16_gemv: this CPU has no AVX512-BF16");
  const int64_t K = x.size(-1);
  for (const auto& w : weights)
    if (x.scalar_type() != at::kBFloat16 || w.scalar_type() != at::kBFloat16 || w.dim() != 2 || w.size(1) != K ||
        !w.is_contiguous() || x.device().type() != at::kCPU || w.device().type() != at::kCPU)
      throw std::invalid_argument("bf16_gemv: needs bf16 CPU x [..., K] and contiguous weights [N, K]");
  const at::Tensor x2 = x.reshape({-1, K}).contiguous();
  const int64_t M = x2.size(0);
  const auto* xp = reinterpret_cast<const uint16_t*>(x2.data_ptr());
  // One parallel region over the 4-row blocks of all weights together.
  std::vector<at::Tensor> outs;
  std::vector<int64_t> block_start = {0};
  for (const auto& w : weights) {
    outs.push_back(at::empty({M, w.size(0)}, at::TensorOptions().dtype(at::kFloat)));
    block_start.push_back(block_start.back() + (w.size(0) + 3) / 4);
  }
  const int64_t grain = std::max<int64_t>(1, (256 * 1024) / std::max<int64_t>(1, 4 * 2 * K));
  at::parallel_for(0, block_start.back(), grain, [&](int64_t b0, int64_t b1) {
    for (size_t i = 0; i < weights.size(); ++i) {
      const int64_t lo = std::max(b0, block_start[i]), hi = std::min(b1, block_start[i + 1]);
      if (lo >= hi) continue;
      const int64_t N = weights[i].size(0);
      gemv_rows(xp, M, K, reinterpret_cast<const uint16_t*>(weights[i].data_ptr()), (lo - block_start[i]) * 4,
                std::min(N, (hi - block_start[i]) * 4), outs[i].data_ptr<float>(), N);
    }
  });
  std::vector<at::Tensor> result;
  for (size_t i = 0; i < weights.size(); ++i) {
    std::vector<int64_t> shape = x.sizes().vec();
    shape.back() = weights[i].size(0);
    result.push_back(outs[i].to(at::kBFloat16).view(shape));
  }
  return result;
#else
  throw std::runtime_error("bf16_gemv: not built for this CPU architecture");
#endif
}

at::Tensor bf16_gemv(const at::Tensor& x, const at::Tensor& weight) { return bf16_gemv_multi(x, {weight})[0]; }

namespace {
bool kernel_applies(const at::Tensor& x, const at::Tensor& weight) {
  return x.device().is_cpu() && x.scalar_type() == at::kBFloat16 && weight.scalar_type() == at::kBFloat16 &&
         weight.device().is_cpu() && weight.dim() == 2 &&
         weight.is_contiguous() && x.numel() / std::max<int64_t>(1, x.size(-1)) <= kMaxKernelRows &&
         g_gemv_enabled && bf16_gemv_kernel_available();
}
}  // namespace

at::Tensor linear_layer(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  if (kernel_applies(x, weight)) {
    at::Tensor y = bf16_gemv(x, weight);
    return bias.defined() ? y + bias : y;
  }
  return at::linear(x, weight, bias);
}

std::vector<at::Tensor> linear_layers(const at::Tensor& x, const std::vector<at::Tensor>& weights,
                                      const std::vector<at::Tensor>& biases) {
  bool fused = true;
  for (const auto& w : weights) fused = fused && kernel_applies(x, w);
  std::vector<at::Tensor> out;
  if (fused) {
    out = bf16_gemv_multi(x, weights);
    for (size_t i = 0; i < out.size() && i < biases.size(); ++i)
      if (biases[i].defined()) out[i] = out[i] + biases[i];
    return out;
  }
  for (size_t i = 0; i < weights.size(); ++i)
    out.push_back(at::linear(x, weights[i], i < biases.size() ? biases[i] : at::Tensor()));
  return out;
}

}  // namespace flexgen
