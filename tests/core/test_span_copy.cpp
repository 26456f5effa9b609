// span_copies_are_exact: which spans of a sequence may take an earlier span's K/V.
#include <gtest/gtest.h>

#include <random>

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

// The check against its definition (every key position of every copied position compared, as
// the header states it), for random masks (runs of random groups, random visibility, causal or
// not) and random copies whose tokens and positions match: the same verdict every time, and both
// verdicts reached.
TEST(SpanCopy, AgreesWithTheDefinitionOnRandomMasks) {
  auto brute = [](const std::vector<int32_t>& tokens, const std::vector<int64_t>& pos, const AttentionMask& m,
                  const SpanCopy& c) {
    const int64_t n = static_cast<int64_t>(tokens.size());
    if (c.length < 1 || c.src < 0 || c.src + c.length > c.dst || c.dst + c.length > n - 1) return false;
    auto in = [](int64_t k, int64_t a, int64_t l) { return k >= a && k < a + l; };
    for (int64_t j = 0; j < c.length; ++j) {
      const int64_t s = c.src + j, d = c.dst + j;
      if (tokens[s] != tokens[d] || pos[s] != pos[d]) return false;
      for (int64_t k = 0; k < m.length(); ++k) {
        bool same;
        if (in(k, c.dst, c.length))
          same = m.allowed(d, k) == m.allowed(s, c.src + (k - c.dst)) && !m.allowed(s, k);
        else if (in(k, c.src, c.length))
          same = !m.allowed(d, k);
        else
          same = m.allowed(d, k) == m.allowed(s, k);
        if (!same) return false;
      }
    }
    return true;
  };
  std::mt19937 rng(7);
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  int yes = 0, no = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    // Groups 0 .. X - 1 before the source span and after the copy (random visibility among
    // them); the source span in group X, the copy in X + 1 (rows equal over 0 .. X - 1, each
    // sees itself, neither the other), positions between them in X + 2. Then, sometimes, one
    // entry of the two spans' rows flipped, non-causal masks, mixed groups or one token changed.
    const int X = uni(1, 4), G = X + 3, n = uni(12, 60);
    SpanCopy c;
    c.length = uni(1, 6);
    c.src = uni(0, n / 3);
    c.dst = c.src + c.length + uni(0, 8);
    if (c.dst + c.length > n - 1) continue;
    AttentionMask m;
    m.spec.num_groups = G;
    m.spec.causal = uni(0, 5) != 0;
    m.spec.visible.assign(static_cast<size_t>(G * G), 0);
    for (int q = 0; q < G; ++q)
      for (int k = 0; k < G; ++k) m.spec.set(q, k, q == k || uni(0, 2) == 0);
    for (int k = 0; k < G; ++k) m.spec.set(X + 1, k, k < X ? m.spec.sees(X, k) : k == X + 1);
    m.spec.set(X, X + 1, false), m.spec.set(X, X + 2, false), m.spec.set(X, X, true);
    if (uni(0, 2) == 0) {
      const int q = X + uni(0, 1), k = uni(0, G - 1);
      m.spec.set(q, k, !m.spec.sees(q, k));
    }
    for (int i = 0; i < n; ++i) {
      int g = uni(0, X - 1);
      if (i >= c.src && i < c.src + c.length) g = X;
      if (i >= c.src + c.length && i < c.dst) g = X + 2;
      if (i >= c.dst && i < c.dst + c.length) g = X + 1;
      if (uni(0, 30) == 0) g = uni(0, G - 1);
      m.group_ids.push_back(g);
    }
    std::vector<int32_t> tokens(static_cast<size_t>(n));
    std::vector<int64_t> pos(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) tokens[i] = uni(0, 50), pos[i] = i;
    for (int64_t j = 0; j < c.length; ++j) {
      tokens[c.dst + j] = tokens[c.src + j];
      pos[c.dst + j] = pos[c.src + j];
    }
    if (uni(0, 20) == 0) tokens[c.dst + uni(0, static_cast<int>(c.length) - 1)] += 1;
    const bool want = brute(tokens, pos, m, c);
    ASSERT_EQ(span_copies_are_exact(tokens, pos, m, {c}), want) << "iteration " << iter;
    (want ? yes : no)++;
  }
  EXPECT_GT(yes, 20);
  EXPECT_GT(no, 20);
}
