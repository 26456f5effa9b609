// The isolation check walks the block mask: it passes on the default mask and names
// the first offending pair when a spec lets one paraphrase see another.
#include <gtest/gtest.h>

#include "flexgen/isolation_check.h"

using namespace flexgen;

TEST(IsolationCheck, DefaultMaskIsIsolated) {
  for (int64_t bs : {1, 4, 16, 128}) {
    const SequenceLayout l = layout_from_lengths({9, 7, 12}, true, 5, 2, 3);
    const AttentionMask m = make_attention_mask(l, default_mask_spec(l));
    const IsolationCheck c = check_isolation(l, m, build_block_mask(l, m.spec, bs));
    EXPECT_TRUE(c.isolated) << bs;
    EXPECT_EQ(c.segments, 3);
  }
}

TEST(IsolationCheck, ReportsTheFirstLeak) {
  // BOS(1) ctx(5) p1 [6,15) sep [15,17) p2 [17,24) sep [24,26) p3 [26,38) gen
  const SequenceLayout l = layout_from_lengths({9, 7, 12}, true, 5, 2, 3);
  MaskSpec spec = default_mask_spec(l);
  int32_t p1 = -1, p3 = -1;
  for (size_t g = 0; g < l.groups.size(); ++g) {
    if (l.groups[g].kind != GroupKind::Paraphrase) continue;
    if (l.groups[g].index == 0) p1 = static_cast<int32_t>(g);
    if (l.groups[g].index == 2) p3 = static_cast<int32_t>(g);
  }
  spec.set(p3, p1, true);
  const AttentionMask m = make_attention_mask(l, spec);
  for (int64_t bs : {1, 8, 64}) {
    const IsolationCheck c = check_isolation(l, m, build_block_mask(l, spec, bs));
    ASSERT_FALSE(c.isolated) << bs;
    EXPECT_EQ(c.query, 26);
    EXPECT_EQ(c.key, 6);
    EXPECT_EQ(c.query_segment, 2);
    EXPECT_EQ(c.key_segment, 0);
  }
}

TEST(IsolationCheck, TrustsTheBlockMaskItWalks) {
  // One 64-wide block that a faulty builder marked full: the kernel would skip the
  // per-element check there, so the check must report the leak the mask alone does not have.
  const SequenceLayout l = layout_from_lengths({9, 7, 12}, true, 5, 2, 3);
  const AttentionMask m = make_attention_mask(l, default_mask_spec(l));
  BlockMask b = build_block_mask(l, m.spec, 64);
  ASSERT_EQ(b.num_q_blocks, 1);
  ASSERT_EQ(b.classify(0, 0), BlockClass::Partial);
  EXPECT_TRUE(check_isolation(l, m, b).isolated);
  b.full_offsets = {0, 1};
  b.full_indices = {0};
  b.partial_offsets = {0, 0};
  b.partial_indices.clear();
  const IsolationCheck c = check_isolation(l, m, b);
  ASSERT_FALSE(c.isolated);
  EXPECT_EQ(c.query, 6);  // the first position of paraphrase 1 ...
  EXPECT_EQ(c.key, 17);   // ... "sees" paraphrase 2 through the full block
}
