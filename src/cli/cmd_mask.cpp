// `flexgen mask`: draws the attention mask of a layout given by segment lengths (no model).
#include <spdlog/spdlog.h>

#include <iostream>
#include <memory>

#include "commands.h"
#include "output_paths.h"
#include "flexgen/block_mask.h"
#include "flexgen/layout.h"
#include "flexgen/mask.h"
#include "flexgen/mask_image.h"
#include "flexgen/mask_view.h"

namespace flexgen::cli {

namespace {

struct MaskArgs {
  std::string segments = "48,47,48,49,46";
  int64_t generated = 10;
  bool bos = false;
  int64_t separator_tokens = 0;
  int64_t shared_context = 0;
  std::string positions = "sequential";
  int64_t max_positions = 25;
  bool full = false;
  bool ascii = false;
  int64_t blocks = 0;
  std::string image;
  // --preset myriadlama: the few-shot-sharing layout (BOS, instruction, examples, paraphrases).
  std::string preset = "default";
  int64_t examples = 5;
  int64_t example_question = 30;
  int64_t example_answer = 3;
  CLI::Option* segments_option = nullptr;
  CLI::Option* context_option = nullptr;
};

// MyriadLAMA preset: an instruction (--shared-context, default 13 tokens), --examples few-shot
// examples of --example-question / --example-answer tokens, paraphrases from --segments
// (default 12,11,13,12,10), one BOS.
SequenceLayout myriadlama_layout(const MaskArgs& a, const std::vector<int64_t>& lengths) {
  if (a.examples < 0) throw UsageError("--examples: must not be negative");
  if (a.example_question < 1) throw UsageError("--example-question: must be at least 1");
  if (a.example_answer < 1) throw UsageError("--example-answer: must be at least 1");
  if (a.examples * (a.example_question + a.example_answer) > kMaxSequenceLength)
    throw UsageError("--examples: the few-shot block is over the limit of " + std::to_string(kMaxSequenceLength));
  FewShotSharingLengths in;
  in.bos = true;
  in.instruction = a.context_option->count() > 0 ? a.shared_context : 13;
  in.example_questions.assign(static_cast<size_t>(a.examples), a.example_question);
  in.example_answers.assign(static_cast<size_t>(a.examples), a.example_answer);
  in.paraphrases = lengths;
  in.separator_tokens = a.separator_tokens;
  in.generated = a.generated;
  return layout_few_shot_sharing(in);
}

std::vector<int64_t> parse_segments(const std::string& text) {
  std::vector<int64_t> out;
  if (text.empty()) throw UsageError("--segments: the list is empty (expected e.g. 48,47,48,49,46)");
  size_t at = 0;
  while (true) {
    const size_t comma = text.find(',', at);
    const std::string item = text.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    const std::string where = "--segments: segment " + std::to_string(out.size() + 1);
    if (item.empty()) throw UsageError(where + " is empty (expected positive integers separated by commas)");
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      throw UsageError(where + ": '" + item + "' is not a number");
    }
    if (used != item.size()) throw UsageError(where + ": '" + item + "' is not a number");
    if (v <= 0) throw UsageError(where + ": length " + item + " must be positive");
    if (v > kMaxSequenceLength)
      throw UsageError(where + ": length " + item + " is over the limit of " + std::to_string(kMaxSequenceLength));
    out.push_back(v);
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return out;
}

void require_non_negative(const char* flag, int64_t v) {
  if (v < 0) throw UsageError(std::string(flag) + ": " + std::to_string(v) + " must not be negative");
}

int run_mask(const MaskArgs& a) {
  if (a.preset != "default" && a.preset != "myriadlama")
    throw UsageError("--preset: unknown preset '" + a.preset + "' (expected default or myriadlama)");
  const bool myriadlama = a.preset == "myriadlama";
  const std::vector<int64_t> lengths =
      parse_segments(myriadlama && a.segments_option->count() == 0 ? "12,11,13,12,10" : a.segments);
  require_non_negative("--generated", a.generated);
  require_non_negative("--separator-tokens", a.separator_tokens);
  require_non_negative("--shared-context", a.shared_context);
  if (a.max_positions < 1) throw UsageError("--max-positions: must be at least 1");
  if (a.blocks < 0) throw UsageError("--blocks: block size must be positive");
  PositionMode mode;
  try {
    mode = parse_position_mode(a.positions);
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--positions: ") + e.what());
  }
  int64_t total = a.generated + a.shared_context + (a.bos ? 1 : 0) +
                  a.separator_tokens * static_cast<int64_t>(lengths.size() - 1);
  for (int64_t l : lengths) total += l;
  if (total > kMaxSequenceLength)
    throw UsageError("the sequence would have " + std::to_string(total) + " positions; the limit is " +
                     std::to_string(kMaxSequenceLength));

  check_output_paths({{"--image", a.image}}, {});
  const SequenceLayout layout =
      myriadlama ? myriadlama_layout(a, lengths)
                 : layout_from_lengths(lengths, a.bos, a.shared_context, a.separator_tokens, a.generated);
  const AttentionMask mask = make_attention_mask(layout, default_mask_spec(layout));

  MaskViewOptions view;
  view.max_positions = a.max_positions;
  view.full = a.full;
  view.ascii = a.ascii;
  std::string text;
  try {
    text = render_mask_matrix(layout, mask, view) + render_legend(layout, a.ascii, mode);
    if (a.blocks > 0) {
      const BlockMask blocks = build_block_mask(layout, mask.spec, a.blocks);
      text += "\n" + render_block_view(blocks, a.ascii) + "\n" + render_block_stats(blocks);
    }
    if (!a.image.empty()) write_mask_image(a.image, layout, mask);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  std::cout << text << std::flush;
  if (!a.image.empty()) spdlog::info("wrote the mask picture to {}", a.image);
  return 0;
}

}  // namespace

Command add_mask_command(CLI::App& parent) {
  auto args = std::make_shared<MaskArgs>();
  CLI::App* app = parent.add_subcommand(
      "mask", "Draw the attention mask of a paraphrase layout given by segment lengths (no model needed)");
  args->segments_option =
      app->add_option("--segments", args->segments, "Paraphrase segment lengths, comma-separated")
          ->capture_default_str();
  app->add_option("--generated", args->generated, "Generated tokens after the prompt")->capture_default_str();
  app->add_flag("--bos", args->bos, "Start with a BOS token (visible to every segment)");
  app->add_option("--separator-tokens", args->separator_tokens,
                  "Separator tokens between segments (each run sees BOS and itself)")
      ->capture_default_str();
  args->context_option = app->add_option("--shared-context", args->shared_context,
                                          "Shared-context tokens before the segments (visible to every segment)")
                             ->capture_default_str();
  app->add_option("--positions", args->positions,
                  "Position ids: sequential (0..L-1) or restart (each segment restarts after the shared part)")
      ->capture_default_str();
  app->add_option("--max-positions", args->max_positions, "Sampled rows/columns of the matrix")
      ->capture_default_str();
  app->add_flag("--full", args->full, "Draw every position (up to 512)");
  app->add_flag("--ascii", args->ascii, "Use '#'/'.' and no emoji");
  app->add_option("--blocks", args->blocks, "Also draw the block mask for this block size, with statistics");
  app->add_option("--image", args->image, "Write the full mask picture to FILE.svg or FILE.png");
  app->add_option("--preset", args->preset,
                  "default, or myriadlama: the few-shot-sharing layout (BOS, instruction = --shared-context or 13, "
                  "examples, paraphrases = --segments or 12,11,13,12,10)")
      ->capture_default_str();
  app->add_option("--examples", args->examples, "myriadlama: few-shot examples")->capture_default_str();
  app->add_option("--example-question", args->example_question, "myriadlama: tokens of each example's questions")
      ->capture_default_str();
  app->add_option("--example-answer", args->example_answer, "myriadlama: tokens of each example's answer")
      ->capture_default_str();
  return Command{app, [args] { return run_mask(*args); }};
}

}  // namespace flexgen::cli
