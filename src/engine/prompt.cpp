// Prompt building (see prompt.h).
#include "flexgen/prompt.h"

#include <algorithm>

#include "flexgen/setting_error.h"
#include "py_random.h"

namespace flexgen {

namespace {

std::string record_name(const Sample& s) {
  return (s.source.empty() ? std::string("record") : s.source) + " (uuid " + s.uuid + ")";
}

}  // namespace

void ParaphraseSelection::validate() const {
  if (count == 0) throw InvalidSetting(Setting::ParaphraseCount, "", "must be at least 1");
}

std::vector<size_t> parse_index_list(const std::string& text) {
  std::vector<size_t> out;
  if (text.empty()) throw std::invalid_argument("the list is empty (expected e.g. 0,2,4)");
  size_t at = 0;
  while (true) {
    const size_t comma = text.find(',', at);
    const std::string item = text.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    const std::string where = "item " + std::to_string(out.size() + 1);
    if (item.empty()) throw std::invalid_argument(where + " is empty (expected e.g. 0,2,4)");
    if (item.size() > 9 || item.find_first_not_of("0123456789") != std::string::npos)
      throw std::invalid_argument(where + ": '" + item + "' is not a non-negative integer");
    const size_t v = std::stoul(item);
    if (std::find(out.begin(), out.end(), v) != out.end())
      throw std::invalid_argument("index " + item + " is given twice");
    out.push_back(v);
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return out;
}

std::vector<std::string> paraphrase_candidates(const Sample& sample, uint64_t seed) {
  switch (sample.kind) {
    case SampleKind::RawPrompts:
      return sample.prompts;
    case SampleKind::MaskFill: {
      std::vector<std::string> out = sample.manual_paraphrases;
      const size_t n = sample.auto_paraphrases.size();
      for (size_t i : py_sample(n, n, seed)) out.push_back(sample.auto_paraphrases[i]);
      return out;
    }
    case SampleKind::Question:
      break;
  }
  return sample.paraphrases;
}

SelectedParaphrases select_paraphrases(const Sample& sample, const ParaphraseSelection& selection) {
  const std::vector<std::string> all = paraphrase_candidates(sample, selection.seed);
  const char* noun = sample.kind == SampleKind::RawPrompts ? "prompts" : "paraphrases";
  SelectedParaphrases out;
  if (selection.indexes.empty()) {
    selection.validate();
    if (all.size() < selection.count)
      throw SampleError(record_name(sample) + ": has " + std::to_string(all.size()) + " " + noun + "; " +
                        std::to_string(selection.count) + " asked for");
    for (size_t i = 0; i < selection.count; ++i) out.indexes.push_back(i);
  } else {
    for (size_t i : selection.indexes) {
      if (i >= all.size())
        throw SampleError(record_name(sample) + ": has " + std::to_string(all.size()) + " " + noun + "; index " +
                          std::to_string(i) + " asked for");
      out.indexes.push_back(i);
    }
  }
  for (size_t i : out.indexes) out.texts.push_back(all[i]);
  return out;
}

std::vector<std::string> PromptSet::full_prompts() const {
  std::vector<std::string> out;
  for (size_t i = 0; i < parts.size(); ++i) out.push_back(full(i));
  return out;
}

PromptBuilder::PromptBuilder(const std::vector<Sample>& pool, size_t few_shot, uint64_t seed, std::string instruction)
    : instruction_(std::move(instruction)) {
  if (few_shot > pool.size())
    throw InvalidSetting(Setting::FewShotCount, std::to_string(few_shot),
                         "the few-shot pool has only " + std::to_string(pool.size()) + " records");
  few_shot_indexes_ = py_sample(pool.size(), few_shot, seed);
  for (size_t i : few_shot_indexes_) {
    const Sample& ex = pool[i];
    if (ex.answers.empty()) throw std::invalid_argument(record_name(ex) + ": a few-shot example needs an answer");
    if (!few_shot_.empty()) few_shot_ += "\n\n";
    few_shot_ += "Q: " + ex.question + "\nA: " + ex.answers[0];
    examples_.emplace_back(ex.question, ex.answers[0]);
  }
}

std::string PromptBuilder::shared_context(SampleKind kind) const {
  if (kind == SampleKind::RawPrompts) return "";
  std::string out = !instruction_.empty()                ? instruction_
                    : kind == SampleKind::MaskFill ? kMaskFillInstruction
                                                        : kWebqaInstruction;
  out += "\n\n";
  if (!few_shot_.empty()) out += few_shot_ + "\n\n";
  return out;
}

std::string PromptBuilder::question_part(const std::string& paraphrase) { return "Q: " + paraphrase + "\nA:"; }

PromptSet PromptBuilder::build(const Sample& sample, const ParaphraseSelection& selection) const {
  PromptSet set;
  set.paraphrases = select_paraphrases(sample, selection);
  set.shared = shared_context(sample.kind);
  if (sample.kind == SampleKind::MaskFill && !examples_.empty()) {
    FewShotPieces f;
    f.instruction = (!instruction_.empty() ? instruction_ : std::string(kMaskFillInstruction)) + "\n\n";
    for (const auto& [q, a] : examples_) {
      f.questions.push_back("Q: " + q + "\n");
      f.answers.push_back("A: " + a + "\n\n");
    }
    set.few_shot = std::move(f);
  }
  for (const std::string& p : set.paraphrases.texts)
    set.parts.push_back(sample.kind == SampleKind::RawPrompts ? p : question_part(p));
  return set;
}

}  // namespace flexgen
