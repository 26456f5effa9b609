// bf16_linear_isa (cpu_isa.h): which block kernels the bf16 linear layers run for a call of many
// rows, measured once. On some AVX512-BF16 CPUs vdpbf16ps issues at half the FMA rate (an Intel
// Xeon VM, model 207: the bf16 dot peak 167 GFLOP/s on 2 cores against 341 for AVX-512 FMAs), and
// the avx512 kernels, which widen bf16 to fp32 and run two FMAs a pair, compute the same bits
// faster there (`avg` at batch 8 on the demo model: 0.276 -> 0.418 samples/s, records identical);
// on others (a Zen 5 VM: 1,080 against ~540) the vdpbf16ps kernels are faster. Calls of fewer
// rows (decode steps of 1-3 rows stream the weights) stay on cpu_isa()'s path: there the vdpbf16ps
// kernels read the weights faster (Intel VM, batch-1 decode 29.9 against 26.4 tokens/s).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include "cpu/gemm_kernels.h"
#include "flexgen/cpu_isa.h"

namespace flexgen {

namespace {

// GFLOP/s of one thread running `kernel` on a full block (kMaxRows x cols outputs) over K = 1024
// of L1-resident operands: the best of 5 runs of 64 calls.
double block_gflops(cpu::BlockKernel kernel, int cols) {
  constexpr int64_t K = 1024;
  std::vector<uint16_t> x(cpu::kMaxRows * K), w(static_cast<size_t>(cols) * K);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<uint16_t>(0x3f80 + (i * 7) % 61);  // ~1.0 .. 1.5
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<uint16_t>(0xbf00 + (i * 13) % 53);  // ~-0.5 .. -0.7
  std::vector<float> out(static_cast<size_t>(cpu::kMaxRows) * cols);
  using Clock = std::chrono::steady_clock;
  double best = 1e30;
  for (int run = 0; run < 5; ++run) {
    const auto t0 = Clock::now();
    for (int i = 0; i < 64; ++i) kernel(x.data(), K, w.data(), K, K, cpu::kMaxRows, cols, out.data(), cols);
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  const double flop = 64.0 * 2.0 * cpu::kMaxRows * cols * K;
  return best > 0 ? flop / best * 1e-9 : 0;
}

// Whether the avx512 FMA kernels beat the vdpbf16ps ones by 10% or more on this CPU.
bool fma_blocks_faster() {
  static const bool faster = [] {
    const double dot = block_gflops(cpu::block_kernel(CpuIsa::Avx512Bf16), cpu::block_cols(CpuIsa::Avx512Bf16));
    const double fma = block_gflops(cpu::block_kernel(CpuIsa::Avx512), cpu::block_cols(CpuIsa::Avx512));
    return fma >= 1.1 * dot;
  }();
  return faster;
}

static_assert(kLinearManyRows == cpu::kMaxRows, "many rows: a full register block");

}  // namespace

CpuIsa bf16_linear_isa(long long rows) {
  const CpuIsa isa = cpu_isa();
  if (isa != CpuIsa::Avx512Bf16 || cpu_isa_named() || rows < kLinearManyRows) return isa;
  return fma_blocks_faster() ? CpuIsa::Avx512 : isa;
}

}  // namespace flexgen
