// Prefill and decode throughput of the LLaMA model layer on a model directory
// (e.g. the one tools/make_random_model writes), plus peak resident memory after
// loading and after the first forward (every weight page touched). Prints JSON.
//
//   bench_model --model DIR [--dtype bf16] [--threads 2] [--prompt 128] [--decode 32] [--reps 3]
//               [--no-gemv-kernel]   (at::linear for decode too, for comparison)
#include <nlohmann/json.hpp>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "cpu/linear_cpu.h"
#include "flexgen/cpu_isa.h"
#include "flexgen/compute_device.h"
#include "flexgen/llama.h"
#include "flexgen/model_loader.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Peak and current resident set size in MiB (Linux /proc/self/status).
double status_mib(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string k = std::string(key) + ":";
  while (std::getline(in, line))
    if (line.rfind(k, 0) == 0) return std::stod(line.substr(k.size())) / 1024.0;  // kB
  return -1;
}

std::string loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_dir, dtype = "bf16";
  int threads = 2;
  int64_t prompt = 128, decode = 32, reps = 3;
  bool gemv_kernel = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--model") model_dir = next();
    else if (a == "--dtype") dtype = next();
    else if (a == "--threads") threads = std::stoi(next());
    else if (a == "--prompt") prompt = std::stoll(next());
    else if (a == "--decode") decode = std::stoll(next());
    else if (a == "--reps") reps = std::stoll(next());
    else if (a == "--no-gemv-kernel") gemv_kernel = false;
    else {
      std::cerr << "usage: bench_model --model DIR [--dtype bf16|fp32] [--threads N] [--prompt N] [--decode N] [--reps N] [--no-gemv-kernel]\n";
      return 2;
    }
  }
  if (model_dir.empty()) {
    std::cerr << "bench_model: --model DIR is required (tools: make_random_model --out DIR)\n";
    return 2;
  }
  try {
    flexgen::set_cpu_threads(threads);
    flexgen::set_bf16_linear_kernels(gemv_kernel);
    const double rss0 = status_mib("VmRSS");
    auto t0 = Clock::now();
    flexgen::LlamaModel model = flexgen::load_model(model_dir, {flexgen::parse_dtype(dtype)});
    const double load_s = seconds_since(t0);
    const double rss_load = status_mib("VmRSS"), hwm_load = status_mib("VmHWM");
    double weight_bytes = 0;
    {
      std::vector<const at::Tensor*> ws = {&model.weights.embed, &model.weights.final_norm};
      if (!model.config.tie_word_embeddings) ws.push_back(&model.weights.lm_head);
      for (const auto& l : model.weights.layers)
        for (const at::Tensor* t : {&l.input_norm, &l.q_proj, &l.k_proj, &l.v_proj, &l.o_proj, &l.post_norm,
                                    &l.gate_proj, &l.up_proj, &l.down_proj})
          ws.push_back(t);
      for (const at::Tensor* t : ws) weight_bytes += static_cast<double>(t->numel() * t->element_size());
    }
    const int64_t V = model.config.vocab_size;
    auto tokens_of = [&](int64_t n, int64_t salt) {
      return (at::arange(n, at::kLong).mul(7919).add(salt * 104729 + 128000)).remainder(V).view({1, n});
    };
    const auto causal = flexgen::BatchMask::causal();

    // Warm-up: touches every weight page once.
    {
      flexgen::KVCache c = flexgen::make_kv_cache(model, 1, 8);
      flexgen::llama_forward(model, c, tokens_of(8, 0), at::arange(8, at::kLong).view({1, 8}), causal,
                             flexgen::LogitsMode::Last);
    }
    const double rss_warm = status_mib("VmRSS");

    std::vector<double> prefill_s, decode_s;
    for (int64_t r = 0; r < reps; ++r) {
      flexgen::KVCache cache = flexgen::make_kv_cache(model, 1, prompt + decode);
      at::Tensor ids = tokens_of(prompt, r + 1);
      auto t = Clock::now();
      at::Tensor logits = flexgen::llama_forward(model, cache, ids, at::arange(prompt, at::kLong).view({1, prompt}),
                                                 causal, flexgen::LogitsMode::Last);
      prefill_s.push_back(seconds_since(t));
      int64_t next = logits.view({-1}).argmax().item<int64_t>();
      t = Clock::now();
      for (int64_t s = 0; s < decode; ++s) {
        logits = flexgen::llama_forward(model, cache, at::full({1, 1}, next, at::kLong),
                                        at::full({1, 1}, prompt + s, at::kLong), causal, flexgen::LogitsMode::Last);
        next = logits.view({-1}).argmax().item<int64_t>();
      }
      decode_s.push_back(seconds_since(t));
    }
    std::sort(prefill_s.begin(), prefill_s.end());
    std::sort(decode_s.begin(), decode_s.end());
    const double pre = prefill_s[prefill_s.size() / 2], dec = decode_s[decode_s.size() / 2];
    nlohmann::json out = {
        {"bench", "model"},
        {"model", model_dir},
        {"dtype", dtype},
        {"threads", at::get_num_threads()},
        {"bf16_kernels", gemv_kernel},
        {"cpu_isa", flexgen::to_string(flexgen::cpu_isa())},
        {"layers", model.config.num_layers},
        {"hidden", model.config.hidden_size},
        {"weight_bytes", weight_bytes},
        {"load_s", load_s},
        {"rss_before_load_mib", rss0},
        {"rss_after_load_mib", rss_load},
        {"peak_rss_after_load_mib", hwm_load},
        {"rss_after_warmup_mib", rss_warm},
        {"peak_rss_mib", status_mib("VmHWM")},
        {"prompt_tokens", prompt},
        {"prefill_s_median", pre},
        {"prefill_tok_s", static_cast<double>(prompt) / pre},
        {"decode_tokens", decode},
        {"decode_s_median", dec},
        {"decode_tok_s", static_cast<double>(decode) / dec},
        {"reps", reps},
        {"loadavg", loadavg()}};
    std::cout << out.dump(2) << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "bench_model: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
