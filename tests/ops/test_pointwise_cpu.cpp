// The CPU layers' element-wise steps (src/ops/cpu/pointwise_cpu.h, rope_cpu.h): every
// instruction-set path gives bitwise the portable kernel's result, including at the edges (zeros,
// huge, tiny, infinite, NaN inputs); results are within the error that the bf16 roundings allow of
// an fp64 reference; a row's result does not depend on the other rows or the threads.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "cpu/pointwise_cpu.h"
#include "cpu/rope_cpu.h"
#include "cpu_path_test.h"
#include "flexgen/cpu_isa.h"

namespace flexgen {
namespace {

// Restores the kernel path and thread count a test changed.
class PointwiseCpu : public testing::CpuPathTest {
 protected:
  // Values over many binades plus the edge cases, n of them.
  static at::Tensor values(int64_t rows, int64_t n, uint64_t seed, bool edges) {
    at::Generator g = at::detail::createCPUGenerator(seed);
    at::Tensor x = at::randn({rows, n}, g) * at::pow(2.0, at::randint(-6, 7, {rows, n}, g).to(at::kFloat));
    if (edges) {
      const float inf = std::numeric_limits<float>::infinity();
      const std::vector<float> e = {0.0f, -0.0f, 88.0f, -88.0f, 100.0f, -100.0f, 1e-30f, -1e-30f, inf, -inf,
                                    std::nanf(""), 87.3f, -87.3f, 0.5f, -0.5f, 3.4e38f, -3.4e38f};
      auto a = x.accessor<float, 2>();
      for (size_t i = 0; i < e.size() && static_cast<int64_t>(i) < n; ++i) a[0][i] = e[i];
    }
    return x;
  }
};

// Bitwise equality that counts NaN == NaN (same bit pattern).
bool same_bits(const at::Tensor& a, const at::Tensor& b) {
  if (a.sizes() != b.sizes() || a.scalar_type() != b.scalar_type()) return false;
  const at::Tensor x = a.contiguous(), y = b.contiguous();
  return std::memcmp(x.data_ptr(), y.data_ptr(), x.numel() * x.element_size()) == 0;
}

TEST_F(PointwiseCpu, SiluMulEveryPathEqualsPortableBitwise) {
  for (int64_t n : {1, 7, 8, 15, 16, 17, 33, 1000, 8192})
    for (auto dt : {at::kBFloat16, at::kFloat}) {
      const at::Tensor g = values(3, n, 10 + n, true).to(dt), u = values(3, n, 20 + n, true).to(dt);
      set_cpu_isa(CpuIsa::Portable);
      const at::Tensor want = silu_mul_cpu(g, u);
      for (CpuIsa isa : runnable_cpu_isas()) {
        set_cpu_isa(isa);
        EXPECT_TRUE(same_bits(silu_mul_cpu(g, u), want)) << to_string(isa) << " n " << n << " " << dt;
      }
    }
}

TEST_F(PointwiseCpu, SiluMulIsCloseToTheRoundedExactValue) {
  // bf16: silu in fp32 (relative error ~1e-6) rounded to bf16, times up, rounded again: each
  // rounding at most half a bf16 ulp (2^-8 relative), an fp32 error can move the first rounding by
  // one ulp: |got - exact| <= (2^-7 + 2^-8 + 2^-14) |exact| + tiny.
  const at::Tensor g = values(4, 4096, 1, false), u = values(4, 4096, 2, false);
  for (CpuIsa isa : runnable_cpu_isas()) {
    set_cpu_isa(isa);
    const at::Tensor gd = g.to(at::kBFloat16).to(at::kDouble), ud = u.to(at::kBFloat16).to(at::kDouble);
    const at::Tensor exact = gd / (1 + at::exp(-gd)) * ud;
    const at::Tensor got = silu_mul_cpu(g.to(at::kBFloat16), u.to(at::kBFloat16)).to(at::kDouble);
    const double rel = std::ldexp(1.0, -7) + std::ldexp(1.0, -8) + std::ldexp(1.0, -14);
    EXPECT_TRUE(((got - exact).abs() <= exact.abs() * rel + 1e-30).all().item<bool>()) << to_string(isa);
    const at::Tensor exact32 = g.to(at::kDouble) / (1 + at::exp(-g.to(at::kDouble))) * u.to(at::kDouble);
    const at::Tensor got32 = silu_mul_cpu(g, u).to(at::kDouble);
    EXPECT_TRUE(((got32 - exact32).abs() <= exact32.abs() * 1e-5 + 1e-30).all().item<bool>()) << to_string(isa);
  }
}

TEST_F(PointwiseCpu, RmsNormEveryPathEqualsPortableAndRowsAreIndependent) {
  for (int64_t n : {1, 31, 64, 2048, 3000})
    for (auto dt : {at::kBFloat16, at::kFloat}) {
      const at::Tensor x = values(9, n, 30 + n, false).to(dt), w = values(1, n, 40 + n, false)[0].to(dt);
      set_cpu_isa(CpuIsa::Portable);
      const at::Tensor want = rms_norm_cpu(x, w, 1e-5);
      for (CpuIsa isa : runnable_cpu_isas()) {
        set_cpu_isa(isa);
        EXPECT_TRUE(same_bits(rms_norm_cpu(x, w, 1e-5), want)) << to_string(isa) << " n " << n << " " << dt;
        for (int64_t r : {0, 4, 8}) EXPECT_TRUE(same_bits(rms_norm_cpu(x.narrow(0, r, 1), w, 1e-5), want.narrow(0, r, 1)));
        at::set_num_threads(1);
        EXPECT_TRUE(same_bits(rms_norm_cpu(x, w, 1e-5), want));
        at::set_num_threads(threads_);
      }
    }
}

TEST_F(PointwiseCpu, RmsNormIsCloseToTheRoundedExactValue) {
  // Two bf16 roundings (the normalised value, then times the weight), the fp32 statistics'
  // error (~1e-6) can move the first by one ulp: (2^-7 + 2^-8 + 2^-14) relative.
  const at::Tensor x = values(5, 2048, 3, false).to(at::kBFloat16), w = values(1, 2048, 4, false)[0].to(at::kBFloat16);
  const at::Tensor xd = x.to(at::kDouble), wd = w.to(at::kDouble);
  const at::Tensor exact = wd * xd * at::rsqrt(xd.pow(2).mean(-1, true) + 1e-5);
  const double rel = std::ldexp(1.0, -7) + std::ldexp(1.0, -8) + std::ldexp(1.0, -14);
  for (CpuIsa isa : runnable_cpu_isas()) {
    set_cpu_isa(isa);
    const at::Tensor got = rms_norm_cpu(x, w, 1e-5).to(at::kDouble);
    EXPECT_TRUE(((got - exact).abs() <= exact.abs() * rel + 1e-30).all().item<bool>()) << to_string(isa);
  }
}

TEST(RopeCpu, SinCosAgreeWithLibmToTheLastBitsAndTablesWithTheFp32Angles) {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> dist(-1e5, 1e5);
  for (int i = 0; i < 100000; ++i) {
    const double x = i < 1000 ? i * 0.785398 : dist(rng);
    double s, c;
    rope_sincos(x, s, c);
    ASSERT_NEAR(s, std::sin(x), 4e-16) << x;
    ASSERT_NEAR(c, std::cos(x), 4e-16) << x;
  }
  const at::Tensor pos = at::arange(0, 4000, at::kLong).view({2, 2000});
  at::Tensor inv = at::empty({64}, at::kFloat);
  for (int64_t i = 0; i < 64; ++i) inv[i] = static_cast<float>(1.0 / std::pow(500000.0, 2.0 * i / 128.0));
  const auto [cos, sin] = rope_tables_cpu(pos, inv, at::kFloat);
  ASSERT_EQ(cos.sizes(), (std::vector<int64_t>{2, 1, 2000, 128}));
  const at::Tensor angle = pos.to(at::kFloat).unsqueeze(-1) * inv;  // fp32, as transformers forms it
  const at::Tensor emb = at::cat({angle, angle}, -1).unsqueeze(1).to(at::kDouble);
  EXPECT_LE((cos.to(at::kDouble) - emb.cos()).abs().max().item<double>(), 6e-8);
  EXPECT_LE((sin.to(at::kDouble) - emb.sin()).abs().max().item<double>(), 6e-8);
}

}  // namespace
}  // namespace flexgen
