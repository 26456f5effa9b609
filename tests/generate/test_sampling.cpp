#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <limits>
#include <map>

#include "flexgen/sampler.h"
#include "flexgen/stop_criteria.h"
#include "stream_combine.h"

using namespace flexgen;

TEST(Sampler, GreedyIsArgmaxWithLowestIdOnTies) {
  const std::vector<float> l = {0.5f, 2.0f, -1.0f, 2.0f};
  Sampler s(SamplingOptions{});
  EXPECT_EQ(s.sample(l.data(), 4), 1);
  EXPECT_EQ(argmax(l.data(), 4), 1);
}

TEST(Sampler, TopKOneIsGreedyAndTopPKeepsTheNucleus) {
  const std::vector<float> l = {0.0f, 3.0f, 2.9f, -5.0f};
  SamplingOptions o;
  o.temperature = 1.0;
  o.top_k = 1;
  o.seed = 3;
  Sampler k1(o);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(k1.sample(l.data(), 4), 1);
  o.top_k = 0;
  o.top_p = 0.5;  // token 1 alone has ~0.5 of the mass; tokens 1 and 2 together reach it
  Sampler p(o);
  std::map<int32_t, int> seen;
  for (int i = 0; i < 400; ++i) ++seen[p.sample(l.data(), 4)];
  for (const auto& [id, n] : seen) EXPECT_TRUE(id == 1 || id == 2) << id;
}

TEST(Sampler, FrequenciesFollowTheSoftmax) {
  const std::vector<float> l = {std::log(0.2f), std::log(0.3f), std::log(0.5f)};
  SamplingOptions o;
  o.temperature = 1.0;
  o.seed = 42;
  Sampler s(o);
  std::vector<int> counts(3, 0);
  const int n = 20000;
  for (int i = 0; i < n; ++i) ++counts[s.sample(l.data(), 3)];
  EXPECT_NEAR(counts[0] / double(n), 0.2, 0.015);
  EXPECT_NEAR(counts[1] / double(n), 0.3, 0.015);
  EXPECT_NEAR(counts[2] / double(n), 0.5, 0.015);
}

TEST(Sampler, SameSeedSameSequence) {
  std::vector<float> l(1000);
  for (size_t i = 0; i < l.size(); ++i) l[i] = static_cast<float>(std::sin(i * 0.37) * 3);
  SamplingOptions o;
  o.temperature = 0.8;
  o.top_k = 50;
  o.seed = 9;
  Sampler a(o), b(o);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.sample(l.data(), 1000), b.sample(l.data(), 1000));
}

TEST(Sampler, RejectsBadOptionsAndLogits) {
  SamplingOptions o;
  o.top_p = 0;
  EXPECT_THROW(Sampler{o}, std::invalid_argument);
  o = SamplingOptions{};
  o.temperature = -1;
  EXPECT_THROW(Sampler{o}, std::invalid_argument);
  Sampler s(SamplingOptions{});
  const std::vector<float> bad = {1.0f, std::nanf("")};
  EXPECT_THROW(s.sample(bad.data(), 2), std::runtime_error);
}

TEST(StopCriteria, ParsesAndMatchesOnDecodedText) {
  StopCriteria d = parse_stop_criteria("eos,newline");
  d.eos_ids = {7, 9};
  EXPECT_EQ(d.check(9, "Paris"), StopCriteria::Reason::Eos);
  EXPECT_EQ(d.check(5, "Paris"), StopCriteria::Reason::None);
  EXPECT_EQ(d.check(5, "Paris\n\n"), StopCriteria::Reason::Newline);  // a "\n\n" token counts
  EXPECT_EQ(d.check(5, "Paris.\n"), StopCriteria::Reason::Newline);   // a token ending in a newline counts
  EXPECT_TRUE(d.can_stop());
  const StopCriteria lit = parse_stop_criteria("Q:,\\n\\n");
  EXPECT_FALSE(lit.eos);
  EXPECT_FALSE(lit.newline);
  ASSERT_EQ(lit.strings.size(), 2u);
  EXPECT_EQ(lit.strings[1], "\n\n");
  EXPECT_EQ(lit.check(1, "yen\nQ:"), StopCriteria::Reason::String);
  EXPECT_EQ(lit.check(1, "yen\n"), StopCriteria::Reason::None);
  const StopCriteria none = parse_stop_criteria("none");
  EXPECT_EQ(none.check(7, "a\nb"), StopCriteria::Reason::None);
  EXPECT_FALSE(none.can_stop());
  EXPECT_TRUE(lit.can_stop());
  StopCriteria eos_only = parse_stop_criteria("eos");
  EXPECT_FALSE(eos_only.can_stop());  // no EOS id known: nothing can match
  eos_only.eos_ids = {2};
  EXPECT_TRUE(eos_only.can_stop());
  EXPECT_THROW(parse_stop_criteria("none,eos"), std::invalid_argument);
  EXPECT_THROW(parse_stop_criteria(""), std::invalid_argument);
  EXPECT_THROW(parse_stop_criteria("eos,,newline"), std::invalid_argument);
}

// The greedy pick of Mean streams (device logits on CUDA; the same code on CPU tensors) is
// bitwise combine() + the greedy sampler on the host: for random logits with planted ties (the
// lowest id wins, also in a weighted mean), for streams of one row in
// and out of row order, streams of several rows with uniform and uneven weights, and calls that
// mix streams of different row counts. On the CPU and, where present, on a CUDA device.
TEST(WeightedArgmax, IsTheHostCombineAndGreedyPickBitwise) {
  at::manual_seed(11);
  const int64_t R = 9, V = 1000;
  at::Tensor logits = at::randn({R, V});
  logits.index_put_({3, 7}, 50.f);
  logits.index_put_({3, 9}, 50.f);  // a tie: id 7 wins
  // Rows 5 and 8: ids 20 and 21 tie in their mean (the lowest wins), reached in a different order.
  logits.index_put_({5, 20}, 40.f), logits.index_put_({8, 20}, 40.f + 1e-5f);
  logits.index_put_({5, 21}, 40.f + 1e-5f), logits.index_put_({8, 21}, 40.f);
  struct Case {
    std::vector<std::vector<int64_t>> rows;
    std::vector<std::vector<double>> w;  // empty: uniform
  };
  const std::vector<Case> cases = {
      {{{0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}, {8}}, {}},  // every row, in order
      {{{4}, {3}, {8}}, {}},                                // some rows, out of order
      {{{0, 1, 2}, {3}, {5, 8}}, {}},                       // streams of 3, 1 and 2 rows
      {{{5, 8}, {0, 1, 2, 3, 4}}, {}},
      {{{6, 2, 7}, {8, 5}}, {{0.5, 0.3, 0.2}, {0.9, 0.1}}},  // uneven weights
  };
  std::vector<at::Device> devices{at::kCPU};
  if (at::hasCUDA()) devices.emplace_back(at::kCUDA);
  for (const at::Device& dev : devices) {
    const at::Tensor on = logits.to(dev);
    for (const Case& c : cases) {
      std::vector<std::vector<double>> w = c.w;
      std::vector<std::pair<int32_t, float>> want;
      for (size_t i = 0; i < c.rows.size(); ++i) {
        StreamPlan st;
        for (int64_t r : c.rows[i]) st.rows.push_back(static_cast<int32_t>(r));
        if (!c.w.empty()) st.weights = c.w[i];
        if (c.w.empty()) w.push_back(stream_weights(st));
        std::vector<float> dist = combine(st, logits);
        const int32_t id = argmax(dist.data(), V);
        want.emplace_back(id, dist[static_cast<size_t>(id)]);
      }
      const auto got = weighted_argmax(c.rows, w, on);
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].first, want[i].first) << dev << " stream " << i;
        EXPECT_EQ(got[i].second, want[i].second) << dev << " stream " << i;
      }
    }
    EXPECT_EQ(weighted_argmax({{3}}, {{1.0}}, on)[0].first, 7) << dev;
  }
}
