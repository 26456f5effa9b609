#include <gtest/gtest.h>

#include "flexgen/mask.h"

using namespace flexgen;

namespace {

// The seed's rule for contiguous segments without BOS or separators.
bool seed_rule(const SequenceLayout& l, int64_t q, int64_t k) {
  auto segment = [&](int64_t p) {
    for (int32_t i = 0; i < l.num_paraphrases(); ++i) {
      const Span& s = l.paraphrase_span(i);
      if (p >= s.start && p < s.end) return i;
    }
    return -1;
  };
  const bool same = segment(q) >= 0 && segment(q) == segment(k);
  return q >= k && (q >= l.generation_start || same);
}

}  // namespace

TEST(Mask, DefaultReproducesTheSeedRule) {
  const SequenceLayout l = layout_from_lengths({48, 47, 48, 49, 46}, false, 0, 0, 10);
  const AttentionMask m = make_attention_mask(l, default_mask_spec(l));
  for (int64_t q = 0; q < l.length(); ++q)
    for (int64_t k = 0; k < l.length(); ++k) ASSERT_EQ(m.allowed(q, k), seed_rule(l, q, k)) << q << "," << k;
}

TEST(Mask, DefaultVisibilityOfEveryGroupKind) {
  // [B][C C][p0 p0][s s][p1 p1][gen gen]
  const SequenceLayout l = layout_from_lengths({2, 2}, true, 2, 2, 2);
  const AttentionMask m = make_attention_mask(l, default_mask_spec(l));
  const int64_t B = 0, C = 1, P0 = 3, S = 5, P1 = 7, G = 9;
  EXPECT_TRUE(m.allowed(C, B));
  EXPECT_TRUE(m.allowed(P0, B));
  EXPECT_TRUE(m.allowed(P0, C));
  EXPECT_TRUE(m.allowed(P1, B));
  EXPECT_TRUE(m.allowed(P1, C));
  EXPECT_FALSE(m.allowed(P1, P0));  // paraphrases isolated
  EXPECT_FALSE(m.allowed(P1, S));   // separators do not leak into paraphrases
  EXPECT_TRUE(m.allowed(S, B));
  EXPECT_TRUE(m.allowed(S + 1, S));
  EXPECT_FALSE(m.allowed(S, P0));   // separators see BOS and themselves only
  EXPECT_FALSE(m.allowed(S, C));
  for (int64_t k = 0; k <= G; ++k) EXPECT_TRUE(m.allowed(G, k));  // generated sees everything
  EXPECT_FALSE(m.allowed(G - 1, G));                               // causal
  // No row is fully masked.
  for (int64_t q = 0; q < l.length(); ++q) {
    bool any = false;
    for (int64_t k = 0; k <= q; ++k) any |= m.allowed(q, k);
    EXPECT_TRUE(any) << "row " << q;
  }
}

TEST(Mask, NonCausalSpecIgnoresOrder) {
  const SequenceLayout l = layout_from_lengths({3, 3}, false, 0, 0, 0);
  MaskSpec spec = default_mask_spec(l);
  spec.causal = false;
  const AttentionMask m = make_attention_mask(l, spec);
  EXPECT_TRUE(m.allowed(0, 2));
  EXPECT_FALSE(m.allowed(0, 3));
}
