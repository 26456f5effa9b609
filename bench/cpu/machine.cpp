// machine.h: CPU description and measured limits. Compiled without -march=native (see CMakeLists.txt):
// each ISA loop is a target-attributed function, called only when the CPU reports that ISA.
#include "machine.h"

#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include <ATen/Parallel.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "flexgen/cpu_isa.h"

namespace bench_cpu {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  const auto e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

std::string read_line(const std::string& path) {
  std::ifstream in(path);
  std::string s;
  std::getline(in, s);
  return trim(s);
}

// Runs f(t) once for each t in [0, threads) on libtorch's intra-op pool (the threads the model uses) and
// returns the wall time of the whole parallel region; *distinct gets the number of OS threads that ran.
template <class F>
double run_on_threads(int threads, int* distinct, F&& f) {
  std::mutex mu;
  std::set<std::thread::id> ids;
  const auto t0 = Clock::now();
  at::parallel_for(0, threads, 1, [&](int64_t b, int64_t e) {
    {
      std::lock_guard<std::mutex> lock(mu);
      ids.insert(std::this_thread::get_id());
    }
    for (int64_t t = b; t < e; ++t) f(static_cast<int>(t));
  });
  const double s = seconds_since(t0);
  if (distinct) *distinct = static_cast<int>(ids.size());
  return s;
}

// ---- read bandwidth: sum of a slice, 8 independent accumulators ----

float sum_scalar(const float* p, size_t n) {  // x86-64 baseline (SSE2 by the compiler)
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) s[k] += p[i + k];
  for (; i < n; ++i) s[0] += p[i];
  float r = 0;
  for (float x : s) r += x;
  return r;
}

#if defined(__x86_64__)
float sum_sse2(const float* p, size_t n) {
  __m128 s[8];
  for (auto& x : s) x = _mm_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int k = 0; k < 8; ++k) s[k] = _mm_add_ps(s[k], _mm_load_ps(p + i + 4 * k));
  __m128 a = s[0];
  for (int k = 1; k < 8; ++k) a = _mm_add_ps(a, s[k]);
  float lanes[4];
  _mm_storeu_ps(lanes, a);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3] + sum_scalar(p + i, n - i);
}

__attribute__((target("avx2"))) float sum_avx2(const float* p, size_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    s0 = _mm256_add_ps(s0, _mm256_load_ps(p + i));
    s1 = _mm256_add_ps(s1, _mm256_load_ps(p + i + 8));
    s2 = _mm256_add_ps(s2, _mm256_load_ps(p + i + 16));
    s3 = _mm256_add_ps(s3, _mm256_load_ps(p + i + 24));
    s4 = _mm256_add_ps(s4, _mm256_load_ps(p + i + 32));
    s5 = _mm256_add_ps(s5, _mm256_load_ps(p + i + 40));
    s6 = _mm256_add_ps(s6, _mm256_load_ps(p + i + 48));
    s7 = _mm256_add_ps(s7, _mm256_load_ps(p + i + 56));
  }
  __m256 a = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)),
                           _mm256_add_ps(_mm256_add_ps(s4, s5), _mm256_add_ps(s6, s7)));
  float lanes[8];
  _mm256_storeu_ps(lanes, a);
  float r = 0;
  for (float x : lanes) r += x;
  return r + sum_scalar(p + i, n - i);
}

// Horizontal sum (_mm512_reduce_add_ps draws a false -Wuninitialized from GCC 12's headers).
__attribute__((target("avx512f"))) float hsum512(__m512 v) {
  float lanes[16];
  _mm512_storeu_ps(lanes, v);
  float r = 0;
  for (float x : lanes) r += x;
  return r;
}

__attribute__((target("avx512f"))) float sum_avx512(const float* p, size_t n) {
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
  size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    s0 = _mm512_add_ps(s0, _mm512_load_ps(p + i));
    s1 = _mm512_add_ps(s1, _mm512_load_ps(p + i + 16));
    s2 = _mm512_add_ps(s2, _mm512_load_ps(p + i + 32));
    s3 = _mm512_add_ps(s3, _mm512_load_ps(p + i + 48));
    s4 = _mm512_add_ps(s4, _mm512_load_ps(p + i + 64));
    s5 = _mm512_add_ps(s5, _mm512_load_ps(p + i + 80));
    s6 = _mm512_add_ps(s6, _mm512_load_ps(p + i + 96));
    s7 = _mm512_add_ps(s7, _mm512_load_ps(p + i + 112));
  }
  __m512 a = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)),
                           _mm512_add_ps(_mm512_add_ps(s4, s5), _mm512_add_ps(s6, s7)));
  return hsum512(a) + sum_scalar(p + i, n - i);
}
#endif

// ---- compute peaks: `acc` independent dependency chains, each a = a * m + c (converges, no denormals) ----

#if defined(__x86_64__)
constexpr int kSseAcc = 12, kAvx2Acc = 12, kAvx512Acc = 16, kBf16Acc = 16;

float peak_sse2(int64_t iters) {  // baseline x86-64: mulps + addps, 4 lanes, no FMA
  __m128 a[kSseAcc];
  for (int k = 0; k < kSseAcc; ++k) a[k] = _mm_set1_ps(1.0f + 0.01f * k);
  const __m128 m = _mm_set1_ps(0.999999f), c = _mm_set1_ps(1e-6f);
  for (int64_t i = 0; i < iters; ++i)
#pragma GCC unroll 12
    for (int k = 0; k < kSseAcc; ++k) a[k] = _mm_add_ps(_mm_mul_ps(a[k], m), c);
  __m128 s = a[0];
  for (int k = 1; k < kSseAcc; ++k) s = _mm_add_ps(s, a[k]);
  return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma"))) float peak_avx2(int64_t iters) {
  __m256 a[kAvx2Acc];
  for (int k = 0; k < kAvx2Acc; ++k) a[k] = _mm256_set1_ps(1.0f + 0.01f * k);
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
  for (int64_t i = 0; i < iters; ++i)
#pragma GCC unroll 12
    for (int k = 0; k < kAvx2Acc; ++k) a[k] = _mm256_fmadd_ps(a[k], m, c);
  __m256 s = a[0];
  for (int k = 1; k < kAvx2Acc; ++k) s = _mm256_add_ps(s, a[k]);
  return _mm256_cvtss_f32(s);
}

__attribute__((target("avx512f"))) float peak_avx512(int64_t iters) {
  __m512 a[kAvx512Acc];
  for (int k = 0; k < kAvx512Acc; ++k) a[k] = _mm512_set1_ps(1.0f + 0.01f * k);
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-6f);
  for (int64_t i = 0; i < iters; ++i)
#pragma GCC unroll 16
    for (int k = 0; k < kAvx512Acc; ++k) a[k] = _mm512_fmadd_ps(a[k], m, c);
  __m512 s = a[0];
  for (int k = 1; k < kAvx512Acc; ++k) s = _mm512_add_ps(s, a[k]);
  return hsum512(s);
}

// vdpbf16ps: per fp32 lane, acc += a[2i]*b[2i] + a[2i+1]*b[2i+1]: 16 lanes x 2 products x 2 flops = 64.
__attribute__((target("avx512f,avx512bf16"))) float peak_avx512bf16(int64_t iters) {
  __m512 a[kBf16Acc];
  for (int k = 0; k < kBf16Acc; ++k) a[k] = _mm512_setzero_ps();
  const __m512bh x = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(2e-3f));
  const __m512bh y = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(5e-4f));
  for (int64_t i = 0; i < iters; ++i)
#pragma GCC unroll 16
    for (int k = 0; k < kBf16Acc; ++k) a[k] = _mm512_dpbf16_ps(a[k], x, y);
  __m512 s = a[0];
  for (int k = 1; k < kBf16Acc; ++k) s = _mm512_add_ps(s, a[k]);
  return hsum512(s);
}
#endif

struct PeakKernel {
  const char* name;
  float (*fn)(int64_t);
  int accumulators;
  int flop_per_instruction;  // per vector instruction of the chain (sse2: per mul+add pair)
  int instructions_per_iter;
  const char* what;
};

std::vector<PeakKernel> peak_kernels() {
#if defined(__x86_64__)
  return {
      {"sse2_fp32", peak_sse2, kSseAcc, 8, kSseAcc, "x86-64 baseline: 4-lane mulps + addps (no FMA), 8 flop per pair"},
      {"avx2_fp32", peak_avx2, kAvx2Acc, 16, kAvx2Acc, "AVX2 vfmadd231ps ymm: 8 lanes x 2 flop"},
      {"avx512_fp32", peak_avx512, kAvx512Acc, 32, kAvx512Acc, "AVX-512F vfmadd231ps zmm: 16 lanes x 2 flop"},
      {"avx512bf16_dot", peak_avx512bf16, kBf16Acc, 64, kBf16Acc,
       "AVX512_BF16 vdpbf16ps zmm: 16 fp32 lanes x 2 bf16 products x 2 flop"},
  };
#else
  return {};
#endif
}

std::set<std::string> cpuinfo_flags() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  std::set<std::string> out;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) == 0) {
      std::istringstream ss(line.substr(line.find(':') + 1));
      std::string f;
      while (ss >> f) out.insert(f);
      break;
    }
  }
  return out;
}

}  // namespace

int available_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

nlohmann::ordered_json describe_machine() {
  nlohmann::ordered_json m;
  // /proc/cpuinfo: the first processor's model and flags; physical cores from (physical id, core id).
  {
    std::ifstream in("/proc/cpuinfo");
    std::string line, model, mhz, vendor;
    int logical = 0;
    std::string phys = "0";
    std::set<std::pair<std::string, std::string>> cores;
    while (std::getline(in, line)) {
      const auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      const std::string key = trim(line.substr(0, colon)), value = trim(line.substr(colon + 1));
      if (key == "processor") ++logical;
      else if (key == "model name" && model.empty()) model = value;
      else if (key == "vendor_id" && vendor.empty()) vendor = value;
      else if (key == "cpu MHz" && mhz.empty()) mhz = value;
      else if (key == "physical id") phys = value;
      else if (key == "core id") cores.insert({phys, value});
    }
    m["cpu_model"] = model;
    m["vendor"] = vendor;
    if (!mhz.empty()) m["cpu_mhz_reported"] = std::stod(mhz);
    m["logical_cpus"] = logical;
    m["physical_cores"] = cores.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(cores.size());
    m["available_cpus"] = available_cpus();  // this process's affinity mask
  }
  {
    const auto flags = cpuinfo_flags();
    nlohmann::ordered_json f = nlohmann::ordered_json::object();
    for (const char* name : {"avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_bf16",
                             "avx512_vnni", "avx_vnni", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8"})
      f[name] = flags.count(name) > 0;
    m["isa_flags"] = f;
  }
  {
    nlohmann::ordered_json caches = nlohmann::ordered_json::array();
    for (int i = 0; i < 8; ++i) {
      const std::string d = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
      const std::string level = read_line(d + "level");
      if (level.empty()) continue;
      caches.push_back({{"level", std::stoi(level)},
                        {"type", read_line(d + "type")},
                        {"size", read_line(d + "size")},
                        {"shared_cpu_list", read_line(d + "shared_cpu_list")}});
    }
    m["caches_cpu0"] = caches;
  }
  m["threads_used"] = at::get_num_threads();
  {
    // "ATen parallel backend: OpenMP" (one line of at::get_parallel_info()).
    std::istringstream ss(at::get_parallel_info());
    std::string line;
    while (std::getline(ss, line))
      if (line.find("parallel backend") != std::string::npos) m["aten_parallel_backend"] = trim(line.substr(line.find(':') + 1));
  }
  m["kernel_path"] = flexgen::to_string(flexgen::cpu_isa());
  m["best_kernel_path"] = flexgen::to_string(flexgen::best_cpu_isa());
  nlohmann::ordered_json runnable = nlohmann::ordered_json::array();
  for (auto isa : flexgen::runnable_cpu_isas()) runnable.push_back(flexgen::to_string(isa));
  m["runnable_kernel_paths"] = runnable;
  if (const char* env = std::getenv("FLEXGEN_CPU_ISA")) m["FLEXGEN_CPU_ISA"] = env;
  return m;
}

bool cpu_supports_peak(const std::string& name) {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (name == "sse2_fp32") return true;
  if (name == "avx2_fp32") return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (name == "avx512_fp32") return __builtin_cpu_supports("avx512f");
  if (name == "avx512bf16_dot") return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
#endif
  return false;
}

nlohmann::ordered_json BandwidthResult::to_json() const {
  return {{"gb_s", gb_s},         {"median_gb_s", median_gb_s}, {"buffer_bytes", bytes},
          {"threads", threads},   {"kernel", kernel},
          {"what", "multi-threaded fp32 sum over the buffer (each thread its slice, first touched by it), best of reps; GB = 1e9 bytes"}};
}

BandwidthResult measure_read_bandwidth(double bytes, int reps) {
  BandwidthResult r;
  const int threads = std::max(1, at::get_num_threads());
  constexpr size_t kAlign = size_t(2) << 20;  // 2 MiB: transparent huge pages where enabled
  size_t n = static_cast<size_t>(bytes / sizeof(float));
  n = (n + 1023) / 1024 * 1024;
  const size_t alloc = (n * sizeof(float) + kAlign - 1) / kAlign * kAlign;
  float* buf = static_cast<float*>(std::aligned_alloc(kAlign, alloc));
  if (buf == nullptr) throw std::runtime_error("read bandwidth: cannot allocate " + std::to_string(alloc) + " bytes");
  madvise(buf, alloc, MADV_HUGEPAGE);
  r.bytes = static_cast<double>(n * sizeof(float));

  float (*sum)(const float*, size_t) = sum_scalar;
  r.kernel = "scalar";
#if defined(__x86_64__)
  sum = sum_sse2;
  r.kernel = "sse2";
  if (cpu_supports_peak("avx2_fp32")) sum = sum_avx2, r.kernel = "avx2";
  if (cpu_supports_peak("avx512_fp32")) sum = sum_avx512, r.kernel = "avx512";
#endif
  // Slices of a multiple of 1024 floats (4 KiB): aligned for every kernel.
  const size_t per = (n / 1024 + threads - 1) / threads * 1024;
  auto slice = [&](int t, size_t* b, size_t* e) {
    *b = std::min(n, per * static_cast<size_t>(t));
    *e = std::min(n, *b + per);
  };
  run_on_threads(threads, nullptr, [&](int t) {
    size_t b, e;
    slice(t, &b, &e);
    for (size_t i = b; i < e; ++i) buf[i] = 0.5f;
  });
  std::vector<float> partial(threads);
  std::vector<double> gbs;
  for (int rep = 0; rep < std::max(1, reps); ++rep) {
    int distinct = 0;
    const double s = run_on_threads(threads, &distinct, [&](int t) {
      size_t b, e;
      slice(t, &b, &e);
      partial[t] = sum(buf + b, e - b);
    });
    double total = 0;
    for (float x : partial) total += x;
    const double expect = 0.5 * static_cast<double>(n);
    if (std::abs(total - expect) > 1e-3 * expect)
      std::cerr << "bench_cpu: read bandwidth checksum " << total << " != " << expect << "\n";
    gbs.push_back(r.bytes / s / 1e9);
    r.threads = std::max(r.threads, distinct);
  }
  std::free(buf);
  r.gb_s = *std::max_element(gbs.begin(), gbs.end());
  r.median_gb_s = median(gbs);
  return r;
}

nlohmann::ordered_json PeakResult::to_json() const {
  return {{"gflop_s", gflop_s},
          {"median_gflop_s", median_gflop_s},
          {"threads", threads},
          {"accumulators", accumulators},
          {"flop_per_instruction", flop_per_instruction},
          {"what", what}};
}

PeakResult measure_peak(const std::string& name, double seconds, int reps) {
  PeakResult r;
  r.name = name;
  const PeakKernel* k = nullptr;
  static const std::vector<PeakKernel> kernels = peak_kernels();
  for (const auto& x : kernels)
    if (name == x.name) k = &x;
  if (k == nullptr || !cpu_supports_peak(name)) return r;
  r.accumulators = k->accumulators;
  r.flop_per_instruction = k->flop_per_instruction;
  r.what = k->what;
  const int threads = std::max(1, at::get_num_threads());
  std::vector<float> sink(threads);
  auto run = [&](int64_t iters, int* distinct) {
    return run_on_threads(threads, distinct, [&](int t) { sink[t] = k->fn(iters); });
  };
  // Calibrate the iteration count so that one repetition takes about `seconds`.
  int64_t iters = 1 << 16;
  for (;;) {
    const double s = run(iters, nullptr);
    if (s > 0.05 || iters > (int64_t(1) << 40)) {
      iters = std::max<int64_t>(1, static_cast<int64_t>(iters * seconds / s));
      break;
    }
    iters *= 8;
  }
  const double flop = static_cast<double>(threads) * static_cast<double>(iters) * k->instructions_per_iter *
                      k->flop_per_instruction;
  std::vector<double> g;
  for (int rep = 0; rep < std::max(1, reps); ++rep) {
    int distinct = 0;
    const double s = run(iters, &distinct);
    g.push_back(flop / s / 1e9);
    r.threads = std::max(r.threads, distinct);
  }
  float check = 0;
  for (float x : sink) check += x;
  if (!(check == check)) std::cerr << "bench_cpu: " << name << " produced NaN\n";
  r.gflop_s = *std::max_element(g.begin(), g.end());
  r.median_gflop_s = median(g);
  return r;
}

}  // namespace bench_cpu
