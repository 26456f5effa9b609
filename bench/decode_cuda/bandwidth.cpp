// The GPU's measured bandwidth limits (bandwidth.h).
#include "bandwidth.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "clock.h"

namespace bench_decode {

nlohmann::ordered_json Limits::to_json() const {
  return {{"copy_gbps", copy_gbps},
          {"read_gbps", read_gbps},
          {"buffer_bytes", buffer_bytes},
          {"runs", runs},
          {"ops_per_run", ops_per_run},
          {"copy", "dst.copy_(src), bytes = 2 x buffer"},
          {"read", "at::sum(src, fp32), bytes = buffer"},
          {"copy_runs_gbps", copy_runs_gbps},
          {"read_runs_gbps", read_runs_gbps}};
}

Limits measure_limits(const at::Device& device, int64_t buffer_bytes, int runs, int ops_per_run) {
  const auto opts = at::TensorOptions().dtype(at::kBFloat16).device(device);
  const int64_t n = buffer_bytes / 2;
  at::Tensor src = at::zeros({n}, opts), dst = at::empty({n}, opts), sum;
  Limits l;
  l.buffer_bytes = static_cast<double>(n * 2);
  l.runs = runs;
  l.ops_per_run = ops_per_run;
  dst.copy_(src);
  wait_for(dst);
  sum = at::sum(src, at::kFloat);
  wait_for(sum);
  for (int r = 0; r < runs; ++r) {
    auto start = Clock::now();
    for (int i = 0; i < ops_per_run; ++i) dst.copy_(src);
    wait_for(dst);
    l.copy_runs_gbps.push_back(2 * l.buffer_bytes * ops_per_run / seconds_since(start) / 1e9);
    start = Clock::now();
    for (int i = 0; i < ops_per_run; ++i) sum = at::sum(src, at::kFloat);
    wait_for(sum);
    l.read_runs_gbps.push_back(l.buffer_bytes * ops_per_run / seconds_since(start) / 1e9);
  }
  l.copy_gbps = median(l.copy_runs_gbps);
  l.read_gbps = median(l.read_runs_gbps);
  return l;
}

double matmul_tflops(const at::Device& device, at::ScalarType dtype) {
  constexpr int64_t n = 8192;
  constexpr int kRuns = 5, kProducts = 5;
  const auto opts = at::TensorOptions().dtype(dtype).device(device);
  const at::Tensor a = at::randn({n, n}, opts), b = at::randn({n, n}, opts);
  at::Tensor c = at::matmul(a, b);
  wait_for(c);
  double best = 0;
  for (int r = 0; r < kRuns; ++r) {
    const auto start = Clock::now();
    for (int i = 0; i < kProducts; ++i) c = at::matmul(a, b);
    wait_for(c);
    best = std::max(best, 2.0 * n * n * n * kProducts / seconds_since(start) / 1e12);
  }
  return best;
}

}  // namespace bench_decode
