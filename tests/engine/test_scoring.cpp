#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "flexgen/scoring.h"
#include "unicode_text.h"

using flexgen::extract_prediction;
using flexgen::PredictionRule;
using flexgen::score_prediction;
using flexgen::score_tokens;
using Tokens = std::vector<std::string>;

TEST(ScoreTokens, WordsAndPunctuation) {
  EXPECT_EQ(score_tokens("The U.S. Dollar!"), (Tokens{"the", "u", ".", "s", ".", "dollar", "!"}));
  EXPECT_EQ(score_tokens("  new_york  city\t"), (Tokens{"new_york", "city"}));
  EXPECT_EQ(score_tokens("1,000 $"), (Tokens{"1", ",", "000", "$"}));
  EXPECT_EQ(score_tokens(""), Tokens{});
  EXPECT_EQ(score_tokens(" \n\t"), Tokens{});
}

TEST(ScoreTokens, UnicodeLowercaseAndWordCharacters) {
  EXPECT_EQ(score_tokens("ZÜRICH"), Tokens{"zürich"});
  EXPECT_EQ(score_tokens("ŁÓDŹ"), Tokens{"łódź"});
  EXPECT_EQ(score_tokens("ΑΘΗΝΑ"), Tokens{"αθηνα"});
  EXPECT_EQ(score_tokens("ΟΔΟΣ ΣΑ"), (Tokens{"οδος", "σα"}));  // final sigma, as Python's str.lower()
  EXPECT_EQ(score_tokens("МОСКВА—Россия"), (Tokens{"москва", "—", "россия"}));
  EXPECT_EQ(score_tokens("東京"), Tokens{"東京"});
  EXPECT_EQ(score_tokens("e\xCC\x81t\xC3\xA9"), Tokens{"e\xCC\x81t\xC3\xA9"});  // combining mark is a word character
  EXPECT_EQ(score_tokens("a\xC2\xA0" "b"), (Tokens{"a", "b"}));               // no-break space separates
  EXPECT_EQ(score_tokens("\xC4\xB0stanbul"), Tokens{"i\xCC\x87stanbul"});      // U+0130 -> i + U+0307
}

TEST(ScorePrediction, HandCases) {
  auto s = score_prediction("The Japanese yen.", {"Japanese Yen"});
  EXPECT_TRUE(s.correct);
  EXPECT_TRUE(s.correct_bidirectional);
  EXPECT_FALSE(s.exact_match);
  s = score_prediction("japanese yen", {"dollar", "Japanese yen"});
  EXPECT_TRUE(s.correct && s.exact_match);
  s = score_prediction("yen", {"Japanese yen"});
  EXPECT_FALSE(s.correct);
  EXPECT_TRUE(s.correct_bidirectional);
  s = score_prediction("Yenisei", {"yen"});  // tokens, not substrings
  EXPECT_FALSE(s.correct || s.correct_bidirectional);
  s = score_prediction("new york city", {"york new"});  // order matters
  EXPECT_FALSE(s.correct);
  s = score_prediction("", {"Paris"});
  EXPECT_FALSE(s.correct || s.correct_bidirectional || s.exact_match);
  s = score_prediction("...", {"Paris"});
  EXPECT_FALSE(s.correct || s.correct_bidirectional);
  s = score_prediction("Paris", {});
  EXPECT_FALSE(s.correct || s.correct_bidirectional || s.exact_match);
  s = score_prediction("Paris", {"", "  "});  // answers without tokens never match
  EXPECT_FALSE(s.correct || s.correct_bidirectional || s.exact_match);
  s = score_prediction("", {""});
  EXPECT_FALSE(s.correct || s.correct_bidirectional || s.exact_match);
}

TEST(ExtractPrediction, FirstLineAndFirstWord) {
  EXPECT_EQ(extract_prediction("  Japanese yen \nQ: next", PredictionRule::FirstLine), "Japanese yen");
  EXPECT_EQ(extract_prediction("\nTokyo", PredictionRule::FirstLine), "");
  EXPECT_EQ(extract_prediction("Tokyo\r\n", PredictionRule::FirstLine), "Tokyo");
  EXPECT_EQ(extract_prediction("", PredictionRule::FirstLine), "");
  EXPECT_EQ(extract_prediction(" \xC2\xA0Paris\xC2\xA0", PredictionRule::FirstLine), "Paris");
  EXPECT_EQ(extract_prediction(" French language\n", PredictionRule::FirstWord), "French");
  EXPECT_EQ(extract_prediction("\n\tParis.", PredictionRule::FirstWord), "Paris.");
  EXPECT_EQ(extract_prediction("   ", PredictionRule::FirstWord), "");
}

// Cases scored by the Python rule (tests/engine/gen_scoring_cases.py).
TEST(ScorePrediction, AgreesWithThePythonRule) {
  std::ifstream in(std::string(FLEXGEN_SOURCE_DIR) + "/tests/engine/data/scoring_cases.jsonl");
  ASSERT_TRUE(in) << "missing tests/engine/data/scoring_cases.jsonl";
  std::string line;
  int tokens = 0, scores = 0;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    if (j.contains("tokens")) {
      EXPECT_EQ(score_tokens(j["text"]), j["tokens"].get<Tokens>()) << line;
      ++tokens;
    } else {
      const auto s = score_prediction(j["prediction"], j["answers"].get<Tokens>());
      EXPECT_EQ(s.correct, j["correct"].get<bool>()) << line;
      EXPECT_EQ(s.correct_bidirectional, j["correct_bidirectional"].get<bool>()) << line;
      EXPECT_EQ(s.exact_match, j["exact_match"].get<bool>()) << line;
      ++scores;
    }
  }
  EXPECT_GE(tokens, 400);
  EXPECT_GE(scores, 400);
}

namespace {

std::string random_text(std::mt19937_64& rng) {
  static const std::vector<std::string> pieces = {"a", "B", "z", "0", "9", "_", " ", "  ", "\t", "\n", ",", ".",
                                                  "!", "-", "'", "\xC3\xA9", "\xC3\x89", "\xCE\xA3", "\xCF\x83",
                                                  "\xD0\x96", "\xD0\xB6", "\xE6\x9D\xB1", "\xC2\xA0", "\xE2\x80\x94",
                                                  "\xCC\x81", "\xF0\x9F\x98\x80"};
  std::string s;
  const int n = static_cast<int>(rng() % 16);
  for (int i = 0; i < n; ++i) s += pieces[rng() % pieces.size()];
  return s;
}

}  // namespace

TEST(ScoreTokens, PropertiesOnRandomText) {
  std::mt19937_64 rng(7);
  for (int iter = 0; iter < 3000; ++iter) {
    const std::string text = random_text(rng);
    const Tokens tokens = score_tokens(text);
    // Concatenated tokens are the lowercased text without its white space.
    std::string joined, expected;
    for (const auto& t : tokens) joined += t;
    for (const auto& t : score_tokens(flexgen::unicode::lowercase(text))) expected += t;
    EXPECT_EQ(joined, expected);
    // Idempotent: tokenising the joined tokens with spaces gives the same tokens.
    std::string spaced;
    for (const auto& t : tokens) spaced += t + " ";
    EXPECT_EQ(score_tokens(spaced), tokens) << text;
    // Lowercase is a fixed point.
    EXPECT_EQ(score_tokens(flexgen::unicode::lowercase(text)), tokens) << text;
    for (const auto& t : tokens) EXPECT_FALSE(t.empty());
  }
}

TEST(ScorePrediction, PropertiesOnRandomText) {
  std::mt19937_64 rng(11);
  for (int iter = 0; iter < 3000; ++iter) {
    const std::string pred = random_text(rng), answer = random_text(rng), other = random_text(rng);
    const bool has_tokens = !score_tokens(answer).empty();
    const bool pred_tokens = !score_tokens(pred).empty();
    // The answer embedded in any prediction (with spaces around) is correct iff it has tokens.
    EXPECT_EQ(score_prediction(other + " " + answer + " " + pred, {answer}).correct, has_tokens) << answer;
    // A prediction equal to an answer is an exact match, hence correct both ways.
    const auto self = score_prediction(answer, {other, answer});
    EXPECT_EQ(self.exact_match, has_tokens);
    EXPECT_EQ(self.correct, has_tokens);
    EXPECT_EQ(self.correct_bidirectional, has_tokens);
    // exact => correct => bidirectional; bidirectional is symmetric for non-empty sides.
    const auto s = score_prediction(pred, {answer});
    EXPECT_TRUE(!s.exact_match || s.correct);
    EXPECT_TRUE(!s.correct || s.correct_bidirectional);
    if (has_tokens && pred_tokens) {
      EXPECT_EQ(s.correct_bidirectional, score_prediction(answer, {pred}).correct_bidirectional) << pred << "|" << answer;
    }
    // Adding answers never loses a match; case never matters.
    const auto more = score_prediction(pred, {answer, other});
    EXPECT_TRUE(!s.correct || more.correct);
    EXPECT_EQ(score_prediction(flexgen::unicode::lowercase(pred), {answer}).correct, s.correct);
  }
}
