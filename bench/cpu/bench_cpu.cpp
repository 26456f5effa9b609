// bench_cpu: in one run, the machine's measured limits (read bandwidth, fp32 FMA peak per ISA path, the
// AVX512-BF16 dot peak) and the model's bf16 decode (batch 1) and prefill speed as fractions of them, for
// the kernel path in use or for every runnable one (--isa all). Prints ONE JSON document on stdout; logs on
// stderr. See README.md in this folder for what each figure means.
//
//   bench_cpu [--model DIR]... [--prompt 128] [--decode 16] [--reps 3] [--threads N] [--isa PATH|all]
//             [--bw-mib 1024] [--bw-reps 5] [--peak-seconds 0.3] [--peak-reps 3]
//             [--not-measured "LABEL: why"]...
#include <nlohmann/json.hpp>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "flexgen/compute_device.h"
#include "flexgen/cpu_isa.h"
#include "flexgen/llama.h"
#include "flexgen/model_loader.h"
#include "flexgen/runtime_info.h"
#include "machine.h"

namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::ordered_json;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

std::string loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

// This process's CPU time (user + system), seconds: CPU time / wall time = cores kept busy.
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

void log(const std::string& msg) { std::cerr << "bench_cpu: " << msg << std::endl; }

struct Options {
  std::vector<std::string> models;
  int64_t prompt = 128, decode = 16, reps = 3;
  int threads = 0;  // 0: every CPU this process may run on
  std::string isa;  // empty: the current path (best, or FLEXGEN_CPU_ISA); "all": every runnable path; "auto": none named
  double bw_mib = 1024;
  int bw_reps = 5;
  double peak_seconds = 0.3;
  int peak_reps = 3;
  std::vector<std::string> not_measured;
};

int usage(const std::string& msg) {
  std::cerr << "bench_cpu: " << msg
            << "\nusage: bench_cpu [--model DIR]... [--prompt N] [--decode N] [--reps N] [--threads N]\n"
               "                 [--isa portable|avx2|avx512|avx512bf16|auto|all] [--bw-mib MIB] [--bw-reps N]\n"
               "                 [--peak-seconds S] [--peak-reps N] [--not-measured \"LABEL: why\"]...\n";
  return 2;
}

// The peak a kernel path's fp32 arithmetic is compared with: what its instructions can do at most.
const char* fp32_peak_of(flexgen::CpuIsa isa) {
  switch (isa) {
    case flexgen::CpuIsa::Portable: return "sse2_fp32";  // plain C++ for baseline x86-64
    case flexgen::CpuIsa::Avx2: return "avx2_fp32";
    case flexgen::CpuIsa::Avx512:
    case flexgen::CpuIsa::Avx512Bf16: return "avx512_fp32";
  }
  return "sse2_fp32";
}

// A kernel path a run measures: a named one (set_cpu_isa), or none named ("auto": best_cpu_isa()
// with bf16_linear_isa's choice for calls of many rows, what flexgen runs by default).
struct RunPath {
  flexgen::CpuIsa isa;
  bool automatic = false;
  std::string name() const { return automatic ? "auto" : flexgen::to_string(isa); }
  void select() const {
    if (automatic) flexgen::clear_cpu_isa();
    else flexgen::set_cpu_isa(isa);
  }
};

struct ModelSizes {
  double parameters = 0;            // unique parameters (a tied LM head counted once)
  double weight_bytes = 0;          // their bytes in memory
  double streamed_bytes = 0;        // bytes one decode step reads: all but an untied embedding table
  double layer_linear_params = 0;   // q/k/v/o/gate/up/down of every layer: every token multiplies them
  double lm_head_params = 0;
};

ModelSizes sizes_of(const flexgen::LlamaModel& model) {
  ModelSizes s;
  std::set<const void*> seen;
  auto add = [&](const at::Tensor& t) {
    if (!t.defined() || !seen.insert(t.data_ptr()).second) return;
    s.parameters += static_cast<double>(t.numel());
    s.weight_bytes += static_cast<double>(t.numel() * t.element_size());
  };
  const auto& w = model.weights;
  add(w.embed);
  add(w.final_norm);
  add(w.lm_head);
  for (const auto& l : w.layers) {
    for (const at::Tensor* t : {&l.q_proj, &l.k_proj, &l.v_proj, &l.o_proj, &l.gate_proj, &l.up_proj, &l.down_proj}) {
      add(*t);
      s.layer_linear_params += static_cast<double>(t->numel());
    }
    for (const at::Tensor* t : {&l.input_norm, &l.post_norm, &l.q_bias, &l.k_bias, &l.v_bias, &l.o_bias, &l.gate_bias,
                                &l.up_bias, &l.down_bias})
      add(*t);
  }
  s.lm_head_params = static_cast<double>(w.lm_head.numel());
  const bool tied = w.lm_head.defined() && w.embed.defined() && w.lm_head.data_ptr() == w.embed.data_ptr();
  s.streamed_bytes = s.weight_bytes - (tied ? 0.0 : static_cast<double>(w.embed.numel() * w.embed.element_size()));
  return s;
}

json bench_model(const std::string& dir, const Options& o, const std::vector<RunPath>& isas,
                 double bandwidth_gb_s, const json& peaks) {
  log("loading " + dir + " (bf16)");
  auto t0 = Clock::now();
  flexgen::LlamaModel model = flexgen::load_model(dir, {at::kBFloat16});
  const double load_s = seconds_since(t0);
  const ModelSizes z = sizes_of(model);
  const int64_t V = model.config.vocab_size;
  auto tokens_of = [&](int64_t n, int64_t salt) {
    return (at::arange(n, at::kLong).mul(7919).add(salt * 104729 + 128000)).remainder(V).view({1, n});
  };
  const auto causal = flexgen::BatchMask::causal();
  const double T = static_cast<double>(o.prompt);
  // Matrix-multiply flops of one prefill as run (LogitsMode::Last: the LM head for the last token only);
  // attention (QK^T, PV: at most 4 x layers x heads x head_dim x T^2, < 1% at T = 128 for 1B) is left out.
  const double prefill_flop = 2.0 * z.layer_linear_params * T + 2.0 * z.lm_head_params;
  const double prefill_flop_2pt = 2.0 * z.parameters * T;  // the convention: 2 x parameters x tokens

  json m = {{"model", dir},
            {"dtype", "bf16"},
            {"layers", model.config.num_layers},
            {"hidden", model.config.hidden_size},
            {"intermediate", model.config.intermediate_size},
            {"vocab", V},
            {"tie_word_embeddings", model.config.tie_word_embeddings},
            {"parameters", z.parameters},
            {"weight_bytes", z.weight_bytes},
            {"weight_bytes_streamed_per_token", z.streamed_bytes},
            {"prefill_flop", prefill_flop},
            {"prefill_flop_2pt", prefill_flop_2pt},
            {"load_s", load_s},
            {"prompt_tokens", o.prompt},
            {"decode_tokens", o.decode},
            {"reps", o.reps}};
  // Rounds: each goes through every path once, so that load from other work drifts over all paths alike.
  // Round 0 is a warm-up at the measured shapes (weight pages touched, shape-dependent kernels set up) and
  // is not recorded.
  struct Samples {
    std::vector<double> prefill_s, decode_s;
    double prefill_cpu = 0, decode_cpu = 0;
  };
  std::vector<Samples> samples(isas.size());
  for (int64_t r = 0; r <= o.reps; ++r) {
    for (size_t i = 0; i < isas.size(); ++i) {
      isas[i].select();
      log("model " + dir + ": " + (r == 0 ? std::string("warm-up") : "round " + std::to_string(r)) + ", kernel path " +
          isas[i].name());
      flexgen::KVCache cache = flexgen::make_kv_cache(model, 1, o.prompt + o.decode);
      at::Tensor ids = tokens_of(o.prompt, r + 1);
      auto t = Clock::now();
      double c0 = cpu_seconds();
      at::Tensor logits = flexgen::llama_forward(model, cache, ids, at::arange(o.prompt, at::kLong).view({1, o.prompt}),
                                                 causal, flexgen::LogitsMode::Last);
      int64_t next = logits.view({-1}).argmax().item<int64_t>();
      const double pre_s = seconds_since(t), pre_cpu = cpu_seconds() - c0;
      t = Clock::now();
      c0 = cpu_seconds();
      for (int64_t s = 0; s < o.decode; ++s) {
        logits = flexgen::llama_forward(model, cache, at::full({1, 1}, next, at::kLong),
                                        at::full({1, 1}, o.prompt + s, at::kLong), causal, flexgen::LogitsMode::Last);
        next = logits.view({-1}).argmax().item<int64_t>();
      }
      const double dec_s = seconds_since(t), dec_cpu = cpu_seconds() - c0;
      if (r == 0) continue;
      samples[i].prefill_s.push_back(pre_s);
      samples[i].prefill_cpu += pre_cpu;
      samples[i].decode_s.push_back(dec_s);
      samples[i].decode_cpu += dec_cpu;
    }
  }
  json runs = json::array();
  for (size_t i = 0; i < isas.size(); ++i) {
    const flexgen::CpuIsa isa = isas[i].isa;
    const std::string path = isas[i].name();
    isas[i].select();
    const std::string many_rows = flexgen::to_string(flexgen::bf16_linear_isa(flexgen::kLinearManyRows));
    const auto& prefill_s = samples[i].prefill_s;
    const auto& decode_s = samples[i].decode_s;
    const double prefill_cpu = samples[i].prefill_cpu, decode_cpu = samples[i].decode_cpu;
    double prefill_wall = 0, decode_wall = 0;
    for (double x : prefill_s) prefill_wall += x;
    for (double x : decode_s) decode_wall += x;
    const double pre = median(prefill_s), dec = median(decode_s);
    const double pre_best = *std::min_element(prefill_s.begin(), prefill_s.end());
    const double dec_best = *std::min_element(decode_s.begin(), decode_s.end());
    const double dec_tok_s = static_cast<double>(o.decode) / dec;
    const double dec_gb_s = z.streamed_bytes * dec_tok_s / 1e9;
    const double pre_gflop_s = prefill_flop / pre / 1e9;
    const std::string peak_name = fp32_peak_of(isa);
    const double fp32_peak = peaks.contains(peak_name) ? peaks[peak_name].value("gflop_s", 0.0) : 0.0;
    json prefill = {{"s_median", pre},
                    {"s_best", pre_best},
                    {"tok_s", T / pre},
                    {"gflop_s", pre_gflop_s},
                    {"gflop_s_2pt", prefill_flop_2pt / pre / 1e9},
                    {"cores_busy", prefill_cpu / prefill_wall},
                    {"fp32_peak", peak_name},
                    {"fraction_of_fp32_peak", fp32_peak > 0 ? pre_gflop_s / fp32_peak : 0.0},
                    {"fraction_of_fp32_peak_2pt", fp32_peak > 0 ? prefill_flop_2pt / pre / 1e9 / fp32_peak : 0.0}};
    if (isa == flexgen::CpuIsa::Avx512Bf16 && peaks.contains("avx512bf16_dot")) {
      const double bf = peaks["avx512bf16_dot"].value("gflop_s", 0.0);
      prefill["fraction_of_bf16_dot_peak"] = bf > 0 ? pre_gflop_s / bf : 0.0;
    }
    runs.push_back({{"kernel_path", path},
                    {"linear_many_rows", many_rows},
                    {"decode",
                     {{"s_median", dec},
                      {"s_best", dec_best},
                      {"tok_s", dec_tok_s},
                      {"gb_s", dec_gb_s},
                      {"cores_busy", decode_cpu / decode_wall},
                      {"fraction_of_read_bandwidth", bandwidth_gb_s > 0 ? dec_gb_s / bandwidth_gb_s : 0.0}}},
                    {"prefill", prefill}});
  }
  m["runs"] = runs;
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    try {
      if (a == "--model") o.models.push_back(next());
      else if (a == "--prompt") o.prompt = std::stoll(next());
      else if (a == "--decode") o.decode = std::stoll(next());
      else if (a == "--reps") o.reps = std::stoll(next());
      else if (a == "--threads") o.threads = std::stoi(next());
      else if (a == "--isa") {
        o.isa = next();
        if (o.isa != "all" && o.isa != "auto") flexgen::parse_cpu_isa(o.isa);  // a name that is no path: usage error
      }
      else if (a == "--bw-mib") o.bw_mib = std::stod(next());
      else if (a == "--bw-reps") o.bw_reps = std::stoi(next());
      else if (a == "--peak-seconds") o.peak_seconds = std::stod(next());
      else if (a == "--peak-reps") o.peak_reps = std::stoi(next());
      else if (a == "--not-measured") o.not_measured.push_back(next());
      else if (a == "-h" || a == "--help") return usage("CPU limits and model speed as JSON"), 0;
      else return usage("unknown argument " + a);
    } catch (const std::exception& e) {
      return usage(a + ": " + e.what());
    }
  }
  if (o.prompt < 1 || o.decode < 1 || o.reps < 1) return usage("--prompt, --decode and --reps must be >= 1");
  try {
    const int threads = o.threads > 0 ? o.threads : bench_cpu::available_cpus();
    flexgen::set_cpu_threads(threads);
    at::init_num_threads();

    // The kernel path: the current one (best, or FLEXGEN_CPU_ISA), one named, none named (auto), or
    // every runnable one (and auto where it differs from the best path: an avx512bf16 CPU).
    const RunPath current{flexgen::cpu_isa(), !flexgen::cpu_isa_named()};
    const flexgen::CpuIsa best = flexgen::best_cpu_isa();
    std::vector<RunPath> isas = {current};
    if (o.isa == "all") {
      isas.clear();
      for (auto isa : flexgen::runnable_cpu_isas()) isas.push_back({isa});
      if (best == flexgen::CpuIsa::Avx512Bf16) isas.push_back({best, true});
    } else if (o.isa == "auto") {
      isas = {{best, true}};
    } else if (!o.isa.empty()) {
      isas = {{flexgen::parse_cpu_isa(o.isa)}};
    }
    for (const auto& p : isas) p.select();  // fails early for a path this CPU cannot run
    (o.isa == "all" ? current : isas.front()).select();

    const std::string load_start = loadavg();
    json out = {{"bench", "cpu"}, {"loadavg_start", load_start}};
    out["machine"] = bench_cpu::describe_machine();
    out["machine"]["threads_requested"] = threads;
    json runtime = {{"torch_version", flexgen::torch_version()}, {"blas_library", flexgen::blas_library()}};
    for (const char* v : {"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"})
      if (const char* e = std::getenv(v)) runtime[v] = e;
    out["runtime"] = runtime;

    log("read bandwidth (" + std::to_string(static_cast<int>(o.bw_mib)) + " MiB, " + std::to_string(threads) +
        " threads)");
    const auto bw = bench_cpu::measure_read_bandwidth(o.bw_mib * 1024 * 1024, o.bw_reps);
    json limits;
    limits["read_bandwidth"] = bw.to_json();
    json peaks = json::object();
    for (const char* name : {"sse2_fp32", "avx2_fp32", "avx512_fp32", "avx512bf16_dot"}) {
      if (!bench_cpu::cpu_supports_peak(name)) {
        peaks[name] = nullptr;  // this CPU cannot run it
        continue;
      }
      log(std::string("peak ") + name);
      peaks[name] = bench_cpu::measure_peak(name, o.peak_seconds, o.peak_reps).to_json();
    }
    limits["peaks"] = peaks;
    double best_fp32 = 0;
    for (const char* name : {"sse2_fp32", "avx2_fp32", "avx512_fp32"})
      if (!peaks[name].is_null()) best_fp32 = std::max(best_fp32, peaks[name].value("gflop_s", 0.0));
    limits["best_fp32_gflop_s"] = best_fp32;
    json warnings = json::array();
    if (threads > 1) {
      // The same on one thread: how the limits scale with threads (SMT siblings, or cores busy elsewhere).
      log("single-thread read bandwidth and peak");
      at::set_num_threads(1);
      const std::string best = bench_cpu::cpu_supports_peak("avx512_fp32") ? "avx512_fp32"
                               : bench_cpu::cpu_supports_peak("avx2_fp32") ? "avx2_fp32"
                                                                           : "sse2_fp32";
      const auto bw1 = bench_cpu::measure_read_bandwidth(o.bw_mib * 1024 * 1024, o.bw_reps);
      const auto pk1 = bench_cpu::measure_peak(best, o.peak_seconds, o.peak_reps);
      limits["single_thread"] = {{"read_bandwidth_gb_s", bw1.gb_s}, {"peak", best}, {"gflop_s", pk1.gflop_s}};
      const double all = peaks[best].value("gflop_s", 0.0);
      if (pk1.gflop_s > 0 && all < 1.5 * pk1.gflop_s) {
        char buf[320];
        std::snprintf(buf, sizeof buf,
                      "the %s peak on %d threads is %.2fx the one-thread peak: the threads share cores (SMT) or "
                      "other work held CPUs; fractions of it are relative to that lower figure",
                      best.c_str(), threads, all / pk1.gflop_s);
        warnings.push_back(buf);
      }
      flexgen::set_cpu_threads(threads);
    }
    out["limits"] = limits;
    if (std::atof(load_start.c_str()) > 0.5)  // the 1-minute load before this run did anything
      warnings.push_back("load average " + load_start + " at the start: other work shares the CPUs; every figure may "
                         "be lower than on an idle machine");

    json models = json::array();
    for (const auto& dir : o.models) models.push_back(bench_model(dir, o, isas, bw.gb_s, peaks));
    out["models"] = models;
    json nm = json::array();
    for (const auto& s : o.not_measured) nm.push_back(s);
    if (o.models.empty()) nm.push_back("model: no --model given");
    out["not_measured"] = nm;
    out["warnings"] = warnings;
    out["loadavg_end"] = loadavg();
    std::cout << out.dump(2) << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "bench_cpu: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
