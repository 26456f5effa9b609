// `flexgen debug`: a few samples run through the real generation path (SamplePreparer +
// decode_streams, the real mask), traced: paraphrases, segments, mask, isolation, blocks, steps.
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <iostream>
#include <memory>

#include "commands.h"
#include "output_paths.h"
#include "debug_render.h"
#include "flexgen/debug_trace.h"
#include "flexgen/generate_run.h"
#include "flexgen/mask_image.h"
#include "model_options.h"
#include "run_options.h"

namespace flexgen::cli {

namespace {

struct DebugArgs {
  ModelArgs model;
  RunArgs run;
  int64_t max_samples = 1;
  bool verbose = false;
  bool json = false;
  std::string mask_image;
};

// "mask.svg" for the first sample, "mask-2.svg" for the second, ...
std::string image_path(const std::string& path, size_t n) {
  if (n == 0) return path;
  const size_t dot = path.rfind('.');
  return path.substr(0, dot) + "-" + std::to_string(n + 1) + path.substr(dot);
}

int run_debug(DebugArgs& a) {
  finish_run_options(a.run);
  RunOptions& o = a.run.run;
  if (a.max_samples < 1) throw UsageError("--max-samples: must be at least 1");
  o.max_samples = a.max_samples;
  if (!a.mask_image.empty()) {
    const auto ends = [&](const std::string& ext) {
      return a.mask_image.size() > ext.size() && a.mask_image.compare(a.mask_image.size() - ext.size(), ext.size(), ext) == 0;
    };
    if (!ends(".svg") && !ends(".png")) throw UsageError("--mask-image: '" + a.mask_image + "' must end in .svg or .png");
    if (o.method.method != Method::Flex)
      throw UsageError("--mask-image: method " + a.run.method + " has no concatenated mask (use --method flex)");
  }
  {
    const DatasetFiles data = with_flag_messages([&] { return resolve_dataset(o.dataset, o.data_dir); });
    std::vector<FileArg> inputs = model_inputs(a.model);
    inputs.insert(inputs.end(), {{"--dataset", data.test}, {"--dataset", data.train}, {"--train", o.train},
                                 {"--weights", o.weights_file}});
    check_output_paths({{"--mask-image", a.mask_image}}, inputs);
  }

  // Data and decoding, as `generate` has them.
  RunInputs in = with_flag_messages([&] { return load_run_inputs(o); });
  LoadedModel m = load_model_and_tokenizer(a.model);
  const Tokenizer& tok = *m.tokenizer;
  with_flag_messages([&] { check_model_limits(o, m.model.config); });
  DecodeConfig decode = run_decode_config(o, m.model, tok);
  decode.trace_top = 5;

  SamplePreparer preparer(o, tok, in.pool, std::move(in.weights));
  const DatasetFiles& files = in.files;
  const Dataset& ds = in.dataset;
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
  add_run_options(*app, a->run);
  app->add_option("--max-samples", a->max_samples, "Trace the first N samples of the dataset")
      ->check(at_least(1))
      ->capture_default_str();
  app->add_flag("-v,--verbose", a->verbose,
                "Also every generation step (top-5 tokens, chosen token, text so far) and the prefill inputs");
  app->add_option("--mask-image", a->mask_image,
                  "Write the full mask picture to FILE.svg or FILE.png (sample N > 1: FILE-N.svg)");
  app->add_flag("--json", a->json, "Print the whole trace as JSON (one object per sample, one per line) instead of text");
  return Command{app, [a] { return run_debug(*a); }};
}

}  // namespace flexgen::cli
