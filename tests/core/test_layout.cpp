#include <gtest/gtest.h>

#include <random>

#include "flexgen/layout.h"

using namespace flexgen;

TEST(Layout, ConcatenateBuildsExactSpansFromIds) {
  ConcatInput in;
  in.bos = 128000;
  in.shared_context = {1, 2, 3};
  in.paraphrases = {{10, 11}, {20, 21, 22}, {30}};
  in.separator = {7, 8};
  const ConcatResult r = concatenate(in);
  const std::vector<int32_t> expected = {128000, 1, 2, 3, 10, 11, 7, 8, 20, 21, 22, 7, 8, 30};
  EXPECT_EQ(r.tokens, expected);
  const SequenceLayout& l = r.layout;
  l.validate();
  EXPECT_EQ(l.length(), 14);
  EXPECT_EQ(l.generation_start, 14);
  EXPECT_EQ(l.context_end, 4);
  EXPECT_EQ(l.num_paraphrases(), 3);
  EXPECT_EQ(l.paraphrase_span(0).start, 4);
  EXPECT_EQ(l.paraphrase_span(0).end, 6);
  EXPECT_EQ(l.paraphrase_span(1).start, 8);
  EXPECT_EQ(l.paraphrase_span(1).end, 11);
  EXPECT_EQ(l.paraphrase_span(2).start, 13);
  EXPECT_EQ(l.paraphrase_span(2).end, 14);
  EXPECT_THROW(l.paraphrase_span(3), std::out_of_range);
  // Every token's group matches its span.
  const auto groups = l.group_ids();
  ASSERT_EQ(groups.size(), r.tokens.size());
  EXPECT_EQ(l.groups[groups[0]].kind, GroupKind::Bos);
  EXPECT_EQ(l.groups[groups[2]].kind, GroupKind::Context);
  EXPECT_EQ(l.groups[groups[6]].kind, GroupKind::Separator);
  EXPECT_EQ(l.groups[groups[6]].index, 0);
  EXPECT_EQ(l.groups[groups[11]].index, 1);
}

TEST(Layout, EmptyParaphraseIsRejected) {
  ConcatInput in;
  in.paraphrases = {{1}, {}};
  EXPECT_THROW(concatenate(in), std::invalid_argument);
  in.paraphrases.clear();
  EXPECT_THROW(concatenate(in), std::invalid_argument);
}

TEST(Layout, SequentialPositionsAreIota) {
  SequenceLayout l = layout_from_lengths({3, 4}, true, 2, 1, 0);
  l.add_generated(3);
  const auto pos = l.position_ids(PositionMode::Sequential);
  ASSERT_EQ(pos.size(), 14u);
  for (size_t i = 0; i < pos.size(); ++i) EXPECT_EQ(pos[i], static_cast<int64_t>(i));
}

TEST(Layout, RestartPositionsMatchEncodingEachParaphraseAlone) {
  // [BOS][ctx x2][p0 x3][sep x2][p1 x5][sep x2][p2 x4][gen x3]
  SequenceLayout l = layout_from_lengths({3, 5, 4}, true, 2, 2, 0);
  l.add_generated(3);
  const auto pos = l.position_ids(PositionMode::Restart);
  const std::vector<int64_t> expected = {0, 1, 2,           // BOS, context
                                         3, 4, 5,           // p0
                                         3, 4,              // sep
                                         3, 4, 5, 6, 7,     // p1
                                         3, 4,              // sep
                                         3, 4, 5, 6,        // p2
                                         8, 9, 10};         // generated: S + longest (3 + 5)
  EXPECT_EQ(pos, expected);
}

TEST(Layout, RandomLayoutsAreContiguousAndValid) {
  std::mt19937 rng(1);
  for (int trial = 0; trial < 200; ++trial) {
    const int n = 1 + static_cast<int>(rng() % 8);
    std::vector<int64_t> lengths;
    for (int i = 0; i < n; ++i) lengths.push_back(1 + rng() % 40);
    SequenceLayout l = layout_from_lengths(lengths, rng() % 2, rng() % 5, rng() % 4, rng() % 6);
    EXPECT_NO_THROW(l.validate());
    int64_t sum = 0;
    for (const Span& s : l.spans) sum += s.length();
    EXPECT_EQ(sum, l.length());
    EXPECT_EQ(l.num_paraphrases(), n);
    const auto restart = l.position_ids(PositionMode::Restart);
    for (int i = 0; i < n; ++i) {
      const Span& s = l.paraphrase_span(i);
      EXPECT_EQ(restart[s.start], l.context_end);
    }
  }
}

TEST(Layout, FromLengthsRejectsBadLengths) {
  EXPECT_THROW(layout_from_lengths({}, false, 0, 0, 0), std::invalid_argument);
  EXPECT_THROW(layout_from_lengths({3, 0}, false, 0, 0, 0), std::invalid_argument);
  EXPECT_THROW(layout_from_lengths({3, -1}, false, 0, 0, 0), std::invalid_argument);
  EXPECT_THROW(layout_from_lengths({3}, false, -1, 0, 0), std::invalid_argument);
  EXPECT_THROW(parse_position_mode("sideways"), std::invalid_argument);
  EXPECT_EQ(parse_position_mode("restart"), PositionMode::Restart);
}
