// Host-side timing of GPU work (clock.h).
#include "clock.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "cuda/cuda_graph.h"

namespace bench_decode {

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void wait_for(const at::Tensor& t) { (void)t.reshape({-1}).narrow(0, 0, 1).cpu(); }

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

GraphTiming time_graph(const at::Device& device, const std::function<at::Tensor()>& work, int64_t launches,
                       int64_t reps) {
  at::Tensor last;
  flexgen::CudaGraph graph(device, [&] { last = work(); });  // `last` ends as the captured run's output
  graph.replay();
  wait_for(last);
  GraphTiming t;
  t.replays_per_batch = std::max<int64_t>(1, reps / 10);
  const int64_t batches = std::max<int64_t>(1, reps / t.replays_per_batch);
  std::vector<double> per_launch;
  for (int64_t b = 0; b < batches; ++b) {
    const auto start = Clock::now();
    for (int64_t i = 0; i < t.replays_per_batch; ++i) graph.replay();
    wait_for(last);
    per_launch.push_back(seconds_since(start) * 1e6 / static_cast<double>(t.replays_per_batch * launches));
  }
  t.replays = batches * t.replays_per_batch;
  t.us_per_launch = median(per_launch);
  return t;
}

}  // namespace bench_decode
