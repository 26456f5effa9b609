// The paraphrase job's prompts and how it reads a paraphrase out of a generation.
#include <gtest/gtest.h>

#include "flexgen/paraphrase.h"

using namespace flexgen;

TEST(ParaphrasePrompt, RoundPicksTheExampleColumn) {
  const auto& ex = paraphrase_examples();
  ASSERT_EQ(ex.size(), 5u);
  for (size_t round = 0; round < kParaphraseRounds; ++round) {
    const std::string p = paraphrase_prompt("Who painted the Mona Lisa?", round);
    EXPECT_EQ(p.rfind(kParaphraseInstruction, 0), 0u);
    for (const ParaphraseExample& e : ex) {
      EXPECT_NE(p.find("Question: " + e.question + "\nParaphrase: " + e.paraphrases[round] + "\n\n"), std::string::npos);
      for (size_t other = 0; other < kParaphraseRounds; ++other)
        if (other != round && e.paraphrases[other] != e.paraphrases[round])
          EXPECT_EQ(p.find(e.paraphrases[other]), std::string::npos);
    }
    const std::string tail = "\n\nQuestion: Who painted the Mona Lisa?\nParaphrase:";
    EXPECT_EQ(p.substr(p.size() - tail.size()), tail);
  }
  EXPECT_THROW(paraphrase_prompt("q", kParaphraseRounds), std::invalid_argument);
}

TEST(ParaphrasePrompt, FirstLineStripped) {
  EXPECT_EQ(paraphrase_from_generation("  Which city is it? \nQuestion: x"), "Which city is it?");
  EXPECT_EQ(paraphrase_from_generation("\nfoo"), "");
  EXPECT_EQ(paraphrase_from_generation("\t bar\t"), "bar");
  EXPECT_EQ(paraphrase_from_generation(""), "");
}
