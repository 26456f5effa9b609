// `flexgen debug`: a few samples run through the real generation path (SamplePreparer +
// decode_streams, the real mask), traced: paraphrases, segments, mask, isolation, blocks, steps.
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <iostream>
#include <memory>

#include "commands.h"
#include "flexgen/debug_trace.h"
#include "flexgen/generate_run.h"
#include "flexgen/mask_image.h"
#include "flexgen/text_escape.h"
#include "model_options.h"

namespace flexgen::cli {

namespace {

struct DebugArgs {
  ModelArgs model;
  RunOptions run;
  std::string method = "flex";
  std::string positions = "sequential";
  std::string fusion = "generated";
  std::string indexes;
  size_t num_paraphrases = 5;
  std::string separator = "\\n\\n[SEP]\\n\\n";
  std::string stop = "eos,newline";
  int64_t max_samples = 1;
  bool verbose = false;
  bool json = false;
  std::string mask_image;
};

template <class F>
auto usage(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
}

// "mask.svg" for the first sample, "mask-2.svg" for the second, ...
std::string image_path(const std::string& path, size_t n) {
  if (n == 0) return path;
  const size_t dot = path.rfind('.');
  return path.substr(0, dot) + "-" + std::to_string(n + 1) + path.substr(dot);
}

int run_debug(DebugArgs& a) {
  RunOptions& o = a.run;
  usage([&] {
    o.method.method = parse_method(a.method);
    o.method.positions = parse_position_mode(a.positions);
    o.method.fusion = parse_fusion(a.fusion);
    o.separator = unescape_text(a.separator);
    o.decode.stops = parse_stop_criteria(a.stop);
    o.decode.sampling.validate();
    if (!a.indexes.empty()) o.selection.indexes = parse_index_list(a.indexes);
    return 0;
  });
  if (o.separator.empty()) throw UsageError("--separator: must not be empty");
  if (a.num_paraphrases < 1) throw UsageError("--num-paraphrases: must be at least 1");
  o.selection.count = a.num_paraphrases;
  if (o.method.max_new_tokens < 1) throw UsageError("--max-new-tokens: must be at least 1");
  if (a.max_samples < 1) throw UsageError("--max-samples: must be at least 1");
  o.max_samples = a.max_samples;
  if (o.decode.block_size < 1) throw UsageError("--block-size: must be positive");
  if (!a.mask_image.empty()) {
    const auto ends = [&](const std::string& ext) {
      return a.mask_image.size() > ext.size() && a.mask_image.compare(a.mask_image.size() - ext.size(), ext.size(), ext) == 0;
    };
    if (!ends(".svg") && !ends(".png")) throw UsageError("--mask-image: '" + a.mask_image + "' must end in .svg or .png");
    if (o.method.method != Method::Flex)
      throw UsageError("--mask-image: method " + a.method + " has no concatenated mask (use --method flex)");
  }
  const bool weighted = o.method.method == Method::WeightedAvg || o.method.method == Method::WeightedMax;
  if (weighted && o.weights_file.empty()) throw UsageError("--method " + a.method + " needs --weights FILE.jsonl");

  // Data, as `generate` reads it.
  const DatasetFiles files = resolve_dataset(o.dataset, o.data_dir);
  const Dataset ds = read_dataset(files.test);
  std::vector<Sample> pool;
  const std::string pool_path = o.train.empty() ? files.train : o.train;
  if (!pool_path.empty()) {
    DatasetReadOptions pool_options;
    pool_options.unique_uuids = false;
    pool = read_dataset(pool_path, pool_options).samples;
  }
  const bool needs_pool = std::any_of(ds.samples.begin(), ds.samples.end(),
                                      [](const Sample& s) { return s.kind != SampleKind::RawPrompts; });
  if (needs_pool && o.few_shot > 0 && pool.size() < o.few_shot)
    throw UsageError("--few-shot " + std::to_string(o.few_shot) + ": the few-shot pool has " +
                     std::to_string(pool.size()) + " records (give --train FILE or --few-shot 0)");
  WeightTable weights = o.weights_file.empty() ? WeightTable{} : read_weights(o.weights_file);

  LoadedModel m = load_model_and_tokenizer(a.model);
  const Tokenizer& tok = *m.tokenizer;
  DecodeConfig decode = o.decode;
  decode.max_new_tokens = o.method.max_new_tokens;
  decode.trace_top = 5;
  decode.stops.eos_ids.assign(m.model.config.eos_token_ids.begin(), m.model.config.eos_token_ids.end());
  if (decode.stops.eos_ids.empty() && tok.eos_id()) decode.stops.eos_ids.push_back(*tok.eos_id());
  if (tok.eos_id()) decode.pad_id = *tok.eos_id();

  SamplePreparer preparer(o, tok, pool, std::move(weights));
  const std::vector<size_t> indices = select_samples(ds.samples.size(), Shard{}, o.max_samples);
  spdlog::info("dataset {}: {} records, tracing {}", files.test, ds.samples.size(), indices.size());
  for (size_t n = 0; n < indices.size(); ++n) {
    const size_t idx = indices[n];
    const PreparedSample p = preparer.prepare(ds.samples[idx], o.seed + idx);
    const std::vector<StreamResult> results = decode_streams(m.model, tok, p.plan.rows, p.plan.streams, decode);
    const SampleTrace trace = make_sample_trace(p, results, tok, o.method.method, o.method.positions,
                                                o.decode.block_size, o.selection.seed);
    if (a.json) {
      std::cout << sample_trace_json(trace, tok).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n"
                << std::flush;
    } else {
      std::cout << render_sample_trace(trace, tok, a.verbose) << std::flush;
    }
    if (!a.mask_image.empty() && trace.layout) {
      const std::string path = image_path(a.mask_image, n);
      try {
        write_mask_image(path, *trace.layout, *trace.mask);
      } catch (const std::invalid_argument& e) {
        throw UsageError(std::string("--mask-image: ") + e.what());
      }
      spdlog::info("wrote the mask picture of {} to {}", trace.uuid, path);
    }
  }
  return 0;
}

}  // namespace

Command add_debug_command(CLI::App& parent) {
  auto a = std::make_shared<DebugArgs>();
  CLI::App* app = parent.add_subcommand(
      "debug", "Trace a few samples through the real generation path: paraphrases, segments, mask, steps");
  add_model_options(*app, a->model);
  RunOptions& o = a->run;
  app->add_option("--dataset", o.dataset, "webqa, myriadlama, FILE.jsonl/.csv/.json, or - (stdin)")
      ->capture_default_str();
  app->add_option("--data-dir", o.data_dir, "Folder of the full datasets (default: $FLEXGEN_DATA, else bundled)");
  app->add_option("--train", o.train, "Few-shot pool file (default: the dataset's train file)");
  app->add_option("--method", a->method, "flex|origin|per_prompt|avg|max|weighted_avg|weighted_max")
      ->capture_default_str();
  app->add_option("--num-paraphrases", a->num_paraphrases, "Use the first P paraphrases")->capture_default_str();
  app->add_option("--indexes", a->indexes, "Use exactly these paraphrases, e.g. 0,2,4");
  app->add_option("--separator", a->separator, "Between paraphrase prompts (flex); escapes like \\n understood")
      ->capture_default_str();
  app->add_option("--few-shot", o.few_shot, "Few-shot examples in each prompt")->capture_default_str();
  app->add_option("--few-shot-seed", o.few_shot_seed, "Seed of the few-shot draw")->capture_default_str();
  app->add_flag("--shared-context", o.shared_context,
                "Encode the instruction and few-shot block once, visible to every paraphrase");
  app->add_flag("--chat", o.chat, "Wrap prompts in the LLaMA-3 instruct chat format");
  app->add_option("--positions", a->positions, "flex position ids: sequential or restart")->capture_default_str();
  app->add_option("--fusion", a->fusion, "flex first token: generated or segment-logits")->capture_default_str();
  app->add_option("--block-size", o.decode.block_size, "Block size of the block mask")->capture_default_str();
  app->add_option("--weights", o.weights_file, "Per-paraphrase weights (JSONL) for weighted_avg/weighted_max");
  app->add_option("--max-new-tokens", o.method.max_new_tokens, "Generated tokens at most")->capture_default_str();
  app->add_option("--stop", a->stop, "Comma list of eos, newline, literal strings, or none")->capture_default_str();
  app->add_option("--temperature", o.decode.sampling.temperature, "0 = greedy")->capture_default_str();
  app->add_option("--top-k", o.decode.sampling.top_k, "Sample from the k most likely tokens (0 = all)")
      ->capture_default_str();
  app->add_option("--top-p", o.decode.sampling.top_p, "Nucleus sampling mass")->capture_default_str();
  app->add_option("--seed", o.seed, "Sampling seed (sample i uses seed + i, as in generate)")->capture_default_str();
  app->add_option("--max-samples", a->max_samples, "Trace the first N samples of the dataset")->capture_default_str();
  app->add_flag("-v,--verbose", a->verbose,
                "Also every generation step (top-5 tokens, chosen token, text so far) and the prefill inputs");
  app->add_option("--mask-image", a->mask_image,
                  "Write the full mask picture to FILE.svg or FILE.png (sample N > 1: FILE-N.svg)");
  app->add_flag("--json", a->json, "Print the whole trace as JSON (one object per sample, one per line) instead of text");
  return Command{app, [a] { return run_debug(*a); }};
}

}  // namespace flexgen::cli
