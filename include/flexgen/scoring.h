// The reference's scoring rule: lowercase word/punctuation tokens, answer inside prediction.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace flexgen {

// Lowercased (Unicode, as Python's str.lower()) and split into \w+|[^\w\s] tokens, where
// \w is a letter, number, mark or '_' and \s is Unicode white space.
std::vector<std::string> score_tokens(const std::string& text);

// Verdicts for one prediction against the gold answers. Answers with no tokens are ignored.
struct Score {
  bool correct = false;                // some answer's tokens occur contiguously in the prediction's
  bool correct_bidirectional = false;  // ... or the prediction's in the answer's; empty prediction: false
  bool exact_match = false;            // some answer's tokens equal the prediction's
};

Score score_prediction(const std::string& prediction, const std::vector<std::string>& answers);

// How a prediction is cut from a generation.
enum class PredictionRule {
  FirstLine,  // WebQA: text before the first '\n', stripped of white space
  FirstWord,  // MyriadLAMA: the first white-space-separated word ("" when none)
};

std::string extract_prediction(const std::string& generation, PredictionRule rule);

// Counts over scored rows.
struct ScoreSummary {
  size_t n = 0, correct = 0, correct_bidirectional = 0, exact_match = 0;
  void add(const Score& s);
  double accuracy() const { return n ? double(correct) / double(n) : 0.0; }
  double bidirectional() const { return n ? double(correct_bidirectional) / double(n) : 0.0; }
  double exact() const { return n ? double(exact_match) / double(n) : 0.0; }
};

}  // namespace flexgen
