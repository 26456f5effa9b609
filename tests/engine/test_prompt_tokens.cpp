// The --shared-context split falls on a token boundary: with the real LLaMA-3 tokenizer,
// tokens(shared) + tokens(part) == tokens(full prompt) on the bundled data.
#include <gtest/gtest.h>

#include "flexgen/dataset.h"
#include "flexgen/prompt.h"
#include "flexgen/tokenizer.h"
#include "reference.h"

using namespace flexgen;

namespace {

const std::string kData = std::string(FLEXGEN_SOURCE_DIR) + "/data";

void check_split(const Tokenizer& tok, const std::string& name, size_t few_shot, uint64_t seed) {
  const DatasetFiles files = resolve_dataset(name, kData);
  const Dataset test = read_dataset(files.test);
  const Dataset train = read_dataset(files.train);
  PromptBuilder builder(train.samples, few_shot, seed);
  ParaphraseSelection all;
  int checked = 0;
  for (const Sample& s : test.samples) {
    all.count = paraphrase_candidates(s, all.seed).size();
    const PromptSet set = builder.build(s, all);
    std::vector<int32_t> shared = tok.encode(set.shared, {true, true});
    // MyriadLAMA's few-shot pieces (instruction, each example's question and answer lines) add up to
    // the shared text, and their tokens to its tokens (issue 17).
    EXPECT_EQ(set.few_shot.has_value(), s.kind == SampleKind::MaskFill && few_shot > 0);
    if (set.few_shot) {
      const FewShotPieces& f = *set.few_shot;
      ASSERT_EQ(f.questions.size(), few_shot);
      std::string text = f.instruction;
      std::vector<int32_t> ids = tok.encode(f.instruction, {true, true});
      for (size_t e = 0; e < f.questions.size(); ++e) {
        for (const std::string* piece : {&f.questions[e], &f.answers[e]}) {
          text += *piece;
          const std::vector<int32_t> p = tok.encode(*piece, {false, true});
          ids.insert(ids.end(), p.begin(), p.end());
        }
      }
      ASSERT_EQ(text, set.shared);
      ASSERT_EQ(ids, shared) << name << " " << s.source << " few-shot " << few_shot << " seed " << seed;
    }
    for (size_t i = 0; i < set.parts.size(); ++i) {
      std::vector<int32_t> joined = shared;
      const std::vector<int32_t> part = tok.encode(set.parts[i], {false, true});
      joined.insert(joined.end(), part.begin(), part.end());
      ASSERT_EQ(joined, tok.encode(set.full(i), {true, true}))
          << name << " " << s.source << " paraphrase " << i << " few-shot " << few_shot << " seed " << seed;
      ++checked;
    }
  }
  EXPECT_GT(checked, 100);
}

}  // namespace

TEST(PromptTokens, SharedContextSplitIsATokenBoundaryWithLlama3) {
  const auto tok = load_tokenizer(flexgen::testing::llama3_tokenizer_json());
  for (const char* name : {"webqa", "myriadlama"}) {
    for (uint64_t seed : {42, 0, 7}) check_split(*tok, name, 5, seed);
    check_split(*tok, name, 0, 42);
    check_split(*tok, name, 1, 42);
  }
}
