// `flexgen paraphrase`: makes the paraphrase columns of a raw QA file with the model.
#include <spdlog/spdlog.h>

#include <memory>

#include "commands.h"
#include "flexgen/paraphrase.h"
#include "model_options.h"
#include "output_paths.h"
#include "run_options.h"

namespace flexgen::cli {

namespace {

struct ParaphraseArgs {
  ModelArgs model;
  ParaphraseOptions run;
  int64_t max_samples = -1;
};

int run_paraphrase_command(ParaphraseArgs& a) {
  ParaphraseOptions& o = a.run;
  if (o.max_new_tokens < 1) throw UsageError("--max-new-tokens: must be at least 1");
  if (!(o.temperature > 0)) throw UsageError("--temperature: must be positive (paraphrases are sampled)");
  if (!(o.top_p > 0 && o.top_p <= 1)) throw UsageError("--top-p: must be in (0, 1]");
  if (o.resume && (o.output.empty() || o.output == "-")) throw UsageError("--resume needs --output FILE");
  if (a.max_samples >= 0) o.max_samples = a.max_samples;
  std::vector<FileArg> inputs = model_inputs(a.model);
  inputs.push_back({"--dataset", o.input});
  check_output_paths({{"--output", o.output}}, inputs);
  LoadedModel m = load_model_and_tokenizer(a.model);
  const ParaphraseSummary s = with_flag_messages([&] { return run_paraphrase(o, m.model, *m.tokenizer); });
  spdlog::info("done: {} records written, {} already there, {} empty outputs replaced by the question", s.written,
               s.skipped_done, s.empty_outputs);
  return 0;
}

}  // namespace

Command add_paraphrase_command(CLI::App& parent) {
  auto a = std::make_shared<ParaphraseArgs>();
  CLI::App* app = parent.add_subcommand(
      "paraphrase", "Make the paraphrase columns of a raw QA file with the model (JSONL ready for generate)");
  add_model_options(*app, a->model);
  ParaphraseOptions& o = a->run;
  app->add_option("--dataset,--input", o.input,
                  "QA file: our JSONL, the reference's paraphrase columns, or the WebQuestions release (- = stdin)")
      ->required();
  app->add_option("--output,-o", o.output, "Output JSONL (- = stdout)")->capture_default_str();
  app->add_flag("--resume", o.resume, "Keep the records already in --output and run the rest");
  app->add_option("--max-samples", a->max_samples, "Paraphrase the first N records")->check(at_least(1));
  app->add_option("--max-new-tokens", o.max_new_tokens, "Generated tokens per paraphrase at most")
      ->capture_default_str();
  app->add_option("--temperature", o.temperature, "Sampling temperature")->capture_default_str();
  app->add_option("--top-p", o.top_p, "Nucleus sampling mass")->capture_default_str();
  app->add_option("--seed", o.seed, "Round i samples with seed + i")->check(at_least(0))->capture_default_str();
  return Command{app, [a] { return run_paraphrase_command(*a); }};
}

}  // namespace flexgen::cli
