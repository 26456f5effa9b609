// Prompts of the reference pipeline: instruction, seeded few-shot block, "Q: ...\nA:" per
// paraphrase, the shared-context split, and which paraphrases a run uses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "flexgen/dataset.h"

namespace flexgen {

inline constexpr const char* kWebqaInstruction =
    "Answer the question based on general world knowledge. Provide a short and direct answer.";
inline constexpr const char* kMaskFillInstruction = "Predict the [MASK] in the sentence in one word.";
inline constexpr const char* kDefaultSeparator = "\n\n[SEP]\n\n";

// A record that cannot give what the run asks for (too few paraphrases, ...); the
// message names the record. Callers with --skip-bad log it and go on.
struct SampleError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Which paraphrases a run uses: the first `count`, or exactly `indexes` (when non-empty).
struct ParaphraseSelection {
  size_t count = 5;
  std::vector<size_t> indexes;
  uint64_t seed = 42;  // MaskFill: order of the automatic templates (recorded in the output)
  // Throws InvalidSetting (paraphrase count) when count is 0.
  void validate() const;
};

// "0,2,4" -> {0, 2, 4}; throws std::invalid_argument on an empty item, a non-number or a repeat.
std::vector<size_t> parse_index_list(const std::string& text);

// The candidates a selection indexes: Question -> paraphrases; RawPrompts -> prompts;
// MaskFill -> the manual templates, then the automatic ones in the order of
// py_sample(n_auto, n_auto, seed) (the "seeded sample": its first ones are used first).
std::vector<std::string> paraphrase_candidates(const Sample& sample, uint64_t seed);

// The paraphrases chosen and their indexes into paraphrase_candidates().
struct SelectedParaphrases {
  std::vector<std::string> texts;
  std::vector<size_t> indexes;
};
// Throws SampleError ("<source> (uuid U): has 3 paraphrases; 5 asked for") when short,
// InvalidSetting when the selection is invalid.
SelectedParaphrases select_paraphrases(const Sample& sample, const ParaphraseSelection& selection);

// Prompts of one sample. full(i) == shared + parts[i] is the reference's complete prompt.
// `shared` ends right after the "\n\n" before "Q:"; with LLaMA-3's byte-level BPE this is a
// pre-token boundary whatever the last answer ends with (".\n\n" stays one piece, "Q" always
// starts a new one), so tokens(shared) + tokens(part) == tokens(full). RawPrompts have an
// empty shared part.
// The shared part of a mask-fill (MyriadLAMA) prompt cut at its few-shot structure:
// instruction + questions[0] + answers[0] + ... == shared. instruction = "{instruction}\n\n",
// questions[e] = "Q: {question}\n", answers[e] = "A: {answer}\n\n"; each cut falls before "Q:" or
// "A:", a pre-token boundary of byte-level BPE.
struct FewShotPieces {
  std::string instruction;
  std::vector<std::string> questions, answers;
};

struct PromptSet {
  std::string shared;
  std::optional<FewShotPieces> few_shot;  // mask-fill records with few-shot examples only
  std::vector<std::string> parts;
  SelectedParaphrases paraphrases;
  std::string full(size_t i) const { return shared + parts.at(i); }
  std::vector<std::string> full_prompts() const;
};

// Builds prompts for one run: the few-shot block is drawn once (the same for every sample).
class PromptBuilder {
 public:
  // `instruction` empty = by record kind (kWebqaInstruction / kMaskFillInstruction).
  // Few-shot examples: py_sample(pool.size(), few_shot, seed), each "Q: {question}\nA: {answers[0]}",
  // joined by "\n\n". Throws InvalidSetting (few-shot count) when the pool is smaller than few_shot.
  PromptBuilder(const std::vector<Sample>& pool, size_t few_shot = 5, uint64_t seed = 42,
                std::string instruction = "");

  const std::string& few_shot_block() const { return few_shot_; }
  const std::vector<size_t>& few_shot_indexes() const { return few_shot_indexes_; }

  // "{instruction}\n\n{few_shot}\n\n" (no few-shot block when few_shot == 0).
  std::string shared_context(SampleKind kind) const;
  // "Q: {paraphrase}\nA:"
  static std::string question_part(const std::string& paraphrase);

  PromptSet build(const Sample& sample, const ParaphraseSelection& selection) const;

 private:
  std::string instruction_;
  std::string few_shot_;
  std::vector<std::pair<std::string, std::string>> examples_;  // (question, answer) of each example
  std::vector<size_t> few_shot_indexes_;
};

}  // namespace flexgen
