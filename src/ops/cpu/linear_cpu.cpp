// The model's linear layer on the CPU (linear_cpu.h): bf16 products through the block kernels of
// gemm_bf16.h on the path cpu_isa() names, tiled over the outputs (each thread takes whole tiles of
// weight rows that fit in L2, all rows of x against them), fp32 results rounded to bf16 once.
#include "cpu/linear_cpu.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <stdexcept>

#include "cpu/gemm_bf16.h"
#include "flexgen/cpu_isa.h"

namespace flexgen {
namespace cpu {

BlockKernel block_kernel(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::Avx512Bf16: return block_avx512bf16;
    case CpuIsa::Avx512: return block_avx512;
    case CpuIsa::Avx2: return block_avx2;
    case CpuIsa::Portable: break;
  }
  return block_portable;
}

}  // namespace cpu

namespace {

std::atomic<bool> g_kernels{true};

// Weight rows per tile: about 256 KiB of bf16 (half a typical L2), a multiple of the block width.
int64_t tile_rows(int64_t K) {
  const int64_t rows = (256 * 1024) / std::max<int64_t>(1, 2 * K);
  return std::max<int64_t>(cpu::kMaxCols, rows / cpu::kMaxCols * cpu::kMaxCols);
}

bool bf16_cpu(const at::Tensor& t) { return t.device().is_cpu() && t.scalar_type() == at::kBFloat16; }

}  // namespace

void set_bf16_linear_kernels(bool enabled) { g_kernels = enabled; }

std::vector<at::Tensor> linear_bf16(const at::Tensor& x, const std::vector<at::Tensor>& weights, bool round_to_bf16) {
  const int64_t K = x.size(-1);
  for (const auto& w : weights)
    if (!bf16_cpu(x) || !bf16_cpu(w) || w.dim() != 2 || w.size(1) != K || !w.is_contiguous())
      throw std::invalid_argument("linear_bf16: needs bf16 CPU x [..., K] and contiguous bf16 weights [N, K]");
  const at::Tensor x2 = x.reshape({-1, K}).contiguous();
  const int64_t M = x2.size(0);
  const auto* xp = reinterpret_cast<const uint16_t*>(x2.data_ptr());
  const cpu::BlockKernel kernel = cpu::block_kernel(cpu_isa());
  const int64_t tile = tile_rows(K);
  // The tiles of all weights in one parallel region.
  std::vector<at::Tensor> outs;
  std::vector<int64_t> first_tile = {0};
  for (const auto& w : weights) {
    outs.push_back(at::empty({M, w.size(0)}, at::TensorOptions().dtype(at::kFloat)));
    first_tile.push_back(first_tile.back() + (w.size(0) + tile - 1) / tile);
  }
  at::parallel_for(0, first_tile.back(), 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const size_t i = static_cast<size_t>(std::upper_bound(first_tile.begin(), first_tile.end(), t) - first_tile.begin() - 1);
      const int64_t N = weights[i].size(0);
      const int64_t n0 = (t - first_tile[i]) * tile, n1 = std::min(N, n0 + tile);
      const auto* wp = reinterpret_cast<const uint16_t*>(weights[i].data_ptr());
      float* out = outs[i].data_ptr<float>();
      for (int64_t m = 0; m < M; m += cpu::kMaxRows) {
        const int rows = static_cast<int>(std::min<int64_t>(cpu::kMaxRows, M - m));
        for (int64_t n = n0; n < n1; n += cpu::kMaxCols) {
          const int cols = static_cast<int>(std::min<int64_t>(cpu::kMaxCols, n1 - n));
          kernel(xp + m * K, K, wp + n * K, K, K, rows, cols, out + m * N + n, N);
        }
      }
    }
  });
  std::vector<at::Tensor> result;
  for (size_t i = 0; i < weights.size(); ++i) {
    std::vector<int64_t> shape = x.sizes().vec();
    shape.back() = weights[i].size(0);
    result.push_back((round_to_bf16 ? outs[i].to(at::kBFloat16) : outs[i]).view(shape));
  }
  return result;
}

namespace {
bool kernel_applies(const at::Tensor& x, const at::Tensor& weight) {
  return g_kernels && bf16_cpu(x) && bf16_cpu(weight) && weight.dim() == 2 && weight.is_contiguous();
}
}  // namespace

at::Tensor linear_layer(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  if (kernel_applies(x, weight)) {
    at::Tensor y = linear_bf16(x, {weight})[0];
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
    out = linear_bf16(x, weights);
    for (size_t i = 0; i < out.size() && i < biases.size(); ++i)
      if (biases[i].defined()) out[i] = out[i] + biases[i];
    return out;
  }
  for (size_t i = 0; i < weights.size(); ++i)
    out.push_back(at::linear(x, weights[i], i < biases.size() ? biases[i] : at::Tensor()));
  return out;
}

}  // namespace flexgen
