// max_prob_argmax (flexgen/max_prob_pick.h) on a CUDA device: the ids of the host's MaxProb rule
// (log of the max over a stream's rows of w x softmax(row), fp64) with values within fp32 rounding
// of it; each stream's result bitwise the same alone as among other rows and streams; the lowest
// id on ties, also across the kernel's chunks of ids; NaN for streams with a non-finite logit.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "flexgen/max_prob_pick.h"

using namespace flexgen;

namespace {

bool have_cuda() { return at::hasCUDA(); }

// The host rule (generate's combine() for MaxProb streams, then the greedy pick).
std::pair<int32_t, float> reference(const at::Tensor& logits, const std::vector<int64_t>& rows,
                                    const std::vector<double>& w) {
  const int64_t V = logits.size(1);
  std::vector<double> best(static_cast<size_t>(V), 0.0);
  for (size_t i = 0; i < rows.size(); ++i) {
    const float* src = logits[rows[i]].data_ptr<float>();
    const float mx = *std::max_element(src, src + V);
    double z = 0;
    for (int64_t v = 0; v < V; ++v) z += std::exp(static_cast<double>(src[v]) - mx);
    for (int64_t v = 0; v < V; ++v) best[v] = std::max(best[v], w[i] * std::exp(static_cast<double>(src[v]) - mx) / z);
  }
  int32_t id = 0;
  float val = -std::numeric_limits<float>::infinity();
  for (int64_t v = 0; v < V; ++v) {
    const float o = best[v] > 0 ? static_cast<float>(std::log(best[v])) : -std::numeric_limits<float>::infinity();
    if (o > val || v == 0) val = o, id = static_cast<int32_t>(v);
  }
  return {id, val};
}

uint32_t bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

}  // namespace

TEST(MaxProbPickCuda, MatchesTheHostRuleAndIsTheSameAloneAsInABatch) {
  if (!have_cuda()) GTEST_SKIP() << "no CUDA device";
  at::manual_seed(3);
  const int64_t R = 12, V = 50000;  // V: six chunks of ids, the last one short
  const at::Tensor logits = at::randn({R, V}) * 3.f;
  const at::Tensor dev = logits.to(at::kCUDA);
  std::mt19937 rng(5);
  std::vector<std::vector<int64_t>> rows;
  std::vector<std::vector<double>> w;
  for (int s = 0; s < 9; ++s) {
    const int n = 1 + s % 5;
    rows.emplace_back();
    w.emplace_back();
    double total = 0;
    for (int i = 0; i < n; ++i) {
      rows.back().push_back(static_cast<int64_t>(rng() % R));
      w.back().push_back(0.1 + (rng() % 100) / 100.0);
      total += w.back().back();
    }
    for (double& x : w.back()) x /= total;
  }
  const auto got = max_prob_argmax(dev, rows, w);
  ASSERT_EQ(got.size(), rows.size());
  for (size_t s = 0; s < rows.size(); ++s) {
    const auto want = reference(logits, rows[s], w[s]);
    EXPECT_EQ(got[s].first, want.first) << "stream " << s;
    // fp64 sums in another order and another exp: at most the rounding of the fp32 result apart.
    const float ulp = std::nextafter(std::fabs(want.second), std::numeric_limits<float>::infinity()) - std::fabs(want.second);
    EXPECT_LE(std::fabs(got[s].second - want.second), ulp) << "stream " << s;
    // Alone: the stream's rows copied to the front of other random logits, called by itself.
    at::Tensor other = at::randn({R + 3, V}) * 3.f;
    std::vector<int64_t> moved;
    for (size_t i = 0; i < rows[s].size(); ++i) {
      other[static_cast<int64_t>(i) + 2].copy_(logits[rows[s][i]]);
      moved.push_back(static_cast<int64_t>(i) + 2);
    }
    const auto alone = max_prob_argmax(other.to(at::kCUDA), {moved}, {w[s]});
    EXPECT_EQ(alone[0].first, got[s].first) << "stream " << s;
    EXPECT_EQ(bits(alone[0].second), bits(got[s].second)) << "stream " << s;
  }
}

TEST(MaxProbPickCuda, TiesTakeTheLowestIdAndNonFiniteLogitsGiveNaN) {
  if (!have_cuda()) GTEST_SKIP() << "no CUDA device";
  const int64_t V = 20000;
  at::Tensor logits = at::zeros({3, V});
  logits.index_put_({0, 9000}, 7.f);  // chunk 1
  logits.index_put_({0, 17000}, 7.f);  // chunk 2: the same value, a higher id
  logits.index_put_({1, 300}, 5.f);
  logits.index_put_({1, 299}, 5.f);  // the same chunk, the lower id
  logits.index_put_({2, 5}, std::numeric_limits<float>::quiet_NaN());
  const auto got = max_prob_argmax(logits.to(at::kCUDA), {{0}, {1}, {1, 0}, {2}, {1, 2}},
                                   {{1.0}, {1.0}, {0.5, 0.5}, {1.0}, {0.5, 0.5}});
  EXPECT_EQ(got[0].first, 9000);
  EXPECT_EQ(got[1].first, 299);
  EXPECT_EQ(got[2].first, reference(logits, {1, 0}, {0.5, 0.5}).first);
  EXPECT_TRUE(std::isnan(got[3].second));
  EXPECT_TRUE(std::isnan(got[4].second));
  EXPECT_FALSE(std::isnan(got[2].second));
}

TEST(MaxProbPickCuda, RefusesLogitsOffTheDeviceOrOfAnotherDtype) {
  const at::Tensor cpu = at::zeros({2, 10});
  EXPECT_THROW(max_prob_argmax(cpu, {{0}}, {{1.0}}), std::invalid_argument);
  if (!have_cuda()) return;
  EXPECT_THROW(max_prob_argmax(cpu.to(at::kCUDA).to(at::kHalf), {{0}}, {{1.0}}), std::invalid_argument);
  EXPECT_THROW(max_prob_argmax(cpu.to(at::kCUDA), {{2}}, {{1.0}}), std::invalid_argument);
}
