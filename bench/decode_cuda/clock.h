// bench_decode_cuda's clock: GPU work timed from the host with std::chrono and no CUDA header (this
// file compiles against a CPU libtorch): the host waits for the device by copying one element of a
// result, and a kernel sequence is timed as a CUDA graph replayed many times.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

namespace bench_decode {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start);

// Returns once the work that wrote `t` (and everything queued before it on the current stream) has
// finished: copies t's first element to the host.
void wait_for(const at::Tensor& t);

double median(std::vector<double> v);

struct GraphTiming {
  double us_per_launch = 0;      // median over batches of (batch time / launches in the batch)
  int64_t replays = 0;           // timed replays
  int64_t replays_per_batch = 0;
};

// `work` launches `launches` kernels and returns a tensor its last launch wrote. It is captured once
// as a flexgen::CudaGraph on `device` (which runs it twice first: warm-up), replayed once untimed, then
// `reps` times in about 10 batches, each batch timed on the host up to wait_for(that tensor).
GraphTiming time_graph(const at::Device& device, const std::function<at::Tensor()>& work, int64_t launches,
                       int64_t reps);

}  // namespace bench_decode
