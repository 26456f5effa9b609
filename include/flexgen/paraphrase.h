// `flexgen paraphrase`: the paraphrase columns of a raw QA file, made by the model as the
// reference did (few-shot paraphrase prompt, temperature 1.5, top-p 0.9, 30 new tokens,
// round i with seed i and example column i, first line of the output, stripped).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "flexgen/llama.h"
#include "flexgen/tokenizer.h"

namespace flexgen {

inline constexpr const char* kParaphraseInstruction =
    "Paraphrase the following question. Keep the original meaning, but use a different sentence structure and "
    "vocabulary. Aim to make the paraphrase sound natural and diverse.";
inline constexpr size_t kParaphraseRounds = 5;

// A few-shot example of the paraphrase prompt: a question and five paraphrases of it.
struct ParaphraseExample {
  std::string question;
  std::array<std::string, kParaphraseRounds> paraphrases;
};

// The five built-in examples.
const std::vector<ParaphraseExample>& paraphrase_examples();

// The prompt of round `round` (0-based, < kParaphraseRounds): the instruction, then each example
// as "Question: {q}\nParaphrase: {p_round}", then "Question: {question}\nParaphrase:".
std::string paraphrase_prompt(const std::string& question, size_t round);

// The paraphrase in a generation: its first line, stripped of white space.
std::string paraphrase_from_generation(const std::string& generation);

struct ParaphraseOptions {
  std::string input;            // dataset file: our JSONL, the reference's columns or the WebQuestions release
  std::string output = "-";     // JSONL records {uuid, question, answers, paraphrases}
  bool resume = false;          // keep the records already in `output` and run the rest
  std::optional<int64_t> max_samples;
  int64_t max_new_tokens = 30;
  double temperature = 1.5;
  double top_p = 0.9;
  uint64_t seed = 0;            // round i samples with seed + i
};

struct ParaphraseSummary {
  int64_t written = 0;        // records written now
  int64_t skipped_done = 0;   // records already in the output (--resume)
  int64_t empty_outputs = 0;  // rounds whose first line was empty (the question was used instead)
};

// Runs the job; records are flushed one by one. Throws on bad input.
ParaphraseSummary run_paraphrase(const ParaphraseOptions& options, const LlamaModel& model,
                                 const Tokenizer& tokenizer);

}  // namespace flexgen
