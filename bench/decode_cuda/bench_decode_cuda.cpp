// bench_decode_cuda: where the time of one GPU decode step goes (issue 16, "GPU decode at the
// memory-bandwidth limit"). On a random-weight Llama-3.2-1B or -3B built on the GPU, in one run: the
// GPU's copy and read bandwidth, every kernel of a decode step alone (batch 1, or --batch rows; time per launch, bytes,
// fraction of the bandwidth), and the whole step through DecodeState against the sum of its kernels and
// against the ideal step (the weights read once at the measured read bandwidth). Prints ONE JSON
// document on stdout; progress on stderr. See README.md here.
//
//   bench_decode_cuda [--shape 1b|3b] [--dtype bf16|fp16] [--context 600] [--reps 200] [--steps 64]
//                     [--batch 1] [--timeline FILE] [--profile-prefill]
//
// Exit status: 0 done; 2 usage error, or no CUDA device; 1 any other failure (e.g. a dtype the library
// refuses: its message is printed).
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string>

#include "bandwidth.h"
#include "bench_args.h"
#include "clock.h"
#include "cuda/block_sparse_attention_cuda.h"
#include "flexgen/build_info.h"
#include "flexgen/compute_device.h"
#include "flexgen/decode_state.h"
#include "flexgen/model_config.h"
#include "flexgen/model_loader.h"
#include "flexgen/runtime_info.h"
#include "gpu_name.h"
#include "kernels.h"
#include "progress.h"
#include "random_llama.h"
#include "step.h"
#include "timeline.h"

namespace {

using bench_decode::no_cuda_reason;
using bench_decode::parse_count;
using bench_decode::progress;
using json = nlohmann::ordered_json;

constexpr const char* kUsage =
    "usage: bench_decode_cuda [--shape 1b|3b] [--dtype bf16|fp16] [--context N] [--reps N] [--steps N] [--batch N]\n"
    "                         [--timeline FILE] [--profile-prefill]\n"
    "  --shape    Llama-3.2 shape of the random-weight model (default 1b)\n"
    "  --dtype    compute dtype (default bf16)\n"
    "  --context  tokens in the KV cache when a step runs (default 600)\n"
    "  --reps     CUDA-graph replays per kernel (default 200)\n"
    "  --steps    timed decode steps (default 64)\n"
    "  --batch    rows decoded at once, each with its own cache (default 1)\n"
    "  --timeline the last graph-replayed step's per-CTA kernel stamps into FILE, and each kernel's share\n"
    "             of the step into the JSON (\"timeline\"); needs a build configured with\n"
    "             -DFLEXGEN_CUDA_TIMELINE=ON\n"
    "  --profile-prefill  after the timed prefill passes, one more, the only work queued while the\n"
    "             CUDA profiler collects: its kernels alone under `ncu --profile-from-start off`\n";

struct Options {
  std::string shape = "1b";
  std::string dtype = "bf16";
  int64_t context = 600;
  int64_t reps = 200;
  int64_t steps = 64;
  int64_t batch = 1;
  std::string timeline;  // --timeline FILE
  bool profile_prefill = false;
};

constexpr int64_t kLimitBufferBytes = int64_t{2} << 30;  // 2 GiB per buffer
constexpr int kLimitRuns = 7;
constexpr int kLimitOpsPerRun = 5;
constexpr int64_t kBlockSize = 128;  // the block masks' (DecodeStateOptions' default)
constexpr uint64_t kSeed = 0;

int usage(const std::string& msg) {
  std::cerr << "bench_decode_cuda: " << msg << "\n" << kUsage;
  return 2;
}



json config_json(const flexgen::ModelConfig& c) {
  return {{"hidden", c.hidden_size},   {"layers", c.num_layers},         {"heads", c.num_heads},
          {"kv_heads", c.num_kv_heads}, {"head_dim", c.head_dim},       {"intermediate", c.intermediate_size},
          {"vocab", c.vocab_size},      {"tied_embeddings", c.tie_word_embeddings}};
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::cout << kUsage;
      return 0;
    }
    if (a == "--profile-prefill") {
      o.profile_prefill = true;
      continue;
    }
    if (a != "--shape" && a != "--dtype" && a != "--context" && a != "--reps" && a != "--steps" &&
        a != "--batch" && a != "--timeline")
      return usage("unknown argument \"" + a + "\"");
    if (i + 1 >= argc) return usage(a + " needs a value");
    const std::string v = argv[++i];
    try {
      if (a == "--shape") o.shape = v;
      else if (a == "--dtype") o.dtype = v;
      else if (a == "--context") o.context = parse_count(a, v);
      else if (a == "--reps") o.reps = parse_count(a, v);
      else if (a == "--steps") o.steps = parse_count(a, v);
      else if (a == "--timeline") o.timeline = v;
      else o.batch = parse_count(a, v);
    } catch (const std::exception& e) {
      return usage(e.what());
    }
  }
  if (o.shape != "1b" && o.shape != "3b") return usage("--shape must be 1b or 3b, got \"" + o.shape + "\"");
  if (o.dtype != "bf16" && o.dtype != "fp16") return usage("--dtype must be bf16 or fp16, got \"" + o.dtype + "\"");
  if (!o.timeline.empty() && !flexgen::cuda_timeline::built())
    return usage("--timeline needs a build configured with -DFLEXGEN_CUDA_TIMELINE=ON (this one's kernels do not stamp)");

  if (!flexgen::cuda_available() || !flexgen::cuda_block_sparse_attention_available()) {
    std::cerr << "bench_decode_cuda: error: no CUDA device: " << no_cuda_reason()
              << ". This benchmark measures GPU decode only (bench/model and bench/cpu measure the CPU).\n";
    return 2;
  }

  at::ScalarType dtype = at::kBFloat16;
  try {
    dtype = flexgen::parse_dtype(o.dtype);  // the library's verdict on the name
  } catch (const std::exception& e) {
    std::cerr << "bench_decode_cuda: error: --dtype " << o.dtype << ": " << e.what() << "\n";
    return 1;
  }

  try {
    const auto t_start = bench_decode::Clock::now();
    const flexgen::DeviceChoice choice = flexgen::choose_device("cuda");
    const at::Device device = choice.device;
    flexgen::bind_device(device);
    json out = {{"bench", "decode_cuda"}};
    const std::string gpu = bench_decode::nvidia_gpu_model();
    if (!gpu.empty()) out["device"] = gpu;
    out["shape"] = o.shape;
    out["dtype"] = o.dtype;
    out["torch"] = flexgen::torch_version();
    out["commit"] = FLEXGEN_GIT_COMMIT;

    progress("bandwidth limits (" + std::to_string(kLimitRuns) + " runs of " + std::to_string(kLimitOpsPerRun) +
             " ops over 2 GiB buffers)");
    auto t = bench_decode::Clock::now();
    const bench_decode::Limits limits =
        bench_decode::measure_limits(device, kLimitBufferBytes, kLimitRuns, kLimitOpsPerRun);
    const double limits_s = bench_decode::seconds_since(t);
    progress("copy " + std::to_string(limits.copy_gbps) + " GB/s, read " + std::to_string(limits.read_gbps) + " GB/s");

    progress("random-weight " + o.shape + " model, " + o.dtype + ", on " + device.str());
    t = bench_decode::Clock::now();
    const flexgen::ModelConfig config = flexgen::parse_model_config(bench_decode::shape_config_json(o.shape), "bench");
    const flexgen::LlamaModel model = bench_decode::random_llama(config, dtype, device, kSeed);
    const double model_s = bench_decode::seconds_since(t);
    const double weight_bytes = bench_decode::step_weight_bytes(model);
    progress("model ready in " + std::to_string(model_s) + " s (" + std::to_string(weight_bytes / 1e9) +
             " GB of weights read per step)");
    out["config"] = config_json(config);

    const flexgen::DecodeStateOptions defaults;
    bench_decode::StepSetup step_setup;
    step_setup.context = o.context;
    step_setup.steps = o.steps;
    step_setup.block_size = kBlockSize;
    step_setup.seed = kSeed;
    step_setup.rows = o.batch;
    step_setup.timeline = !o.timeline.empty();
    bench_decode::KernelSetup kernel_setup;
    kernel_setup.context = o.context;
    kernel_setup.cache_length = bench_decode::step_cache_length(step_setup);
    kernel_setup.block_size = kBlockSize;
    kernel_setup.batch_invariant = defaults.batch_invariant;
    kernel_setup.reps = o.reps;
    kernel_setup.rows = o.batch;
    out["setup"] = {{"context", o.context},
                    {"cache_length", kernel_setup.cache_length},
                    {"reps", o.reps},
                    {"steps", o.steps},
                    {"warmup_steps", bench_decode::kWarmupSteps},
                    {"block_size", kBlockSize},
                    {"batch_invariant", defaults.batch_invariant},
                    {"batch", o.batch},
                    {"seed", kSeed}};
    out["limits"] = limits.to_json();

    t = bench_decode::Clock::now();
    const std::vector<bench_decode::KernelResult> kernels = bench_decode::measure_kernels(model, kernel_setup);
    const double kernels_s = bench_decode::seconds_since(t);
    json kernel_rows = json::array();
    double sum_us = 0;
    for (const auto& k : kernels) {
      kernel_rows.push_back(k.to_json(limits));
      sum_us += k.us * static_cast<double>(k.launches_per_step);
      progress(k.name + ": " + std::to_string(k.us) + " us per launch");
    }
    out["kernels"] = kernel_rows;

    t = bench_decode::Clock::now();
    progress("decode steps with CUDA graphs");
    const bench_decode::StepTiming with_graphs = bench_decode::time_decode_steps(model, step_setup, true);
    progress("decode steps without CUDA graphs");
    const bench_decode::StepTiming without_graphs = bench_decode::time_decode_steps(model, step_setup, false);
    progress("overlapped decode steps");
    std::vector<double> overlapped;
    for (int r = 0; r < 3; ++r) overlapped.push_back(bench_decode::time_overlapped_steps(model, step_setup));
    std::vector<double> sorted_overlapped = overlapped;
    std::sort(sorted_overlapped.begin(), sorted_overlapped.end());
    const double overlapped_ms = sorted_overlapped[1];
    const double steps_s = bench_decode::seconds_since(t);

    // One prefill pass of the prompt (every row's `context` tokens), timed as the engine runs it,
    // beside the machine's dense bf16/fp16 matmul rate (cuBLAS, 8192^3) measured in this run.
    t = bench_decode::Clock::now();
    progress("prefill passes of " + std::to_string(o.context) + " tokens a row");
    const bench_decode::PrefillTiming prefills = bench_decode::time_prefills(model, step_setup, 10, o.profile_prefill);
    const double matmul_tflops = bench_decode::matmul_tflops(device, dtype);
    const double prefill_ms = bench_decode::median(prefills.ms);
    const double tokens = static_cast<double>(o.batch * o.context);
    // Linears of every token, attention under the causal mask (QK^T and PV), the LM head of the last.
    const double hd = static_cast<double>(config.head_dim), L = static_cast<double>(o.context);
    const double layer_params = static_cast<double>(config.hidden_size) *
                                ((config.num_heads + 2 * config.num_kv_heads) * hd + config.num_heads * hd +
                                 3.0 * static_cast<double>(config.intermediate_size));
    const double prefill_flop =
        static_cast<double>(config.num_layers) *
            (2.0 * tokens * layer_params + static_cast<double>(o.batch) * 2.0 * L * L * hd * config.num_heads) +
        2.0 * static_cast<double>(o.batch) * static_cast<double>(config.hidden_size) * config.vocab_size;
    const double prefill_tflops = prefill_flop / (prefill_ms * 1e-3) / 1e12;
    out["prefill"] = {{"rows", o.batch},
                      {"tokens_per_row", o.context},
                      {"ms", prefill_ms},
                      {"ms_runs", prefills.ms},
                      {"enqueue_ms", bench_decode::median(prefills.enqueue_ms)},
                      {"enqueue_ms_runs", prefills.enqueue_ms},
                      {"tokens_per_s", tokens / (prefill_ms * 1e-3)},
                      {"flop", prefill_flop},
                      {"tflops", prefill_tflops},
                      {"matmul_tflops", matmul_tflops},
                      {"fraction_of_matmul", prefill_tflops / matmul_tflops},
                      {"matmul", "at::matmul [8192, 8192] x [8192, 8192], the model's dtype"}};
    const double prefill_s = bench_decode::seconds_since(t);
    progress("prefill " + std::to_string(prefill_ms) + " ms (" + std::to_string(prefill_tflops) + " TFLOP/s, matmul " +
             std::to_string(matmul_tflops) + "), enqueued in " + std::to_string(bench_decode::median(prefills.enqueue_ms)) +
             " ms");

    const double step_ms = with_graphs.median_ms, sum_ms = sum_us / 1e3;
    // K and V of the keys a step's attention may see (slots 0 .. context), every row and layer.
    const double kv_bytes = 2.0 * static_cast<double>(o.batch) * static_cast<double>((o.context + 1) * config.num_kv_heads * config.head_dim *
                                                      config.num_layers) *
                            static_cast<double>(at::elementSize(dtype));
    const double ideal_ms = weight_bytes / (limits.read_gbps * 1e9) * 1e3;
    const double ideal_kv_ms = (weight_bytes + kv_bytes) / (limits.read_gbps * 1e9) * 1e3;
    out["step"] = {
        {"step_ms", step_ms},
        {"step_ms_min", with_graphs.min_ms},
        {"step_ms_max", with_graphs.max_ms},
        {"tokens_per_s", 1e3 / step_ms},
        {"step_ms_no_graphs", without_graphs.median_ms},
        {"step_ms_no_graphs_min", without_graphs.min_ms},
        {"sum_of_kernels_ms", sum_ms},
        {"kernels_over_step", sum_ms / step_ms},
        {"rest_ms", step_ms - sum_ms},
        {"weight_bytes", weight_bytes},
        {"ideal_ms", ideal_ms},
        {"fraction", ideal_ms / step_ms},
        {"kv_bytes", kv_bytes},
        {"ideal_with_kv_ms", ideal_kv_ms},
        {"fraction_with_kv", ideal_kv_ms / step_ms},
        {"step_ms_overlapped", overlapped_ms},
        {"step_ms_overlapped_runs", overlapped},
        {"fraction_overlapped", ideal_ms / overlapped_ms},
        {"steps_ms", with_graphs.ms},
        {"steps_ms_no_graphs", without_graphs.ms}};
    if (step_setup.timeline) {
      out["timeline"] = bench_decode::timeline_summary(with_graphs.stamps);
      bench_decode::write_stamps(o.timeline, with_graphs.stamps);
    }
    out["seconds"] = {{"limits", limits_s},
                      {"model", model_s},
                      {"kernels", kernels_s},
                      {"steps", steps_s},
                      {"prefill", prefill_s},
                      {"total", bench_decode::seconds_since(t_start)}};
    progress("step " + std::to_string(step_ms) + " ms (overlapped " + std::to_string(overlapped_ms) + " ms, no graphs " +
             std::to_string(without_graphs.median_ms) +
             " ms), kernels alone " + std::to_string(sum_ms) + " ms, ideal " + std::to_string(ideal_ms) + " ms");
    std::cout << out.dump(2) << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "bench_decode_cuda: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
