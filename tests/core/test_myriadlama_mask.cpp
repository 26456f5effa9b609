// The MyriadLAMA few-shot-sharing layout: group visibility as the reference's rules
// say, restart position ids, and the analytic block mask against the generic one.
#include <gtest/gtest.h>

#include <random>

#include "flexgen/block_mask.h"
#include "flexgen/isolation_check.h"
#include "flexgen/layout.h"
#include "flexgen/mask.h"

using namespace flexgen;

namespace {

// BOS(1) instruction(3) Q1(4) A1(2) Q2(3) A2(2) P1(5) sep(2) P2(4) G(3)
FewShotSharingLengths small_lengths() {
  FewShotSharingLengths in;
  in.instruction = 3;
  in.example_questions = {4, 3};
  in.example_answers = {2, 2};
  in.paraphrases = {5, 4};
  in.separator_tokens = 2;
  in.generated = 3;
  return in;
}

int32_t group_of(const SequenceLayout& l, GroupKind kind, int32_t index) {
  for (size_t g = 0; g < l.groups.size(); ++g)
    if (l.groups[g].kind == kind && l.groups[g].index == index) return static_cast<int32_t>(g);
  ADD_FAILURE() << "no group " << to_string(kind) << " " << index;
  return -1;
}

}  // namespace

TEST(MyriadLamaLayout, SpansInOrder) {
  const SequenceLayout l = layout_few_shot_sharing(small_lengths());
  l.validate();
  EXPECT_EQ(l.length(), 1 + 3 + 4 + 2 + 3 + 2 + 5 + 2 + 4 + 3);
  EXPECT_EQ(l.context_end, 15);
  EXPECT_EQ(l.generation_start, 26);
  EXPECT_EQ(l.num_paraphrases(), 2);
  EXPECT_EQ(l.paraphrase_span(0).start, 15);
  EXPECT_EQ(l.paraphrase_span(1).start, 22);
  EXPECT_EQ(to_string(GroupKind::FewShotQuestion), "few_shot_question");
  EXPECT_EQ(to_string(GroupKind::FewShotAnswer), "few_shot_answer");
}

TEST(MyriadLamaLayout, VisibilityFollowsTheReferenceRules) {
  const SequenceLayout l = layout_few_shot_sharing(small_lengths());
  const MaskSpec spec = default_mask_spec(l);
  const int32_t bos = group_of(l, GroupKind::Bos, 0), ins = group_of(l, GroupKind::Context, 0);
  const int32_t q1 = group_of(l, GroupKind::FewShotQuestion, 0), a1 = group_of(l, GroupKind::FewShotAnswer, 0);
  const int32_t q2 = group_of(l, GroupKind::FewShotQuestion, 1), a2 = group_of(l, GroupKind::FewShotAnswer, 1);
  const int32_t p1 = group_of(l, GroupKind::Paraphrase, 0), p2 = group_of(l, GroupKind::Paraphrase, 1);
  const int32_t sep = group_of(l, GroupKind::Separator, 0), gen = l.generated_group();
  // An answer sees BOS, the instruction, its own example's questions and itself only.
  EXPECT_TRUE(spec.sees(a2, bos) && spec.sees(a2, ins) && spec.sees(a2, q2) && spec.sees(a2, a2));
  EXPECT_FALSE(spec.sees(a2, q1));
  EXPECT_FALSE(spec.sees(a2, a1));
  // Questions see other examples' questions, not their answers.
  EXPECT_TRUE(spec.sees(q2, q1) && spec.sees(q2, ins) && spec.sees(q2, bos));
  EXPECT_FALSE(spec.sees(q2, a1));
  // Main paraphrases: instruction, every few-shot group, themselves; never another paraphrase or a separator.
  for (int32_t g : {bos, ins, q1, a1, q2, a2}) EXPECT_TRUE(spec.sees(p2, g)) << g;
  EXPECT_FALSE(spec.sees(p2, p1));
  EXPECT_FALSE(spec.sees(p2, sep));
  // Separators see BOS and themselves only.
  EXPECT_TRUE(spec.sees(sep, bos) && spec.sees(sep, sep));
  for (int32_t g : {ins, q1, a1, p1}) EXPECT_FALSE(spec.sees(sep, g)) << g;
  // Generated tokens see everything.
  for (int32_t g = 0; g < spec.num_groups; ++g) EXPECT_TRUE(spec.sees(gen, g));
  // No row is fully masked.
  const AttentionMask m = make_attention_mask(l, spec);
  for (int64_t q = 0; q < m.length(); ++q) EXPECT_TRUE(m.allowed(q, q)) << q;
}

TEST(MyriadLamaLayout, RestartPositionsKeepTheSharedPrefix) {
  const SequenceLayout l = layout_few_shot_sharing(small_lengths());
  const std::vector<int64_t> pos = l.position_ids(PositionMode::Restart);
  for (int64_t i = 0; i < l.context_end; ++i) EXPECT_EQ(pos[i], i);
  EXPECT_EQ(pos[15], 15);  // paraphrase 1 starts at S
  EXPECT_EQ(pos[20], 15);  // separator restarts at S
  EXPECT_EQ(pos[22], 15);  // paraphrase 2 restarts at S
  EXPECT_EQ(pos[26], 15 + 5);  // generation: S + longest paraphrase
}

TEST(MyriadLamaLayout, BadLengthsAreRejected) {
  FewShotSharingLengths in = small_lengths();
  in.example_answers.pop_back();
  EXPECT_THROW(layout_few_shot_sharing(in), std::invalid_argument);
  in = small_lengths();
  in.example_questions[1] = 0;
  EXPECT_THROW(layout_few_shot_sharing(in), std::invalid_argument);
  in = small_lengths();
  in.paraphrases.clear();
  EXPECT_THROW(layout_few_shot_sharing(in), std::invalid_argument);
}

TEST(MyriadLamaLayout, AnalyticBlockMaskEqualsGenericOnRandomLayouts) {
  std::mt19937_64 rng(1234);
  auto uni = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  for (int trial = 0; trial < 200; ++trial) {
    FewShotSharingLengths in;
    in.bos = uni(0, 1) == 1;
    in.instruction = uni(0, 20);
    const int64_t examples = uni(0, 5);
    for (int64_t e = 0; e < examples; ++e) {
      in.example_questions.push_back(uni(1, 40));
      in.example_answers.push_back(uni(1, 6));
    }
    const int64_t paras = uni(1, 6);
    for (int64_t p = 0; p < paras; ++p) in.paraphrases.push_back(uni(1, 30));
    in.separator_tokens = uni(0, 4);
    in.generated = uni(0, 12);
    const SequenceLayout l = layout_few_shot_sharing(in);
    const AttentionMask m = make_attention_mask(l, default_mask_spec(l));
    const int64_t bs = std::vector<int64_t>{1, 3, 8, 16, 64}[static_cast<size_t>(uni(0, 4))];
    const BlockMask a = build_block_mask(l, m.spec, bs);
    const BlockMask g =
        build_block_mask_generic(l.length(), l.length(), bs, [&](int64_t q, int64_t k) { return m.allowed(q, k); });
    SCOPED_TRACE("trial " + std::to_string(trial) + ", block size " + std::to_string(bs));
    ASSERT_EQ(a.num_q_blocks, g.num_q_blocks);
    ASSERT_EQ(a.full_offsets, g.full_offsets);
    ASSERT_EQ(a.full_indices, g.full_indices);
    ASSERT_EQ(a.partial_offsets, g.partial_offsets);
    ASSERT_EQ(a.partial_indices, g.partial_indices);
    ASSERT_EQ(a.allowed_pairs, g.allowed_pairs);
  }
}

// Issue 17: generate's sequences (concatenate with a few-shot split of the shared context) have
// exactly the preset's layout, and the isolation check covers the few-shot rules.
TEST(MyriadLamaLayout, ConcatenateWithFewShotSplitEqualsThePresetLayout) {
  const FewShotSharingLengths len = small_lengths();
  ConcatInput in;
  in.bos = 1;
  for (int32_t t = 0; t < 3 + 4 + 2 + 3 + 2; ++t) in.shared_context.push_back(100 + t);
  FewShotSplit split;
  split.instruction = len.instruction;
  split.questions = len.example_questions;
  split.answers = len.example_answers;
  in.few_shot = split;
  in.paraphrases = {{1, 2, 3, 4, 5}, {6, 7, 8, 9}};
  in.separator = {50, 51};
  ConcatResult c = concatenate(in);
  c.layout.add_generated(len.generated);
  const SequenceLayout want = layout_few_shot_sharing(len);
  ASSERT_EQ(c.layout.spans.size(), want.spans.size());
  for (size_t i = 0; i < want.spans.size(); ++i) {
    EXPECT_EQ(c.layout.spans[i].start, want.spans[i].start) << i;
    EXPECT_EQ(c.layout.spans[i].end, want.spans[i].end) << i;
    EXPECT_EQ(c.layout.groups[c.layout.spans[i].group].kind, want.groups[want.spans[i].group].kind) << i;
    EXPECT_EQ(c.layout.groups[c.layout.spans[i].group].index, want.groups[want.spans[i].group].index) << i;
  }
  EXPECT_EQ(c.layout.context_end, want.context_end);
  EXPECT_EQ(c.tokens.size(), static_cast<size_t>(want.generation_start));
  EXPECT_EQ(c.tokens[1], 100);
  for (PositionMode pm : {PositionMode::Sequential, PositionMode::Restart})
    EXPECT_EQ(c.layout.position_ids(pm), want.position_ids(pm));
  // A split that does not add up to the shared context is refused.
  in.few_shot->answers[1] = 3;
  EXPECT_THROW(concatenate(in), std::invalid_argument);
}

TEST(MyriadLamaLayout, IsolationCheckCoversTheFewShotRules) {
  const SequenceLayout l = layout_few_shot_sharing(small_lengths());
  const MaskSpec good = default_mask_spec(l);
  for (int64_t bs : {1, 4, 16}) {
    const IsolationCheck c = check_isolation(l, make_attention_mask(l, good), build_block_mask(l, good, bs));
    EXPECT_TRUE(c.isolated) << bs;
    EXPECT_EQ(c.examples, 2);
  }
  // Example 2's answer may see example 1's question lines: a leak between examples.
  MaskSpec leak = good;
  leak.set(group_of(l, GroupKind::FewShotAnswer, 1), group_of(l, GroupKind::FewShotQuestion, 0), true);
  for (int64_t bs : {1, 4, 16}) {
    const IsolationCheck c = check_isolation(l, make_attention_mask(l, leak), build_block_mask(l, leak, bs));
    ASSERT_FALSE(c.isolated) << bs;
    EXPECT_EQ(c.query, 13);  // A2 starts at 1 + 3 + 4 + 2 + 3
    EXPECT_EQ(c.key, 4);     // Q1 starts at 1 + 3
    EXPECT_EQ(c.query_group, "fewshot A2");
    EXPECT_EQ(c.key_group, "fewshot Q1");
    EXPECT_EQ(c.query_segment, -1);
  }
  // An example's question lines seeing an answer line is a leak too.
  MaskSpec leak2 = good;
  leak2.set(group_of(l, GroupKind::FewShotQuestion, 1), group_of(l, GroupKind::FewShotAnswer, 0), true);
  EXPECT_FALSE(check_isolation(l, make_attention_mask(l, leak2), build_block_mask(l, leak2, 4)).isolated);
}
