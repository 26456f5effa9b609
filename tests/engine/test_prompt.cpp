#include <gtest/gtest.h>

#include "flexgen/prompt.h"
#include "py_random.h"

using namespace flexgen;

namespace {

Sample question(const std::string& q, const std::string& answer, std::vector<std::string> paraphrases = {}) {
  Sample s;
  s.uuid = "u-" + q;
  s.question = q;
  s.answers = {answer};
  s.paraphrases = paraphrases.empty() ? std::vector<std::string>{q} : paraphrases;
  s.source = "test.jsonl:1";
  return s;
}

std::vector<Sample> pool(size_t n) {
  std::vector<Sample> out;
  for (size_t i = 0; i < n; ++i) out.push_back(question("q" + std::to_string(i) + "?", "a" + std::to_string(i)));
  return out;
}

}  // namespace

// Expected values printed by CPython 3.11: random.seed(s); random.sample(range(n), k).
TEST(PyRandom, MatchesCPythonRandomSample) {
  EXPECT_EQ(py_sample(56, 5, 42), (std::vector<size_t>{40, 7, 1, 47, 17}));
  EXPECT_EQ(py_sample(10, 5, 42), (std::vector<size_t>{1, 0, 4, 9, 6}));
  EXPECT_EQ(py_sample(21, 5, 42), (std::vector<size_t>{20, 3, 0, 8, 7}));
  EXPECT_EQ(py_sample(22, 5, 0), (std::vector<size_t>{12, 13, 1, 8, 16}));
  EXPECT_EQ(py_sample(11, 11, 42), (std::vector<size_t>{10, 1, 0, 4, 9, 6, 5, 8, 2, 3, 7}));
  EXPECT_EQ(py_sample(100, 7, 123456789012ull), (std::vector<size_t>{48, 83, 2, 33, 17, 53, 25}));
  EXPECT_EQ(py_sample(3, 3, (1ull << 40) + 5), (std::vector<size_t>{2, 1, 0}));
  PyRandom r(42);  // random.seed(42); [random.getrandbits(32) for _ in range(3)]
  EXPECT_EQ(r.next_u32(), 2746317213u);
  EXPECT_EQ(r.next_u32(), 478163327u);
  EXPECT_EQ(r.next_u32(), 107420369u);
  EXPECT_THROW(py_sample(3, 4, 1), std::invalid_argument);
  EXPECT_TRUE(py_sample(0, 0, 1).empty());
}

TEST(Prompt, ReferenceWebqaPrompt) {
  const auto train = pool(56);
  PromptBuilder builder(train, 5, 42);
  EXPECT_EQ(builder.few_shot_indexes(), (std::vector<size_t>{40, 7, 1, 47, 17}));
  EXPECT_EQ(builder.few_shot_block(), "Q: q40?\nA: a40\n\nQ: q7?\nA: a7\n\nQ: q1?\nA: a1\n\nQ: q47?\nA: a47\n\nQ: q17?\nA: a17");
  const Sample s = question("what currency does japan use?", "yen",
                            {"what currency does japan use?", "which currency is used in japan?", "p2", "p3"});
  ParaphraseSelection sel;
  sel.count = 2;
  const PromptSet set = builder.build(s, sel);
  ASSERT_EQ(set.parts.size(), 2u);
  EXPECT_EQ(set.full(1),
            "Answer the question based on general world knowledge. Provide a short and direct answer.\n\n"
            "Q: q40?\nA: a40\n\nQ: q7?\nA: a7\n\nQ: q1?\nA: a1\n\nQ: q47?\nA: a47\n\nQ: q17?\nA: a17\n\n"
            "Q: which currency is used in japan?\nA:");
  EXPECT_EQ(set.parts[0], "Q: what currency does japan use?\nA:");
  EXPECT_EQ(set.shared.substr(set.shared.size() - 2), "\n\n");
  EXPECT_EQ(set.full_prompts().size(), 2u);
}

TEST(Prompt, FewShotZeroAndSeedMatter) {
  const auto train = pool(30);
  EXPECT_NE(PromptBuilder(train, 5, 42).few_shot_block(), PromptBuilder(train, 5, 43).few_shot_block());
  EXPECT_EQ(PromptBuilder(train, 5, 7).few_shot_block(), PromptBuilder(train, 5, 7).few_shot_block());
  const PromptBuilder none(train, 0, 42);
  EXPECT_EQ(none.shared_context(SampleKind::Question), std::string(kWebqaInstruction) + "\n\n");
  EXPECT_THROW(PromptBuilder(pool(3), 5, 42), std::invalid_argument);
}

TEST(Prompt, SelectionByCountAndIndexes) {
  const Sample s = question("p0", "a", {"p0", "p1", "p2", "p3", "p4", "p5"});
  ParaphraseSelection sel;
  sel.indexes = {0, 2, 4};
  EXPECT_EQ(select_paraphrases(s, sel).texts, (std::vector<std::string>{"p0", "p2", "p4"}));
  sel.indexes = {5, 1};
  EXPECT_EQ(select_paraphrases(s, sel).indexes, (std::vector<size_t>{5, 1}));
  sel.indexes = {6};
  try {
    select_paraphrases(s, sel);
    FAIL();
  } catch (const SampleError& e) {
    EXPECT_STREQ(e.what(), "test.jsonl:1 (uuid u-p0): has 6 paraphrases; index 6 asked for");
  }
  ParaphraseSelection many;
  many.count = 7;
  try {
    select_paraphrases(s, many);
    FAIL();
  } catch (const SampleError& e) {
    EXPECT_STREQ(e.what(), "test.jsonl:1 (uuid u-p0): has 6 paraphrases; 7 asked for");
  }
}

TEST(Prompt, ParseIndexList) {
  EXPECT_EQ(parse_index_list("0,2,4"), (std::vector<size_t>{0, 2, 4}));
  EXPECT_EQ(parse_index_list("3"), (std::vector<size_t>{3}));
  for (const char* bad : {"", "1,,2", "1,a", "-1", "1,1", "2,"}) EXPECT_THROW(parse_index_list(bad), std::invalid_argument) << bad;
}

TEST(Prompt, MaskFillUsesManualThenSeededAutomatic) {
  Sample s;
  s.kind = SampleKind::MaskFill;
  s.uuid = "m";
  s.answers = {"Paris"};
  s.manual_paraphrases = {"m0 [MASK].", "m1 [MASK].", "m2 [MASK].", "m3 [MASK].", "m4 [MASK]."};
  for (int i = 0; i < 11; ++i) s.auto_paraphrases.push_back("a" + std::to_string(i) + " [MASK].");
  const auto all = paraphrase_candidates(s, 42);
  ASSERT_EQ(all.size(), 16u);
  EXPECT_EQ(all[4], "m4 [MASK].");
  // py_sample(11, 11, 42) = 10, 1, 0, 4, ...
  EXPECT_EQ(all[5], "a10 [MASK].");
  EXPECT_EQ(all[6], "a1 [MASK].");
  EXPECT_NE(paraphrase_candidates(s, 1), all);
  Sample ex = s;
  ex.question = "The capital of Italy is [MASK].";
  ex.answers = {"Rome"};
  PromptBuilder builder({ex}, 1, 42);
  ParaphraseSelection sel;
  sel.indexes = {0, 5};
  const PromptSet set = builder.build(s, sel);
  EXPECT_EQ(set.full(1),
            "Predict the [MASK] in the sentence in one word.\n\nQ: The capital of Italy is [MASK].\nA: Rome\n\n"
            "Q: a10 [MASK].\nA:");
}

TEST(Prompt, RawPromptsAreVerbatim) {
  Sample s;
  s.kind = SampleKind::RawPrompts;
  s.uuid = "r";
  s.prompts = {"Say hi:\n", "Greet me:"};
  PromptBuilder builder(pool(5), 5, 42);
  ParaphraseSelection sel;
  sel.count = 2;
  const PromptSet set = builder.build(s, sel);
  EXPECT_EQ(set.shared, "");
  EXPECT_EQ(set.full_prompts(), s.prompts);
  sel.count = 3;
  EXPECT_THROW(builder.build(s, sel), SampleError);
}
