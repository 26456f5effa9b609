// `flexgen generate`: the main job (paraphrase-ensemble generation, scored JSONL out).
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <thread>

#include "commands.h"
#include "flexgen/build_info.h"
#include "flexgen/compute_device.h"
#include "flexgen/cpu_isa.h"
#include "flexgen/generate_run.h"
#include "flexgen/model_loader.h"
#include "flexgen/runtime_info.h"
#include "model_options.h"
#include "interrupt.h"
#include "output_paths.h"
#include "progress.h"
#include "run_options.h"

namespace flexgen::cli {

namespace {

struct GenerateArgs {
  ModelArgs model;
  RunArgs run;
  std::string shard;
  std::string format = "jsonl";
  std::string summary_file;
  int64_t max_samples = -1;
  bool fast_batching = false;
  bool kv_reuse = false, no_kv_reuse = false;
  int64_t kv_store_mb = 1024;
};

// Where the run computed: the device, and on the CPU the kernel path and threads.
nlohmann::json compute_json(const LlamaModel& m) {
  nlohmann::json j = {{"device", m.device.str()}, {"dtype", dtype_name(m.dtype)}};
  if (m.device.is_cpu()) {
    j["cpu_kernels"] = to_string(cpu_isa());
    if (dtype_name(m.dtype) == "bf16") j["cpu_linear_many_rows"] = to_string(bf16_linear_isa(kLinearManyRows));
    j["threads"] = cpu_threads();
  }
  return j;
}

// What a reader needs to reproduce the run: this flexgen, the model and what identifies its weights,
// where and how it computed, and the seeds. Batch invariance: on the CPU a sample's result does not
// depend on the batch, shard or kernel path (bitwise); on CUDA unless --fast-batching.
nlohmann::json provenance_json(const ModelArgs& args, const LlamaModel& m, const RunOptions& o) {
  return {{"flexgen_version", FLEXGEN_VERSION},
          {"model", args.model},
          {"model_fingerprint", m.fingerprint},
          {"dtype", dtype_name(m.dtype)},
          {"device_kind", m.device.is_cuda() ? "cuda" : "cpu"},
          {"batch_invariant", m.device.is_cpu() || o.decode.batch_invariant},
          {"seed", o.seed},
          {"few_shot_seed", o.few_shot_seed}};
}

nlohmann::json summary_json(const RunSummary& s, const RunOptions& o) {
  const double prefill_tps = s.stats.prefill_seconds > 0 ? s.stats.prefill_tokens / s.stats.prefill_seconds : 0;
  const double decode_tps = s.stats.decode_seconds > 0 ? s.stats.decode_tokens / s.stats.decode_seconds : 0;
  return {{"method", to_string(o.method.method)},
          {"dataset", o.dataset},
          {"shard", to_string(o.shard)},
          {"samples", s.samples},
          {"rows", s.rows},
          {"skipped_done", s.skipped_done},
          {"skipped_bad", s.skipped_bad},
          {"accuracy", s.score.accuracy()},
          {"accuracy_bidirectional", s.score.bidirectional()},
          {"exact_match", s.score.exact()},
          {"wall_seconds", s.wall_seconds},
          {"samples_per_second", s.wall_seconds > 0 ? s.samples / s.wall_seconds : 0},
          {"prefill_tokens", s.stats.prefill_tokens},
          {"prefill_passes", s.stats.prefill_passes},
          {"prefill_tokens_per_second", prefill_tps},
          {"decode_tokens", s.stats.decode_tokens},
          {"decode_tokens_per_second", decode_tps},
          {"decode_steps", s.stats.decode_steps},
          {"decode_step_ms", s.stats.decode_steps > 0 ? 1e3 * s.stats.step_forward_seconds / s.stats.decode_steps : 0.0},
          {"peak_rss_bytes", s.peak_rss_bytes},
          {"kv_reuse",
           {{"enabled", o.decode.kv_reuse},
            {"prompt_tokens_computed",
             s.stats.prefill_tokens - s.stats.prefill_tokens_reused - s.stats.prefill_tokens_copied},
            {"prompt_tokens_reused", s.stats.prefill_tokens_reused},
            {"prompt_tokens_copied", s.stats.prefill_tokens_copied},
            {"store_entries", s.stats.kv_store_entries},
            {"store_peak_bytes", s.stats.kv_store_peak_bytes},
            {"store_limit_mb", o.decode.kv_store_bytes >> 20}}}};
}

int run(GenerateArgs& a) {
  finish_run_options(a.run);
  RunOptions& o = a.run.run;
  try {
    o.format = parse_output_format(a.format);
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--format: ") + e.what());
  }
  try {
    o.shard = a.shard.empty() ? shard_from_environment() : parse_shard(a.shard);
  } catch (const std::invalid_argument& e) {
    // RANK/WORLD_SIZE messages name their variables; a --shard value is named here.
    throw UsageError(a.shard.empty() ? e.what() : std::string("--shard: ") + e.what());
  }
  if (o.batch_size < 1) throw UsageError("--batch-size: must be at least 1");
  if (a.max_samples >= 0) o.max_samples = a.max_samples;
  o.decode.batch_invariant = !a.fast_batching;
  // FLEXGEN_DECODE_OVERLAP=0: every decode step waits for the host's picks (A/B of the overlap;
  // the same records).
  if (const char* v = std::getenv("FLEXGEN_DECODE_OVERLAP"); v != nullptr && *v != 0) {
    if (std::string(v) != "0" && std::string(v) != "1")
      throw UsageError(std::string("FLEXGEN_DECODE_OVERLAP must be 0 or 1, got '") + v + "'");
    o.decode.overlap_steps = std::string(v) == "1";
  }
  if (a.kv_reuse && a.no_kv_reuse) throw UsageError("--kv-reuse, --no-kv-reuse: give one of them");
  if (a.kv_store_mb < 0) throw UsageError("--kv-store-mb: must be at least 0");
  o.decode.kv_store_bytes = a.kv_store_mb << 20;
  if (o.resume && (o.output.empty() || o.output == "-")) throw UsageError("--resume needs --output FILE");
  // Per-rank file names: {rank}/{world} are the shard's; N shards must not share one file.
  try {
    check_shard_path(Setting::RecordsFile, o.output, o.shard);
    check_shard_path(Setting::SummaryFile, a.summary_file, o.shard);
    check_shard_path(Setting::TokenIdsFile, o.save_tokens, o.shard);
  } catch (const SettingProblem& p) {
    throw UsageError(flag_message(p));
  }
  o.output = shard_path(o.output, o.shard);
  a.summary_file = shard_path(a.summary_file, o.shard);
  o.save_tokens = shard_path(o.save_tokens, o.shard);

  // Every output checked before the model loads: writable, and never one of the inputs.
  const DatasetFiles data = with_flag_messages([&] { return resolve_dataset(o.dataset, o.data_dir); });
  std::vector<FileArg> inputs = model_inputs(a.model);
  inputs.insert(inputs.end(), {{"--dataset", data.test}, {"--dataset", data.train}, {"--train", o.train},
                               {"--weights", o.weights_file}});
  check_output_paths({{"--output", o.output}, {"--summary", a.summary_file}, {"--save-tokens", o.save_tokens}}, inputs);

  catch_interrupts();
  o.interrupted = [] { return interrupt_signal() != 0; };
  LoadedModel m = load_model_and_tokenizer(a.model);
  // On CUDA, --fast-batching prefills samples of any prompt length together (left-padded), which
  // the store's [prefix][padding][rest] layout would forbid: the store is off there.
  const bool grouped_gpu = m.model.device.is_cuda() && a.fast_batching;
  if (grouped_gpu && a.kv_reuse)
    throw UsageError("--kv-reuse: not with --fast-batching on CUDA (its grouped prefill pads rows where the store "
                     "needs the prefix at slot 0); give one of them");
  o.decode.kv_reuse = !a.no_kv_reuse && !grouped_gpu;
  const nlohmann::json provenance = provenance_json(a.model, m.model, o);
  o.record_run = provenance.dump();
  Progress progress;
  o.on_progress = [&progress](size_t done, size_t total, const ScoreSummary& score) {
    progress.update(done, total, score);
  };
  const RunSummary s = with_flag_messages([&] { return run_generate(o, m.model, *m.tokenizer); });
  o.on_progress = nullptr;
  if (s.interrupted) progress.stop();
  nlohmann::json j = summary_json(s, o);
  if (s.interrupted) j["interrupted"] = true;
  j["compute"] = compute_json(m.model);
  j["provenance"] = provenance;
  spdlog::info("{}: {} samples ({} rows), accuracy {:.4f} (bidirectional {:.4f}, exact {:.4f})",
               s.interrupted ? "interrupted" : "done", s.samples, s.rows,
               s.score.accuracy(), s.score.bidirectional(), s.score.exact());
  const nlohmann::json& kv = j["kv_reuse"];
  spdlog::info("prompt tokens: {} computed, {} reused from the run-level KV store ({}; {} prefixes, {:.1f} of {} MB)",
               kv["prompt_tokens_computed"].get<int64_t>(), kv["prompt_tokens_reused"].get<int64_t>(),
               o.decode.kv_reuse ? "on" : "off", kv["store_entries"].get<int64_t>(),
               kv["store_peak_bytes"].get<int64_t>() / 1048576.0, a.kv_store_mb);
  spdlog::info("{:.2f} samples/s in {:.1f} s; prefill {:.1f} tok/s, decode {:.2f} tok/s; peak memory {:.2f} GB",
               j["samples_per_second"].get<double>(), s.wall_seconds, j["prefill_tokens_per_second"].get<double>(),
               j["decode_tokens_per_second"].get<double>(), s.peak_rss_bytes / 1e9);
  const nlohmann::json& c = j["compute"];
  if (m.model.device.is_cpu())
    spdlog::info("computed on the CPU: {} kernels, {} threads, {}", c["cpu_kernels"].get<std::string>(),
                 c["threads"].get<int>(), c["dtype"].get<std::string>());
  if (s.skipped_done || s.skipped_bad)
    spdlog::info("skipped: {} already done, {} bad", s.skipped_done, s.skipped_bad);
  if (!a.summary_file.empty()) {
    std::ofstream f(a.summary_file);
    if (!(f << j.dump(2) << "\n")) throw std::runtime_error(a.summary_file + ": cannot write the summary");
  }
  if (s.interrupted) {
    const int sig = interrupt_signal();
    const int64_t done = s.samples + s.skipped_done + s.skipped_bad;
    std::cerr << "flexgen: interrupted by " << signal_name(sig) << " after " << done << " of " << s.total
              << " samples; "
              << (o.output == "-" ? "the records so far are on stdout (--resume needs --output FILE)"
                                  : "rerun the same command with --resume to continue")
              << std::endl;
    return 128 + sig;
  }
  return 0;
}

}  // namespace

Command add_generate_command(CLI::App& parent) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* app = parent.add_subcommand("generate", "Answer questions with a paraphrase ensemble; scored JSONL out");
  add_model_options(*app, a->model);
  add_run_options(*app, a->run);
  RunOptions& o = a->run.run;
  app->add_option("--max-samples", a->max_samples, "Run the first N samples of the dataset")->check(at_least(1));
  app->add_option("--shard", a->shard, "I/N: run samples i with i mod N == I (default from RANK/WORLD_SIZE or SLURM); "
                  "with N > 1 put {rank} in --output/--summary and join the parts with `flexgen merge`");
  app->add_option("--batch-size", o.batch_size,
                  "Samples in flight: decoded together, a finished sample's rows take the next one")
      ->check(at_least(1))
      ->capture_default_str();
  app->add_flag("--fast-batching", a->fast_batching,
                "GPU: prefill samples admitted together in one pass and batch the decode GEMMs (faster at large "
                "batches; a sample's tokens may then depend on the batch). Off: results do not depend on the batch");
  app->add_flag("--kv-reuse", a->kv_reuse,
                "The default: compute the K/V of the prompt prefix rows share (BOS + instruction + few-shot) once "
                "per run and prefill only the rest; records are bitwise those without it. Off with "
                "--fast-batching on CUDA");
  app->add_flag("--no-kv-reuse", a->no_kv_reuse, "Encode every row's whole prompt (no run-level KV store)");
  app->add_option("--kv-store-mb", a->kv_store_mb,
                  "Bound of the run-level KV store in MiB (least recently used prefixes out; 0 = store nothing)")
      ->capture_default_str();
  app->add_option("--save-tokens", o.save_tokens,
                  "Also write each sample's token ids (bos, shared context, paraphrases, separator) as JSONL; "
                  "{rank}/{world} as in --output");
  app->add_flag("--skip-bad", o.skip_bad, "Skip bad records (logged) instead of stopping");
  app->add_option("--output,-o", o.output,
                  "Output file (- = stdout; its folder must exist; never an input file); {rank} and {world} become "
                  "the shard's I and N (needed when N > 1)")
      ->capture_default_str();
  app->add_flag("--resume", o.resume,
                "Keep the rows already in --output and run the rest; they must be whole results of --format from "
                "this configuration (method, paraphrases, model), else the file is refused untouched. After SIGINT/"
                "SIGTERM/SIGHUP (exit 130/143/129) rerun the same command with --resume");
  app->add_option("--format", a->format, "jsonl or csv")->capture_default_str();
  app->add_option("--summary", a->summary_file,
                  "Also write the summary as JSON to this file (\"interrupted\": true after a signal); {rank}/{world} "
                  "as in --output");
  return Command{app, [a] { return run(*a); }};
}

}  // namespace flexgen::cli
