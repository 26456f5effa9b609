#include <gtest/gtest.h>

#include <random>

#include "flexgen/block_mask.h"
#include "../random_masks.h"

using namespace flexgen;

namespace {

// Checks that two block masks are identical, list by list.
void expect_same(const BlockMask& a, const BlockMask& b) {
  EXPECT_EQ(a.num_q_blocks, b.num_q_blocks);
  EXPECT_EQ(a.num_kv_blocks, b.num_kv_blocks);
  EXPECT_EQ(a.full_offsets, b.full_offsets);
  EXPECT_EQ(a.full_indices, b.full_indices);
  EXPECT_EQ(a.partial_offsets, b.partial_offsets);
  EXPECT_EQ(a.partial_indices, b.partial_indices);
  EXPECT_EQ(a.allowed_pairs, b.allowed_pairs);
}

// Every (q, k) pair agrees with the class of its block.
void expect_consistent(const BlockMask& bm, const AttentionMask& m) {
  const int64_t B = bm.block_size;
  int64_t allowed = 0;
  for (int64_t qb = 0; qb < bm.num_q_blocks; ++qb) {
    for (int64_t kb = 0; kb < bm.num_kv_blocks; ++kb) {
      const BlockClass c = bm.classify(qb, kb);
      int64_t yes = 0, all = 0;
      for (int64_t q = qb * B; q < std::min(bm.q_len, (qb + 1) * B); ++q)
        for (int64_t k = kb * B; k < std::min(bm.kv_len, (kb + 1) * B); ++k, ++all) yes += m.allowed(q, k);
      allowed += yes;
      if (c == BlockClass::Full) {
        ASSERT_EQ(yes, all) << qb << "," << kb;
      } else if (c == BlockClass::Empty) {
        ASSERT_EQ(yes, 0) << qb << "," << kb;
      } else {
        ASSERT_TRUE(yes > 0 && yes < all) << qb << "," << kb;
      }
    }
  }
  EXPECT_EQ(allowed, bm.allowed_pairs);
}

// Random visibility keeps the diagonal here, so no row is all empty.
using flexgen::testing::random_spec;

SequenceLayout random_layout(std::mt19937& rng) { return flexgen::testing::random_layout(rng, {7, 3, 60, 30, 20}); }

}  // namespace

TEST(BlockMask, AnalyticEqualsGenericOnRandomLayouts) {
  std::mt19937 rng(42);
  for (int trial = 0; trial < 300; ++trial) {
    const SequenceLayout l = random_layout(rng);
    const MaskSpec spec = trial % 2 ? random_spec(l, rng) : default_mask_spec(l);
    const int64_t block = 1 + rng() % 70;
    const AttentionMask m = make_attention_mask(l, spec);
    const BlockMask analytic = build_block_mask(l, spec, block);
    const BlockMask generic =
        build_block_mask_generic(l.length(), l.length(), block, [&](int64_t q, int64_t k) { return m.allowed(q, k); });
    SCOPED_TRACE("trial " + std::to_string(trial) + " L=" + std::to_string(l.length()) + " B=" +
                 std::to_string(block));
    expect_same(analytic, generic);
    expect_consistent(analytic, m);
    expect_same(build_block_mask(m, block), generic);  // from the per-position mask
  }
}

TEST(BlockMask, SeedExampleStructure) {
  // 5 segments of 128 tokens with block size 128: each segment is one diagonal block.
  const SequenceLayout l = layout_from_lengths({128, 128, 128, 128, 128}, false, 0, 0, 128);
  const BlockMask bm = build_block_mask(l, default_mask_spec(l), 128);
  ASSERT_EQ(bm.num_q_blocks, 6);
  for (int64_t qb = 0; qb < 5; ++qb) {
    for (int64_t kb = 0; kb < 6; ++kb)
      EXPECT_EQ(bm.classify(qb, kb), kb == qb ? BlockClass::Partial : BlockClass::Empty) << qb << "," << kb;
  }
  for (int64_t kb = 0; kb < 5; ++kb) EXPECT_EQ(bm.classify(5, kb), BlockClass::Full);
  EXPECT_EQ(bm.classify(5, 5), BlockClass::Partial);
  const BlockMaskStats s = block_mask_stats(bm);
  EXPECT_EQ(s.full, 5);
  EXPECT_EQ(s.partial, 6);
  EXPECT_EQ(s.empty, 36 - 11);
  EXPECT_EQ(s.allowed_pairs, 5 * (128 * 129 / 2) + 5 * 128 * 128 + 128 * 129 / 2);
  EXPECT_EQ(s.causal_pairs, 768 * 769 / 2);
}

TEST(BlockMask, LengthNotMultipleOfBlockAndTinyBlocks) {
  const SequenceLayout l = layout_from_lengths({5, 1, 7}, true, 0, 2, 3);
  const AttentionMask m = make_attention_mask(l, default_mask_spec(l));
  for (int64_t block : {1, 2, 3, 7, 100}) {
    const BlockMask bm = build_block_mask(l, m.spec, block);
    expect_consistent(bm, m);
  }
}

TEST(BlockMask, FromPerPositionMaskWithRepeatedGroups) {
  // Runs of one group that are not contiguous (padding at the front, a group twice).
  std::mt19937 rng(5);
  for (int trial = 0; trial < 100; ++trial) {
    AttentionMask m;
    m.spec.num_groups = 1 + static_cast<int32_t>(rng() % 5);
    m.spec.visible.assign(static_cast<size_t>(m.spec.num_groups) * m.spec.num_groups, 0);
    for (auto& v : m.spec.visible) v = rng() % 2;
    m.spec.causal = rng() % 4 != 0;
    const int64_t len = 1 + rng() % 150;
    for (int64_t i = 0; i < len; ++i) m.group_ids.push_back(static_cast<int32_t>(rng() % m.spec.num_groups));
    const int64_t block = 1 + rng() % 40;
    expect_same(build_block_mask(m, block),
                build_block_mask_generic(len, len, block, [&](int64_t q, int64_t k) { return m.allowed(q, k); }));
  }
}

TEST(BlockMask, RejectsBadSizes) {
  const SequenceLayout l = layout_from_lengths({5}, false, 0, 0, 0);
  EXPECT_THROW(build_block_mask(l, default_mask_spec(l), 0), std::invalid_argument);
  EXPECT_THROW(build_block_mask(l, default_mask_spec(l), -4), std::invalid_argument);
  MaskSpec wrong;
  EXPECT_THROW(build_block_mask(l, wrong, 16), std::invalid_argument);
}
