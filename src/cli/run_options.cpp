#include "run_options.h"

#include "commands.h"
#include "flexgen/text_escape.h"

namespace flexgen::cli {

void add_run_options(CLI::App& app, RunArgs& a) {
  RunOptions& o = a.run;
  app.add_option("--dataset", o.dataset, "webqa, myriadlama, FILE.jsonl/.csv/.json, or - (stdin)")->capture_default_str();
  app.add_option("--data-dir", o.data_dir, "Folder of the full datasets (default: $FLEXGEN_DATA, else bundled)");
  app.add_option("--train", o.train, "Few-shot pool file (default: the dataset's train file)");
  app.add_option("--method", a.method, "flex|origin|per_prompt|avg|max|weighted_avg|weighted_max")->capture_default_str();
  app.add_option("--num-paraphrases", a.num_paraphrases, "Use the first P paraphrases")
      ->check(at_least(1))
      ->capture_default_str();
  app.add_option("--indexes", a.indexes, "Use exactly these paraphrases, e.g. 0,2,4");
  app.add_option("--separator", a.separator, "Between paraphrase prompts (flex); escapes like \\n understood")
      ->capture_default_str();
  app.add_option("--few-shot", o.few_shot, "Few-shot examples in each prompt")->check(at_least(0))->capture_default_str();
  app.add_option("--few-shot-seed", o.few_shot_seed, "Seed of the few-shot draw")
      ->check(at_least(0))
      ->capture_default_str();
  app.add_flag("--shared-context", o.shared_context,
               "Encode the instruction and few-shot block once, visible to every paraphrase (MyriadLAMA: as "
               "the few-shot-sharing groups: each example's answer line sees its own question line only)");
  app.add_flag("--chat", o.chat,
               "Wrap prompts in the model's instruct chat format: LLaMA-3 headers, or ChatML for Qwen2 "
               "(<|im_start|>user ... <|im_end|>, with Qwen2.5's default system turn when its template has one)");
  app.add_option("--positions", a.positions, "flex position ids: sequential or restart (restart: paraphrases 2.. take paraphrase 1's instruction K/V)")->capture_default_str();
  app.add_option("--fusion", a.fusion, "flex first token: generated or segment-logits")->capture_default_str();
  app.add_option("--block-size", o.decode.block_size, "Block size of the block mask (at most the model's context)")
      ->check(at_least(1))
      ->capture_default_str();
  app.add_option("--weights", o.weights_file, "Per-paraphrase weights (JSONL) for weighted_avg/weighted_max");
  app.add_option("--max-new-tokens", o.method.max_new_tokens, "Generated tokens at most (below the model's context)")
      ->check(at_least(1))
      ->capture_default_str();
  app.add_option("--stop", a.stop, "Comma list of eos, newline, literal strings, or none")->capture_default_str();
  app.add_option("--temperature", o.decode.sampling.temperature, "0 = greedy")->capture_default_str();
  app.add_option("--top-k", o.decode.sampling.top_k, "Sample from the k most likely tokens (0 = all)")
      ->check(at_least(0))
      ->capture_default_str();
  app.add_option("--top-p", o.decode.sampling.top_p, "Nucleus sampling mass")->capture_default_str();
  app.add_option("--seed", o.seed, "Sampling seed (sample i uses seed + i)")->check(at_least(0))->capture_default_str();
}

void finish_run_options(RunArgs& a) {
  RunOptions& o = a.run;
  // A parse error of one flag's value, said with the flag (unless the message has it already).
  auto parse = [](const char* flag, auto&& f) {
    try {
      f();
    } catch (const SettingProblem& p) {
      throw UsageError(flag_message(p));
    } catch (const std::invalid_argument& e) {
      const std::string m = e.what();
      throw UsageError(m.rfind(std::string(flag) + ":", 0) == 0 ? m : std::string(flag) + ": " + m);
    }
  };
  parse("--method", [&] { o.method.method = parse_method(a.method); });
  parse("--positions", [&] { o.method.positions = parse_position_mode(a.positions); });
  parse("--fusion", [&] { o.method.fusion = parse_fusion(a.fusion); });
  parse("--separator", [&] { o.separator = unescape_text(a.separator); });
  parse("--stop", [&] { o.decode.stops = parse_stop_criteria(a.stop); });
  parse("--temperature", [&] { o.decode.sampling.validate(); });
  parse("--indexes", [&] {
    if (!a.indexes.empty()) o.selection.indexes = parse_index_list(a.indexes);
  });
  if (o.separator.empty()) throw UsageError("--separator: must not be empty");
  o.selection.count = a.num_paraphrases;
  try {
    o.selection.validate();
  } catch (const SettingProblem& p) {
    throw UsageError(flag_message(p));
  }
  if (o.method.max_new_tokens < 1) throw UsageError("--max-new-tokens: must be at least 1");
  if (o.decode.block_size < 1) throw UsageError("--block-size: must be positive");
  try {
    check_run_options(o);
  } catch (const SettingProblem& p) {
    if (p.setting == Setting::Weights) throw UsageError("--method " + a.method + " needs --weights FILE.jsonl");
    throw UsageError(flag_message(p));
  }
}

std::string flag_message(const SettingProblem& p) {
  const char* flag = "";
  std::string hint;
  switch (p.setting) {
    case Setting::DataFolder:
      if (p.value.empty()) return p.problem + "; give --data-dir or set FLEXGEN_DATA";
      flag = "--data-dir";
      break;
    case Setting::Dataset: flag = "--dataset"; break;
    case Setting::FewShotCount:
      flag = "--few-shot";
      hint = " (give --train FILE or --few-shot 0)";
      break;
    case Setting::ParaphraseCount: flag = "--num-paraphrases"; break;
    case Setting::Weights: flag = "--weights"; break;
    case Setting::Temperature: flag = "--temperature"; break;
    case Setting::TopK: flag = "--top-k"; break;
    case Setting::TopP: flag = "--top-p"; break;
    case Setting::StopCriteria: flag = "--stop"; break;
    case Setting::TokenIdsFile: flag = "--save-tokens"; break;
    case Setting::RecordsFile: flag = "--output"; break;
    case Setting::SummaryFile: flag = "--summary"; break;
    case Setting::MaxNewTokens: flag = "--max-new-tokens"; break;
    case Setting::BlockSize: flag = "--block-size"; break;
  }
  return std::string(flag) + (p.value.empty() ? "" : " " + p.value) + ": " + p.problem + hint;
}

}  // namespace flexgen::cli
