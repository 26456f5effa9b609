#include "model_options.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "commands.h"
#include "flexgen/compute_device.h"
#include "flexgen/decoder.h"
#include "flexgen/model_loader.h"

namespace flexgen::cli {

void add_model_options(CLI::App& app, ModelArgs& a) {
  app.add_option("--model,-m", a.model,
                 "HF model directory (LLaMA, LLaMA-2, Qwen2/Qwen2.5), TorchScript archive, or a name in the local "
                 "HF cache (e.g. llama3.2_3b_it, qwen2.5_1.5b_it); layouts flexgen does not implement (MoE, "
                 "cross-attention, sliding window in use, ...) are refused naming the config key")
      ->required();
  app.add_option("--tokenizer", a.tokenizer, "tokenizer.json, tokenizer.model or a folder (default: the model's)");
  app.add_option("--config", a.config, "config.json for a TorchScript archive without one beside it");
  app.add_option("--device", a.device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--dtype", a.dtype, "auto (bf16), bf16, fp16 (CUDA only) or fp32 (CPU only)")->capture_default_str();
  app.add_option("--threads", a.threads, "CPU threads (0 = all cores)")->capture_default_str();
}

namespace {

// --device: the model layer chooses (auto: by the local rank of a multi-process launch); usage
// errors and missing devices name the flag here.
DeviceChoice pick_device(const std::string& dev) {
  try {
    return choose_device(dev);
  } catch (const DeviceRequestError& e) {
    throw UsageError(std::string("--device: ") + e.what());
  } catch (const std::runtime_error& e) {
    throw std::runtime_error("--device " + dev + ": " + e.what());
  }
}

}  // namespace

LoadedModel load_model_and_tokenizer(const ModelArgs& a) {
  // fp32 runs only on the CPU, so "auto" with --dtype fp32 means the CPU.
  const bool fp32 = a.dtype == "fp32" || a.dtype == "float32" || a.dtype == "float";
  const DeviceChoice choice = pick_device(a.device == "auto" && fp32 ? "cpu" : a.device);
  const at::Device device = choice.device;
  if (device.is_cuda()) spdlog::info("device {} ({})", device.str(), choice.reason);
  at::ScalarType dtype = at::kBFloat16;
  if (a.dtype != "auto") {
    try {
      dtype = parse_dtype(a.dtype);
    } catch (const std::exception& e) {
      throw UsageError(std::string("--dtype: ") + e.what());
    }
  }
  if (device.is_cuda() && dtype == at::kFloat)
    throw UsageError("--dtype " + a.dtype + ": the CUDA kernels take bf16 or fp16 (use --device cpu for fp32)");
  if (device.is_cpu() && dtype == at::kHalf)
    throw UsageError("--dtype " + a.dtype + ": the CPU kernels take bf16 or fp32 (fp16 runs on CUDA: --device cuda)");
  if (a.threads < 0) throw UsageError("--threads: must be >= 0");
  const int threads = a.threads > 0 ? a.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  set_cpu_threads(threads);

  const ResolvedModel where = resolve_model_path(a.model);
  std::string tok_path = a.tokenizer;
  if (tok_path.empty())
    tok_path = where.format == ModelFormat::HfDirectory ? where.path.string() : where.path.parent_path().string();
  LoadedModel out;
  out.tokenizer = load_tokenizer(tok_path);
  LoadOptions options;
  options.dtype = dtype;
  options.device = device;
  const auto t0 = std::chrono::steady_clock::now();
  std::optional<std::filesystem::path> config;
  if (!a.config.empty()) config = a.config;
  out.model = load_model(a.model, options, config);
  warm_up_decoding(out.model);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  spdlog::info("model {} ({} layers, hidden {}, vocab {}) loaded in {:.2f} s, {} on {}{}", where.path.string(),
               out.model.config.num_layers, out.model.config.hidden_size, out.model.config.vocab_size, secs,
               dtype_name(dtype), device.str(),
               device.is_cpu() ? " with " + std::to_string(threads) + " threads" : std::string());
  if (out.model.kernels_preloaded > 0)
    spdlog::debug("{} flexgen kernels loaded onto {} ahead of the run", out.model.kernels_preloaded, device.str());
  if (out.model.kernels_preloaded < 0)
    spdlog::debug("the CUDA driver loads flexgen's kernels at their first launch (CUDA 12.4+ loads them ahead)");
  if (out.tokenizer->vocab_size() > out.model.config.vocab_size)
    throw std::runtime_error(tok_path + ": the tokenizer has " + std::to_string(out.tokenizer->vocab_size()) +
                             " tokens but the model's vocabulary is " + std::to_string(out.model.config.vocab_size));
  return out;
}

}  // namespace flexgen::cli
