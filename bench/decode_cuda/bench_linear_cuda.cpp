// bench_linear_cuda: the decode-step linears of Llama-3.2-1B and -3B at 1..128 rows, three ways: the
// row-invariant tensor-core kernel (cuda_fused::mma_linear), the per-row GEMV 8 rows a launch (the
// batch-invariant path before it) and cuBLAS through at::linear (not batch-invariant: the speed
// anchor). Each matrix also checks mma and gemv against an fp32 reference and mma's row invariance.
// The same matrices at prefill sizes (--prefill-rows, the tokens of a pass): the tiled row-invariant
// kernel of batch-invariant prefill (cuda_fused::prefill_linear) against cuBLAS, in TFLOP/s.
// Prints ONE JSON document on stdout; progress on stderr. See README.md here.
//
//   bench_linear_cuda [--shape 1b|3b|both] [--rows 1,8,16,32,64,128] [--prefill-rows 77,512,2464,8192]
//                     [--reps 5]
//
// Exit status: 0 done; 2 usage error, or no CUDA device; 1 a failed check (after the JSON) or any
// other failure.
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "bandwidth.h"
#include "bench_args.h"
#include "clock.h"
#include "cuda/block_sparse_attention_cuda.h"
#include "cuda/mma_linear_params.h"
#include "cuda/prefill_linear_params.h"
#include "flexgen/build_info.h"
#include "flexgen/compute_device.h"
#include "flexgen/runtime_info.h"
#include "gpu_name.h"

namespace {

using bench_decode::Clock;
using bench_decode::no_cuda_reason;
using bench_decode::parse_count;
using bench_decode::seconds_since;
using bench_decode::wait_for;
using json = nlohmann::ordered_json;
namespace cf = flexgen::cuda_fused;

constexpr const char* kUsage =
    "usage: bench_linear_cuda [--shape 1b|3b|both] [--rows LIST] [--prefill-rows LIST] [--reps N]\n"
    "  --shape  Llama-3.2 shape whose decode linears are measured (default both)\n"
    "  --rows   comma-separated row counts, each 1..1024 (default 1,8,16,32,64,128)\n"
    "  --prefill-rows  comma-separated prefill row counts, each 1..16384 (default 77,512,2464,8192;\n"
    "           0 measures none)\n"
    "  --reps   timed repetitions per (matrix, rows, kernel), median reported (default 5)\n";

struct Options {
  std::string shape = "both";
  std::vector<int64_t> rows = {1, 8, 16, 32, 64, 128};
  std::vector<int64_t> prefill_rows = {77, 512, 2464, 8192};
  int64_t reps = 5;
};

struct Matrix {
  const char* shape;
  const char* name;
  int64_t N, K;  // weight [N, K]
};
constexpr Matrix kMatrices[] = {
    {"1b", "qkv_proj", 3072, 2048},  {"1b", "o_proj", 2048, 2048},  {"1b", "gate_up_proj", 16384, 2048},
    {"1b", "down_proj", 2048, 8192}, {"1b", "lm_head", 128256, 2048}, {"3b", "qkv_proj", 5120, 3072},
    {"3b", "o_proj", 3072, 3072},    {"3b", "gate_up_proj", 16384, 3072}, {"3b", "down_proj", 3072, 8192},
    {"3b", "lm_head", 128256, 3072}};
const char* const kKernels[] = {"mma", "gemv", "cublas"};

constexpr int64_t kLimitBufferBytes = int64_t{2} << 30;  // as bench_decode_cuda
constexpr int kLimitRuns = 7;
constexpr int kLimitOpsPerRun = 5;
constexpr double kRotationBytes = 512e6;  // weight bytes one pass over the copies touches (L2: 50 MB)
constexpr double kProbeSeconds = 1e-3;    // calibration: calls are doubled until they take this long
constexpr double kTimedSeconds = 2e-3;    // GPU work per timed repetition, at least
constexpr int64_t kMaxRows = 1024;
constexpr int64_t kMaxPrefillRows = 16384;
constexpr int64_t kCheckRows = 8;
constexpr int64_t kInvariantBatch = 64;
constexpr int64_t kInvariantRows[] = {0, 37, 63};
constexpr uint64_t kSeed = 0;

void progress(const std::string& msg) { std::cerr << "bench_linear_cuda: " << msg << std::endl; }

int usage(const std::string& msg) {
  std::cerr << "bench_linear_cuda: " << msg << "\n" << kUsage;
  return 2;
}


std::vector<int64_t> parse_rows(const std::string& flag, const std::string& text, int64_t max_rows) {
  std::vector<int64_t> rows;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    rows.push_back(parse_count(flag, item));
    if (rows.back() > max_rows)
      throw std::invalid_argument(flag + ": at most " + std::to_string(max_rows) + " rows, got " + item);
  }
  if (rows.empty() || text.back() == ',')
    throw std::invalid_argument(flag + ": not a comma list of row counts: \"" + text + "\"");
  return rows;
}


void launched(int err, const std::string& who) {
  if (err != 0) throw std::runtime_error(who + " failed: cudaError_t " + std::to_string(err));
}

// y [rows, N] = x [rows, K] . w [N, K]^T through one of the kernels; x and y contiguous, 16-byte
// aligned, on the legacy default stream (libtorch's default stream, where at::linear runs too).
at::Tensor linear(const std::string& kernel, const at::Tensor& x, const at::Tensor& w, at::Tensor y) {
  const int64_t rows = x.size(0);
  const int N = static_cast<int>(w.size(0)), K = static_cast<int>(w.size(1));
  if (kernel == "cublas") return at::linear(x, w);
  if (kernel == "prefill") {
    launched(cf::prefill_linear(cf::DType::BF16, x.data_ptr(), w.data_ptr(), y.data_ptr(), rows, N, K,
                                /*stream=*/nullptr, /*pdl=*/false),
             "cuda_fused::prefill_linear");
    return y;
  }
  if (kernel == "mma") {
    launched(cf::mma_linear(cf::DType::BF16, x.data_ptr(), w.data_ptr(), y.data_ptr(), rows, N, K,
                            cf::mma_linear_k_splits(N), /*read_once=*/true, /*stream=*/nullptr, /*pdl=*/false),
             "cuda_fused::mma_linear");
    return y;
  }
  const auto* xp = static_cast<const char*>(x.data_ptr());
  auto* yp = static_cast<char*>(y.data_ptr());
  for (int64_t r = 0; r < rows; r += 8)  // as the old batch-invariant path: 8 rows a launch
    launched(cf::gemv(cf::DType::BF16, xp + r * K * 2, w.data_ptr(), yp + r * N * 2,
                      static_cast<int>(std::min<int64_t>(8, rows - r)), N, K, cf::gemv_warps_per_column(N),
                      /*read_once=*/r + 8 >= rows, /*stream=*/nullptr, /*pdl=*/false),
             "cuda_fused::gemv");
  return y;
}

struct Timing {
  double us = 0, host_us = 0;  // medians over repetitions, per call
  int64_t calls = 0;           // per repetition
  std::vector<double> runs_us;
};

// `call(i)` runs one call on weight copy i % copies and returns what it wrote. Warm-up over all
// copies, calibration (calls doubled until kProbeSeconds), then `reps` repetitions of >= kTimedSeconds
// of GPU work, each timed on the host from the first launch up to wait_for(its last result).
Timing time_calls(const std::function<at::Tensor(int64_t)>& call, int64_t copies, int64_t reps) {
  at::Tensor last;
  auto run = [&](int64_t n) {
    for (int64_t i = 0; i < n; ++i) last = call(i);
  };
  run(copies);
  wait_for(last);
  int64_t n = copies;
  double s = 0;
  for (;; n *= 2) {
    const auto start = Clock::now();
    run(n);
    wait_for(last);
    if ((s = seconds_since(start)) >= kProbeSeconds) break;
  }
  Timing t;
  t.calls = copies * std::max<int64_t>(1, static_cast<int64_t>(std::ceil(kTimedSeconds / s * n / copies)));
  std::vector<double> host;
  for (int64_t r = 0; r < reps; ++r) {
    const auto start = Clock::now();
    run(t.calls);
    host.push_back(seconds_since(start) * 1e6 / t.calls);
    wait_for(last);
    t.runs_us.push_back(seconds_since(start) * 1e6 / t.calls);
  }
  t.us = bench_decode::median(t.runs_us);
  t.host_us = bench_decode::median(host);
  return t;
}

// Every element of y (bf16 [rows, N]) within 1.5 bf16 ulps of |ref| + 1e-3 max|ref| of ref (fp32).
json check_against(const at::Tensor& y, const at::Tensor& ref, double ref_max, bool& ok) {
  const at::Tensor bound = 1.5 * at::exp2(at::floor(at::log2(ref.abs())) - 7) + 1e-3 * ref_max;  // 8-bit significand
  const at::Tensor err = (y.to(at::kFloat) - ref).abs();
  const bool pass = (err <= bound).all().item<bool>();
  ok = ok && pass;
  return {{"max_err", err.max().item<double>()},
          {"max_err_over_bound", (err / bound).max().item<double>()},
          {"ok", pass}};
}

// The matrix at prefill sizes: the tiled row-invariant kernel against cuBLAS (checks: 8 rows
// against fp32; rows of a 300-row call against the same rows alone and in a 77-row call, bitwise).
json measure_prefill(const Matrix& m, const Options& o, const std::vector<at::Tensor>& w, int64_t copies, bool& ok) {
  const auto opts = w[0].options();
  const int64_t max_rows = std::max<int64_t>(300, *std::max_element(o.prefill_rows.begin(), o.prefill_rows.end()));
  const at::Tensor x = at::empty({max_rows, m.K}, opts).normal_(0.0, 1.0);
  const at::Tensor x8 = x.narrow(0, 0, kCheckRows);
  const at::Tensor ref = at::matmul(x8.to(at::kFloat), w[0].to(at::kFloat).t());
  json check = {{"rows", kCheckRows}, {"max_abs_ref", ref.abs().max().item<double>()}};
  check["prefill"] = check_against(linear("prefill", x8, w[0], at::empty({kCheckRows, m.N}, opts)), ref,
                                   ref.abs().max().item<double>(), ok);
  const at::Tensor big = linear("prefill", x.narrow(0, 0, 300), w[0], at::empty({300, m.N}, opts));
  const at::Tensor small = linear("prefill", x.narrow(0, 0, 77), w[0], at::empty({77, m.N}, opts));
  bool same = at::equal(big.narrow(0, 0, 77).view(at::kShort), small.view(at::kShort));
  for (const int64_t r : {0, 129, 299}) {
    const at::Tensor alone = linear("prefill", x.narrow(0, r, 1), w[0], at::empty({1, m.N}, opts));
    same = same && at::equal(big.narrow(0, r, 1).view(at::kShort), alone.view(at::kShort));
  }
  ok = ok && same && check["prefill"]["ok"].get<bool>();
  check["row_invariant"] = {{"batch", 300}, {"rows", {0, 129, 299}}, {"prefix_rows", 77}, {"ok", same}};
  if (!same || !check["prefill"]["ok"].get<bool>())
    progress("CHECK FAILED for " + std::string(m.shape) + " " + m.name + " prefill: " + check.dump());
  json entries = json::array();
  for (const int64_t rows : o.prefill_rows) {
    const at::Tensor xr = x.narrow(0, 0, rows);
    at::Tensor y = at::empty({rows, m.N}, opts);
    const double flop = 2.0 * static_cast<double>(rows) * static_cast<double>(m.N) * static_cast<double>(m.K);
    json e = {{"rows", rows}};
    std::string line = std::string(m.shape) + " " + m.name + " prefill rows " + std::to_string(rows) + ":";
    for (const std::string k : {"prefill", "cublas"}) {
      const Timing t = time_calls([&](int64_t i) { return linear(k, xr, w[i % copies], y); }, copies, o.reps);
      e[k] = {{"us", t.us}, {"tflops", flop / t.us / 1e6}, {"calls", t.calls}, {"runs_us", t.runs_us}};
      line += " " + k + " " + std::to_string(t.us) + " us (" + std::to_string(flop / t.us / 1e6) + " TFLOP/s)";
    }
    e["cublas_over_prefill"] = e["cublas"]["us"].get<double>() / e["prefill"]["us"].get<double>();
    progress(line);
    entries.push_back(e);
  }
  return {{"check", check}, {"entries", entries}};
}

// One matrix: its weight copies, the checks, and every (rows, kernel).
json measure_matrix(const Matrix& m, const Options& o, const at::Device& device, double read_gbps, bool& ok) {
  const auto opts = at::TensorOptions().dtype(at::kBFloat16).device(device);
  const double bytes = static_cast<double>(m.N * m.K * 2);
  const int64_t copies = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(kRotationBytes / bytes)));
  progress(std::string(m.shape) + " " + m.name + " [" + std::to_string(m.N) + ", " + std::to_string(m.K) + "]: " +
           std::to_string(copies) + " copies of " + std::to_string(bytes / 1e6) + " MB");
  std::vector<at::Tensor> w;
  for (int64_t c = 0; c < copies; ++c) w.push_back(at::empty({m.N, m.K}, opts).normal_(0.0, 0.02));
  const int64_t max_rows = std::max(kInvariantBatch, *std::max_element(o.rows.begin(), o.rows.end()));
  const at::Tensor x = at::empty({max_rows, m.K}, opts).normal_(0.0, 1.0);
  json out = {{"shape", m.shape}, {"name", m.name}, {"N", m.N}, {"K", m.K}, {"weight_bytes", bytes},
              {"copies", copies}, {"rotation_bytes", bytes * copies},
              {"k_splits", cf::mma_linear_k_splits(static_cast<int>(m.N))},
              {"gemv_warps_per_column", cf::gemv_warps_per_column(static_cast<int>(m.N))}};

  // Checks: rows 0..7 against fp32; mma's rows of a 64-row call against the same rows alone, bitwise.
  const at::Tensor x8 = x.narrow(0, 0, kCheckRows);
  const at::Tensor ref = at::matmul(x8.to(at::kFloat), w[0].to(at::kFloat).t());
  const double ref_max = ref.abs().max().item<double>();
  json check = {{"rows", kCheckRows}, {"max_abs_ref", ref_max}};
  for (const std::string k : {"mma", "gemv"})
    check[k] = check_against(linear(k, x8, w[0], at::empty({kCheckRows, m.N}, opts)), ref, ref_max, ok);
  const at::Tensor batch =
      linear("mma", x.narrow(0, 0, kInvariantBatch), w[0], at::empty({kInvariantBatch, m.N}, opts));
  bool same = true;
  for (const int64_t r : kInvariantRows) {
    const at::Tensor alone = linear("mma", x.narrow(0, r, 1), w[0], at::empty({1, m.N}, opts));
    same = same && at::equal(batch.narrow(0, r, 1).view(at::kShort), alone.view(at::kShort));
  }
  ok = ok && same;
  check["row_invariant"] = {{"batch", kInvariantBatch}, {"rows", kInvariantRows}, {"ok", same}};
  out["check"] = check;
  if (!check["mma"]["ok"].get<bool>() || !check["gemv"]["ok"].get<bool>() || !same)
    progress("CHECK FAILED for " + std::string(m.shape) + " " + m.name + ": " + check.dump());

  json entries = json::array();
  for (const int64_t rows : o.rows) {
    const at::Tensor xr = x.narrow(0, 0, rows);
    at::Tensor y = at::empty({rows, m.N}, opts);
    json e = {{"rows", rows}};
    std::string line = std::string(m.shape) + " " + m.name + " rows " + std::to_string(rows) + ":";
    for (const std::string k : kKernels) {
      const Timing t = time_calls([&](int64_t i) { return linear(k, xr, w[i % copies], y); }, copies, o.reps);
      const double gbps = bytes / t.us / 1e3;  // bytes / (us * 1e-6) / 1e9
      e[k] = {{"us", t.us}, {"host_us", t.host_us}, {"gbps", gbps},
              {"frac_read_bw", read_gbps > 0 ? gbps / read_gbps : 0}, {"calls", t.calls}, {"runs_us", t.runs_us}};
      line += " " + k + " " + std::to_string(t.us) + " us";
    }
    const double mma_us = e["mma"]["us"].get<double>();
    e["gemv_over_mma"] = e["gemv"]["us"].get<double>() / mma_us;
    e["cublas_over_mma"] = e["cublas"]["us"].get<double>() / mma_us;
    progress(line);
    entries.push_back(e);
  }
  out["entries"] = entries;
  // A prefill pass computes the LM head for each row's last position only: no prefill sizes.
  if (!o.prefill_rows.empty() && std::string(m.name) != "lm_head") out["prefill"] = measure_prefill(m, o, w, copies, ok);
  return out;
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
    if (a != "--shape" && a != "--rows" && a != "--prefill-rows" && a != "--reps")
      return usage("unknown argument \"" + a + "\"");
    if (i + 1 >= argc) return usage(a + " needs a value");
    const std::string v = argv[++i];
    try {
      if (a == "--shape") o.shape = v;
      else if (a == "--rows") o.rows = parse_rows(a, v, kMaxRows);
      else if (a == "--prefill-rows") o.prefill_rows = v == "0" ? std::vector<int64_t>{} : parse_rows(a, v, kMaxPrefillRows);
      else o.reps = parse_count(a, v);
    } catch (const std::exception& e) {
      return usage(e.what());
    }
  }
  if (o.shape != "1b" && o.shape != "3b" && o.shape != "both")
    return usage("--shape must be 1b, 3b or both, got \"" + o.shape + "\"");

  if (!flexgen::cuda_available() || !flexgen::cuda_block_sparse_attention_available()) {
    std::cerr << "bench_linear_cuda: error: no CUDA device: " << no_cuda_reason()
              << ". This benchmark measures GPU kernels only.\n";
    return 2;
  }

  bool ok = true;
  try {
    const auto t_start = Clock::now();
    const at::Device device = flexgen::choose_device("cuda").device;
    flexgen::bind_device(device);
    at::manual_seed(kSeed);
    json out = {{"bench", "linear_cuda"}};
    const std::string gpu = bench_decode::nvidia_gpu_model();
    if (!gpu.empty()) out["device"] = gpu;
    out["shape"] = o.shape;
    out["dtype"] = "bf16";
    out["torch"] = flexgen::torch_version();
    out["commit"] = FLEXGEN_GIT_COMMIT;
    out["setup"] = {{"rows", o.rows},
                    {"prefill_rows", o.prefill_rows},
                    {"reps", o.reps},
                    {"min_rotation_bytes", kRotationBytes},
                    {"min_timed_ms", kTimedSeconds * 1e3},
                    {"seed", kSeed},
                    {"stream", "legacy default stream (nullptr); libtorch's ops on its default stream"},
                    {"mma", "cuda_fused::mma_linear(BF16, x, w, y, rows, N, K, mma_linear_k_splits(N), "
                            "read_once=true, stream=nullptr, pdl=false)"},
                    {"gemv", "cuda_fused::gemv(BF16, ..., min(8, rows - r), N, K, gemv_warps_per_column(N), "
                             "read_once on the last launch, stream=nullptr, pdl=false) for r = 0, 8, ..."},
                    {"prefill", "cuda_fused::prefill_linear(BF16, x, w, y, rows, N, K, stream=nullptr, pdl=false)"},
                    {"cublas", "at::linear(x, w)"}};

    progress("bandwidth limits (" + std::to_string(kLimitRuns) + " runs of " + std::to_string(kLimitOpsPerRun) +
             " ops over 2 GiB buffers)");
    auto t = Clock::now();
    const bench_decode::Limits limits =
        bench_decode::measure_limits(device, kLimitBufferBytes, kLimitRuns, kLimitOpsPerRun);
    const double limits_s = seconds_since(t);
    progress("copy " + std::to_string(limits.copy_gbps) + " GB/s, read " + std::to_string(limits.read_gbps) + " GB/s");
    out["limits"] = limits.to_json();

    t = Clock::now();
    json matrices = json::array();
    for (const Matrix& m : kMatrices)
      if (o.shape == "both" || o.shape == m.shape)
        matrices.push_back(measure_matrix(m, o, device, limits.read_gbps, ok));
    out["matrices"] = matrices;
    out["ok"] = ok;
    out["seconds"] = {{"limits", limits_s}, {"matrices", seconds_since(t)}, {"total", seconds_since(t_start)}};
    std::cout << out.dump(2) << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "bench_linear_cuda: error: " << e.what() << "\n";
    return 1;
  }
  if (!ok) {
    std::cerr << "bench_linear_cuda: error: a correctness check failed (see \"check\" in the JSON)\n";
    return 1;
  }
  return 0;
}
