// span_copies_are_exact: which spans of a sequence may take an earlier span's K/V.
#include <gtest/gtest.h>

#include "flexgen/layout.h"
#include "flexgen/mask.h"
#include "flexgen/span_copy.h"

using namespace flexgen;

namespace {

// [BOS][instruction q0][sep][instruction q1][sep][instruction q2][generated]: the reference flex
// layout, every paraphrase prompt starting with the same 5-token instruction.
struct Flex {
  ConcatResult c;
  AttentionMask mask;
  std::vector<int64_t> restart, sequential;
};

Flex flex() {
  ConcatInput in;
  in.bos = 1;
  in.paraphrases = {{50, 51, 52, 53, 54, 10, 11, 12}, {50, 51, 52, 53, 54, 20, 21}, {50, 51, 52, 53, 54, 30, 31, 32, 33}};
  in.separator = {7, 8};
  Flex f{concatenate(in), {}, {}, {}};
  f.c.layout.add_generated(4);
  f.mask = make_attention_mask(f.c.layout, default_mask_spec(f.c.layout));
  f.restart = f.c.layout.position_ids(PositionMode::Restart);
  f.sequential = f.c.layout.position_ids(PositionMode::Sequential);
  return f;
}

std::vector<SpanCopy> instruction_copies(const Flex& f, int64_t length) {
  const int64_t src = f.c.layout.paraphrase_span(0).start;
  return {SpanCopy{src, f.c.layout.paraphrase_span(1).start, length},
          SpanCopy{src, f.c.layout.paraphrase_span(2).start, length}};
}

}  // namespace

TEST(SpanCopy, RestartInstructionsAreCopiesOfTheFirst) {
  const Flex f = flex();
  EXPECT_TRUE(span_copies_are_exact(f.c.tokens, f.restart, f.mask, instruction_copies(f, 5)));
  EXPECT_TRUE(span_copies_are_exact(f.c.tokens, f.restart, f.mask, instruction_copies(f, 3)));
  EXPECT_TRUE(span_copies_are_exact(f.c.tokens, f.restart, f.mask, {}));
}

TEST(SpanCopy, OtherPositionsTokensOrVisibilityAreNot) {
  const Flex f = flex();
  // Sequential position ids: the second instruction sits at other positions.
  EXPECT_FALSE(span_copies_are_exact(f.c.tokens, f.sequential, f.mask, instruction_copies(f, 5)));
  // One token past the instruction: the questions differ.
  EXPECT_FALSE(span_copies_are_exact(f.c.tokens, f.restart, f.mask, instruction_copies(f, 6)));
  std::vector<int32_t> tokens = f.c.tokens;
  tokens[static_cast<size_t>(f.c.layout.paraphrase_span(2).start + 2)] = 99;
  EXPECT_FALSE(span_copies_are_exact(tokens, f.restart, f.mask, instruction_copies(f, 5)));
  // Paraphrase 3 may see paraphrase 2: its instruction sees more than the first one does.
  AttentionMask seeing = f.mask;
  const int32_t g1 = seeing.group_ids[static_cast<size_t>(f.c.layout.paraphrase_span(1).start)];
  const int32_t g2 = seeing.group_ids[static_cast<size_t>(f.c.layout.paraphrase_span(2).start)];
  seeing.spec.set(g2, g1, true);
  EXPECT_FALSE(span_copies_are_exact(f.c.tokens, f.restart, seeing, instruction_copies(f, 5)));
  EXPECT_TRUE(span_copies_are_exact(f.c.tokens, f.restart, seeing, {instruction_copies(f, 5)[0]}));
}

TEST(SpanCopy, BadSpansAreNot) {
  const Flex f = flex();
  const int64_t p0 = f.c.layout.paraphrase_span(0).start, p1 = f.c.layout.paraphrase_span(1).start;
  const int64_t n = static_cast<int64_t>(f.c.tokens.size());
  EXPECT_FALSE(span_copies_are_exact(f.c.tokens, f.restart, f.mask, {SpanCopy{p1, p0, 5}}));  // source after the copy
  EXPECT_FALSE(span_copies_are_exact(f.c.tokens, f.restart, f.mask, {SpanCopy{p0, p1, 0}}));  // empty
  EXPECT_FALSE(span_copies_are_exact(f.c.tokens, f.restart, f.mask, {SpanCopy{p0, p0 + 2, 3}}));  // overlaps its source
  EXPECT_FALSE(span_copies_are_exact(f.c.tokens, f.restart, f.mask, {SpanCopy{p0, p1, 5}, SpanCopy{p0, p1 + 2, 3}}));
  EXPECT_FALSE(span_copies_are_exact(f.c.tokens, f.restart, f.mask, {SpanCopy{p0, p1, 5}, SpanCopy{p1, p1 + 7, 2}}));
  // The last prompt token is always computed: a sequence ending in a copy is refused.
  std::vector<int32_t> tokens(f.c.tokens.begin(), f.c.tokens.begin() + p1 + 5);
  EXPECT_FALSE(span_copies_are_exact(tokens, f.restart, f.mask, {SpanCopy{p0, p1, 5}}));
  EXPECT_TRUE(span_copies_are_exact(tokens, f.restart, f.mask, {SpanCopy{p0, p1, 4}}));
  EXPECT_FALSE(span_copies_are_exact(f.c.tokens, f.restart, f.mask, {SpanCopy{-1, p1, 5}}));
  EXPECT_FALSE(span_copies_are_exact(f.c.tokens, f.restart, f.mask, {SpanCopy{p0, n, 1}}));
}
