// Scoring of predictions against gold answers (see scoring.h).
#include "flexgen/scoring.h"

#include <algorithm>

#include "unicode_text.h"
#include "flexgen/utf8.h"

namespace flexgen {

namespace {

using Tokens = std::vector<std::string>;

// True when `needle` (non-empty) occurs as a contiguous run in `hay`.
bool contains_run(const Tokens& hay, const Tokens& needle) {
  if (needle.empty() || needle.size() > hay.size()) return false;
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
}

}  // namespace

std::vector<std::string> score_tokens(const std::string& text) {
  const std::vector<uint32_t> cps = utf8::decode(unicode::lowercase(text));
  Tokens out;
  std::string word;
  for (uint32_t cp : cps) {
    if (unicode::is_word(cp)) {
      utf8::append(word, cp);
      continue;
    }
    if (!word.empty()) out.push_back(std::move(word)), word.clear();
    if (!unicode::is_space(cp)) {
      std::string single;
      utf8::append(single, cp);
      out.push_back(std::move(single));
    }
  }
  if (!word.empty()) out.push_back(std::move(word));
  return out;
}

Score score_prediction(const std::string& prediction, const std::vector<std::string>& answers) {
  const Tokens pred = score_tokens(prediction);
  Score s;
  for (const std::string& answer : answers) {
    const Tokens gold = score_tokens(answer);
    if (gold.empty()) continue;
    const bool inside = contains_run(pred, gold);
    s.correct = s.correct || inside;
    s.correct_bidirectional = s.correct_bidirectional || inside || contains_run(gold, pred);
    s.exact_match = s.exact_match || pred == gold;
  }
  return s;
}

std::string extract_prediction(const std::string& generation, PredictionRule rule) {
  if (rule == PredictionRule::FirstLine) return unicode::strip(generation.substr(0, generation.find('\n')));
  const std::vector<uint32_t> cps = utf8::decode(generation);
  size_t a = 0;
  while (a < cps.size() && unicode::is_space(cps[a])) ++a;
  size_t b = a;
  while (b < cps.size() && !unicode::is_space(cps[b])) ++b;
  return utf8::encode(std::vector<uint32_t>(cps.begin() + a, cps.begin() + b));
}

void ScoreSummary::add(const Score& s) {
  ++n;
  correct += s.correct;
  correct_bidirectional += s.correct_bidirectional;
  exact_match += s.exact_match;
}

}  // namespace flexgen
