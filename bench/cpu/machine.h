// bench_cpu's machine part: what the CPU is (/proc/cpuinfo, sysfs) and its limits, measured with the
// threads the model uses (at::parallel_for): read bandwidth over a buffer much larger than the last-level
// cache, and the fp32 FMA / bf16 dot-product peaks of each ISA the CPU can run. The ISA loops are
// target-attributed functions chosen at run time (this folder is compiled without -march=native).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace bench_cpu {

// CPU model name, ISA flags that matter, logical CPUs, cores, caches, the kernel path and every runnable
// path (flexgen's cpu_isa.h).
nlohmann::ordered_json describe_machine();

// Logical CPUs this process may run on (sched_getaffinity), at least 1.
int available_cpus();

struct BandwidthResult {
  double gb_s = 0;        // best of `reps`, 1e9 bytes/s
  double median_gb_s = 0;
  double bytes = 0;       // buffer size
  int threads = 0;        // threads that took part
  std::string kernel;     // "avx512", "avx2", "sse2"
  nlohmann::ordered_json to_json() const;
};
// Multi-threaded sum over `bytes` of fp32 (first touched by the same threads and slices), best of `reps`.
BandwidthResult measure_read_bandwidth(double bytes, int reps);

struct PeakResult {
  std::string name;       // "sse2_fp32", "avx2_fp32", "avx512_fp32", "avx512bf16_dot"
  double gflop_s = 0;     // best of reps
  double median_gflop_s = 0;
  int threads = 0;
  int accumulators = 0;
  int flop_per_instruction = 0;
  std::string what;
  nlohmann::ordered_json to_json() const;
};
// Throughput peak of one kernel on all threads; `seconds` is the target time of one repetition.
// Names: "sse2_fp32" (x86-64 baseline mulps+addps, no FMA), "avx2_fp32" (8-lane vfmadd),
// "avx512_fp32" (16-lane vfmadd), "avx512bf16_dot" (vdpbf16ps). Returns gflop_s 0 if the CPU lacks it.
PeakResult measure_peak(const std::string& name, double seconds, int reps);
bool cpu_supports_peak(const std::string& name);

}  // namespace bench_cpu
