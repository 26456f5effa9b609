// The model's linear layer on the CPU (linear_cpu.h): bf16 and fp32 products through the block
// kernels of gemm_kernels.h on the path cpu_isa() names (bf16: bf16_linear_isa's, by the call's
// rows), tiled over the outputs (each thread takes whole tiles of weight rows that fit in L2, a
// chunk of x's rows against them at a time), fp32 results rounded to bf16 once.
#include "cpu/linear_cpu.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <stdexcept>

#include "cpu/gemm_kernels.h"
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

int block_cols(CpuIsa isa) { return isa == CpuIsa::Avx512Bf16 ? kMaxColsWide : kMaxCols; }

BlockKernelF32 block_kernel_f32(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::Avx512Bf16:
    case CpuIsa::Avx512: return block_f32_avx512;
    case CpuIsa::Avx2: return block_f32_avx2;
    case CpuIsa::Portable: break;
  }
  return block_f32_portable;
}

}  // namespace cpu

namespace {

std::atomic<bool> g_kernels{true};

// Weight rows per tile: about 256 KiB of bf16 (half a typical L2), a multiple of the block width.
int64_t tile_rows(int64_t K, int64_t cols) {
  const int64_t rows = (256 * 1024) / std::max<int64_t>(1, 2 * K);
  return std::max<int64_t>(cols, rows / cols * cols);
}

}  // namespace

void set_bf16_linear_kernels(bool enabled) { g_kernels = enabled; }

namespace {

// Rows of x within `bytes` (at least one micro-kernel's rows, a multiple of them, so the kernel
// calls are those of one chunk or group). Chunks: about 2 MiB, which stays in cache while a
// thread's weight tiles pass over it, and whose fp32 sums stay in reused memory. Groups (the rows
// a weight block meets in turn): about 512 KiB, within a 1 MiB L2 beside a weight tile.
constexpr int64_t kChunkBytes = 2 * 1024 * 1024, kGroupBytes = 512 * 1024;
int64_t x_rows_within(int64_t bytes, int64_t row_bytes) {
  const int64_t rows = bytes / std::max<int64_t>(1, row_bytes);
  return std::max<int64_t>(cpu::kMaxRows, rows / cpu::kMaxRows * cpu::kMaxRows);
}

// out[i] = x . weights[i]^T for x [..., K] and weights [N_i, K] of element type T (the kernel's),
// every weight's tiles in one parallel region per chunk of x's rows: fp32 sums, or (out_dtype
// bf16) those sums rounded to bf16 once, a chunk at a time (the same rounding as .to()). Long
// inputs (a prefill pass of many rows) keep the speed of short ones: measured on a 2-core Zen 5
// VM, 2048 x 8192 outputs from 2048-wide rows went from 740 GFLOP/s at 768 rows to ~510 at 3200
// when x and the fp32 sums were whole (x out of cache, sums beyond malloc's reuse: page faults).
template <class T, class Kernel>
std::vector<at::Tensor> products(const at::Tensor& x, const std::vector<at::Tensor>& weights, Kernel kernel,
                                 int max_cols, at::ScalarType out_dtype) {
  const int64_t K = x.size(-1);
  const at::Tensor x2 = x.reshape({-1, K}).contiguous();
  const int64_t M = x2.size(0);
  const T* xp = reinterpret_cast<const T*>(x2.data_ptr());
  const int64_t tile = tile_rows(K * static_cast<int64_t>(sizeof(T)) / 2, max_cols);
  const int64_t row_bytes = K * static_cast<int64_t>(sizeof(T));
  const int64_t chunk = std::min(M, x_rows_within(kChunkBytes, row_bytes));
  const int64_t group = x_rows_within(kGroupBytes, row_bytes);
  const bool direct = out_dtype == at::kFloat;  // sums written in place
  std::vector<at::Tensor> outs, sums;
  std::vector<int64_t> first_tile = {0};
  for (const auto& w : weights) {
    outs.push_back(at::empty({M, w.size(0)}, at::TensorOptions().dtype(out_dtype)));
    if (!direct) sums.push_back(at::empty({chunk, w.size(0)}, at::TensorOptions().dtype(at::kFloat)));
    first_tile.push_back(first_tile.back() + (w.size(0) + tile - 1) / tile);
  }
  for (int64_t m0 = 0; m0 < M; m0 += chunk) {
    const int64_t m1 = std::min(M, m0 + chunk);
    at::parallel_for(0, first_tile.back(), 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const size_t i = static_cast<size_t>(std::upper_bound(first_tile.begin(), first_tile.end(), t) - first_tile.begin() - 1);
        const int64_t N = weights[i].size(0);
        const int64_t n0 = (t - first_tile[i]) * tile, n1 = std::min(N, n0 + tile);
        const T* wp = reinterpret_cast<const T*>(weights[i].data_ptr());
        float* out = direct ? outs[i].data_ptr<float>() + m0 * N : sums[i].data_ptr<float>();
        // Within a group of x's rows that stays in L2 (about 512 KiB), a block of weight rows (one
        // kernel call's columns) meets every row block before the next: it stays in L1 (6 rows of
        // K = 2048: 24 KB) while x comes from L2. (Weight block outside, all of a chunk's rows
        // inside: a Zen 5 VM's 80-row decode step ~5% faster, but a 2048-token prefill pass ~10%
        // slower, x then coming from L3.) The same calls in another order: the same bits.
        for (int64_t g0 = m0; g0 < m1; g0 += group) {
          const int64_t g1 = std::min(m1, g0 + group);
          for (int64_t n = n0; n < n1; n += max_cols) {
            const int cols = static_cast<int>(std::min<int64_t>(max_cols, n1 - n));
            for (int64_t m = g0; m < g1; m += cpu::kMaxRows) {
              const int rows = static_cast<int>(std::min<int64_t>(cpu::kMaxRows, m1 - m));
              kernel(xp + m * K, K, wp + n * K, K, K, rows, cols, out + (m - m0) * N + n, N);
            }
          }
        }
      }
    });
    if (!direct)
      for (size_t i = 0; i < weights.size(); ++i) outs[i].narrow(0, m0, m1 - m0).copy_(sums[i].narrow(0, 0, m1 - m0));
  }
  for (size_t i = 0; i < weights.size(); ++i) {
    std::vector<int64_t> shape = x.sizes().vec();
    shape.back() = weights[i].size(0);
    outs[i] = outs[i].view(shape);
  }
  return outs;
}

void check_inputs(const at::Tensor& x, const std::vector<at::Tensor>& weights, at::ScalarType dtype, const char* who) {
  const int64_t K = x.size(-1);
  for (const auto& w : weights)
    if (!x.device().is_cpu() || x.scalar_type() != dtype || !w.device().is_cpu() || w.scalar_type() != dtype ||
        w.dim() != 2 || w.size(1) != K || !w.is_contiguous())
      throw std::invalid_argument(std::string(who) + ": needs CPU x [..., K] and contiguous weights [N, K] of its dtype");
}

}  // namespace

std::vector<at::Tensor> linear_bf16(const at::Tensor& x, const std::vector<at::Tensor>& weights, bool round_to_bf16) {
  check_inputs(x, weights, at::kBFloat16, "linear_bf16");
  const int64_t K = x.size(-1);
  const CpuIsa isa = bf16_linear_isa(K > 0 ? x.numel() / K : 0);
  return products<uint16_t>(x, weights, cpu::block_kernel(isa), cpu::block_cols(isa),
                            round_to_bf16 ? at::kBFloat16 : at::kFloat);
}

std::vector<at::Tensor> linear_f32(const at::Tensor& x, const std::vector<at::Tensor>& weights) {
  check_inputs(x, weights, at::kFloat, "linear_f32");
  return products<float>(x, weights, cpu::block_kernel_f32(cpu_isa()), cpu::kMaxCols, at::kFloat);
}

namespace {
bool kernel_applies(const at::Tensor& x, const at::Tensor& weight) {
  const bool dtype = (x.scalar_type() == at::kBFloat16 || x.scalar_type() == at::kFloat) &&
                     weight.scalar_type() == x.scalar_type();
  return g_kernels && dtype && x.device().is_cpu() && weight.device().is_cpu() && weight.dim() == 2 &&
         weight.is_contiguous() && weight.size(1) == x.size(-1);
}

std::vector<at::Tensor> kernel_products(const at::Tensor& x, const std::vector<at::Tensor>& weights) {
  return x.scalar_type() == at::kBFloat16 ? linear_bf16(x, weights) : linear_f32(x, weights);
}
}  // namespace

at::Tensor linear_layer(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  if (kernel_applies(x, weight)) {
    at::Tensor y = kernel_products(x, {weight})[0];
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
    out = kernel_products(x, weights);
    for (size_t i = 0; i < out.size() && i < biases.size(); ++i)
      if (biases[i].defined()) out[i] = out[i] + biases[i];
    return out;
  }
  for (size_t i = 0; i < weights.size(); ++i)
    out.push_back(at::linear(x, weights[i], i < biases.size() ? biases[i] : at::Tensor()));
  return out;
}

}  // namespace flexgen
