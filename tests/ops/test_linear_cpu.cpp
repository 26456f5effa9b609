// The CPU bf16 linear kernels (src/ops/cpu/linear_cpu.h, gemm_bf16.h): every instruction-set path
// this CPU can run gives bitwise the portable kernel's result; results are within the error bound
// of fp32 accumulation plus one bf16 rounding of an fp64 reference; a row's result does not depend
// on the other rows of the call, on the threads, or on which weights share the parallel region.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <vector>

#include "cpu/linear_cpu.h"
#include "cpu_path_test.h"
#include "flexgen/cpu_isa.h"

namespace flexgen {
namespace {

// Restores the kernel path and thread count a test changed.
class LinearCpu : public testing::CpuPathTest {
 protected:
  // Values spread over several binades, so that roundings actually happen at different places.
  static at::Tensor values(std::vector<int64_t> shape, uint64_t seed) {
    at::Generator g = at::detail::createCPUGenerator(seed);
    at::Tensor base = at::randn(shape, g);
    at::Tensor scale = at::pow(2.0, at::randint(-4, 5, shape, g).to(at::kFloat));
    return (base * scale).to(at::kBFloat16);
  }
};

const std::vector<std::pair<int64_t, int64_t>> kShapes = {{37, 64}, {64, 2048}, {130, 100}, {7, 16}, {9, 1},
                                                          {5, 31}, {12, 33}, {21, 257}, {14, 40}, {70, 8192}};

TEST_F(LinearCpu, EveryPathEqualsThePortableKernelBitwise) {
  for (const auto& [N, K] : kShapes)
    for (int64_t M : {1, 3, 4, 6, 9}) {
      const at::Tensor x = values({M, K}, 1 + N + K + M), w = values({N, K}, 2 + N * K);
      // The fp32 sums before the final rounding: rounding to bf16 would hide most differences.
      set_cpu_isa(CpuIsa::Portable);
      const at::Tensor want = linear_bf16(x, {w}, /*round_to_bf16=*/false)[0];
      for (CpuIsa isa : runnable_cpu_isas()) {
        set_cpu_isa(isa);
        EXPECT_TRUE(at::equal(linear_bf16(x, {w}, false)[0], want))
            << to_string(isa) << " differs from portable: M " << M << " N " << N << " K " << K;
      }
    }
}

TEST_F(LinearCpu, WithinTheBoundOfFp32AccumulationAndOneBf16Rounding) {
  // |y - exact| <= 2^-8 |exact| (the final rounding, half an ulp) + (1 + 2^-8) * e32, where e32
  // bounds the fp32 accumulation: each of the 16 lanes adds K/16 exact products (one rounding
  // each) and the lanes are summed in 4 levels: e32 <= (ceil(K/16) + 4) 2^-24 sum_k |x_k w_k|.
  for (CpuIsa isa : runnable_cpu_isas()) {
    set_cpu_isa(isa);
    for (const auto& [N, K] : kShapes) {
      const at::Tensor x = values({5, K}, 7 + K), w = values({N, K}, 8 + N);
      const at::Tensor xd = x.to(at::kDouble), wd = w.to(at::kDouble);
      const at::Tensor exact = at::matmul(xd, wd.t());
      const at::Tensor mag = at::matmul(xd.abs(), wd.abs().t());
      const double levels = std::ceil(K / 16.0) + 4;
      const at::Tensor bound = exact.abs() * std::ldexp(1.0, -8) + mag * (levels * std::ldexp(1.0, -24)) * (1 + std::ldexp(1.0, -8));
      const at::Tensor err = (linear_bf16(x, {w})[0].to(at::kDouble) - exact).abs();
      EXPECT_TRUE((err <= bound).all().item<bool>())
          << to_string(isa) << " N " << N << " K " << K << ": worst error/bound " << (err / bound).max().item<double>();
    }
  }
}

TEST_F(LinearCpu, ARowsResultDoesNotDependOnTheOtherRowsOrTheThreads) {
  for (CpuIsa isa : runnable_cpu_isas()) {
    set_cpu_isa(isa);
    const int64_t K = 300, N = 70;
    const at::Tensor x = values({23, K}, 11), w = values({N, K}, 12);
    at::set_num_threads(2);
    const at::Tensor all = linear_bf16(x, {w}, false)[0];  // fp32 sums: every bit of the arithmetic
    for (int64_t m = 0; m < x.size(0); ++m) {
      ASSERT_TRUE(at::equal(linear_bf16(x.narrow(0, m, 1), {w}, false)[0], all.narrow(0, m, 1)))
          << to_string(isa) << " row " << m;
      const int64_t n = std::min<int64_t>(5, x.size(0) - m);  // the row among up to 4 others
      ASSERT_TRUE(at::equal(linear_bf16(x.narrow(0, m, n), {w}, false)[0].narrow(0, 0, 1), all.narrow(0, m, 1)));
    }
    at::set_num_threads(1);
    EXPECT_TRUE(at::equal(linear_bf16(x, {w}, false)[0], all)) << to_string(isa) << ": 1 thread vs 2";
  }
}

// Many rows (a long prefill pass) go through the kernels a chunk of rows at a time (about 2 MiB of
// x: 128 bf16 or 64 fp32 rows of 8192): every row's sums and its bf16 rounding are bitwise those
// of the row alone, on each side of every chunk boundary and in the partial last chunk.
TEST_F(LinearCpu, ManyRowsGoInChunksWithEachRowsBitsAlone) {
  const int64_t K = 8192, N = 24, M = 301;
  const at::Tensor x = values({M, K}, 51), w = values({N, K}, 52);
  const at::Tensor xf = x.to(at::kFloat), wf = w.to(at::kFloat);
  at::set_num_threads(2);
  const at::Tensor sums = linear_bf16(x, {w}, false)[0], f32 = linear_f32(xf, {wf})[0];
  EXPECT_TRUE(at::equal(linear_bf16(x, {w})[0], sums.to(at::kBFloat16)));
  for (int64_t m : {0, 1, 63, 64, 65, 127, 128, 129, 255, 256, 257, 299, 300}) {
    EXPECT_TRUE(at::equal(linear_bf16(x.narrow(0, m, 1), {w}, false)[0], sums.narrow(0, m, 1))) << "row " << m;
    EXPECT_TRUE(at::equal(linear_f32(xf.narrow(0, m, 1), {wf})[0], f32.narrow(0, m, 1))) << "fp32 row " << m;
  }
}

TEST_F(LinearCpu, FusedWeightsEqualSeparateCallsAndBiasIsAddedInBf16) {
  at::Tensor x = values({1, 2, 96}, 21);
  std::vector<at::Tensor> ws = {values({40, 96}, 22), values({9, 96}, 23), values({64, 96}, 24)};
  const at::Tensor b = values({9}, 25);
  std::vector<at::Tensor> fused = linear_layers(x, ws, {at::Tensor(), b, at::Tensor()});
  ASSERT_EQ(fused.size(), 3u);
  for (size_t i = 0; i < ws.size(); ++i) {
    const at::Tensor sep = linear_layer(x, ws[i], i == 1 ? b : at::Tensor());
    EXPECT_EQ(sep.sizes(), (std::vector<int64_t>{1, 2, ws[i].size(0)}));
    EXPECT_TRUE(at::equal(fused[i], sep)) << i;
  }
  EXPECT_TRUE(at::equal(fused[1], linear_bf16(x, {ws[1]})[0] + b));
}

TEST_F(LinearCpu, Fp32EveryPathEqualsPortableAndRowsAreIndependent) {
  // fp32: each product rounds once (fma), so e32 <= (ceil(K/16) + 4) 2^-24 sum |x w| as above.
  for (const auto& [N, K] : kShapes) {
    const at::Tensor x = values({9, K}, 41 + K).to(at::kFloat), w = values({N, K}, 42 + N).to(at::kFloat);
    set_cpu_isa(CpuIsa::Portable);
    const at::Tensor want = linear_f32(x, {w})[0];
    const at::Tensor xd = x.to(at::kDouble), wd = w.to(at::kDouble);
    const at::Tensor bound = at::matmul(xd.abs(), wd.abs().t()) * ((std::ceil(K / 16.0) + 4) * std::ldexp(1.0, -24));
    EXPECT_TRUE(((want.to(at::kDouble) - at::matmul(xd, wd.t())).abs() <= bound).all().item<bool>()) << "K " << K;
    for (CpuIsa isa : runnable_cpu_isas()) {
      set_cpu_isa(isa);
      EXPECT_TRUE(at::equal(linear_f32(x, {w})[0], want)) << to_string(isa) << " N " << N << " K " << K;
      for (int64_t m = 0; m < x.size(0); m += 4)
        EXPECT_TRUE(at::equal(linear_f32(x.narrow(0, m, 1), {w})[0], want.narrow(0, m, 1))) << to_string(isa) << " row " << m;
    }
  }
}

// Left to itself (no path named), a bf16 call of many rows runs the best path or, on an
// avx512bf16 CPU whose FMAs are faster than its vdpbf16ps, the avx512 kernels; one-row calls stay on
// the best path; and whatever ran, the sums are the portable kernel's bits. (Run alone, as ctest
// does: a test before it in the same process names a path.)
TEST_F(LinearCpu, UnnamedManyRowCallsRunTheBestPathOrTheFasterFmaKernelsWithTheSameBits) {
  if (cpu_isa_named()) GTEST_SKIP() << "a path is named (FLEXGEN_CPU_ISA or an earlier test)";
  const CpuIsa best = best_cpu_isa();
  EXPECT_EQ(bf16_linear_isa(1), best);
  const CpuIsa many = bf16_linear_isa(64);
  EXPECT_TRUE(many == best || (best == CpuIsa::Avx512Bf16 && many == CpuIsa::Avx512)) << to_string(many);
  const at::Tensor x = values({64, 2048}, 61), w = values({40, 2048}, 62);
  const at::Tensor sums = linear_bf16(x, {w}, false)[0], one = linear_bf16(x.narrow(0, 5, 1), {w}, false)[0];
  set_cpu_isa(CpuIsa::Portable);
  const at::Tensor want = linear_bf16(x, {w}, false)[0];
  EXPECT_TRUE(at::equal(sums, want)) << "64 rows on " << to_string(many);
  EXPECT_TRUE(at::equal(one, want.narrow(0, 5, 1)));
}

// A named path is the one every call runs, of any number of rows; clear_cpu_isa forgets it.
TEST_F(LinearCpu, ANamedPathRunsEveryCall) {
  for (CpuIsa isa : runnable_cpu_isas()) {
    set_cpu_isa(isa);
    EXPECT_TRUE(cpu_isa_named());
    EXPECT_EQ(bf16_linear_isa(1), isa);
    EXPECT_EQ(bf16_linear_isa(4), isa);
    EXPECT_EQ(bf16_linear_isa(1000), isa);
  }
  clear_cpu_isa();  // none named again: the best path
  EXPECT_FALSE(cpu_isa_named());
  EXPECT_EQ(cpu_isa(), best_cpu_isa());
}

TEST_F(LinearCpu, OtherInputsAreRefusedOrGoToLibtorch) {
  const at::Tensor x = values({2, 8}, 31), w = values({3, 8}, 32);
  EXPECT_THROW(linear_bf16(x.to(at::kFloat), {w}), std::invalid_argument);
  EXPECT_THROW(linear_bf16(x, {values({3, 9}, 33)}), std::invalid_argument);
  EXPECT_THROW(linear_bf16(x, {w.t()}), std::invalid_argument);  // not contiguous
  EXPECT_THROW(linear_f32(x, {w}), std::invalid_argument);  // bf16 to the fp32 kernel
  const at::Tensor d = linear_layer(x.to(at::kDouble), w.to(at::kDouble));  // fp64: libtorch
  EXPECT_TRUE(at::allclose(d, at::linear(x.to(at::kDouble), w.to(at::kDouble))));
  EXPECT_THROW(set_cpu_isa(static_cast<CpuIsa>(static_cast<int>(best_cpu_isa()) + 1)), std::invalid_argument);
}

}  // namespace
}  // namespace flexgen
