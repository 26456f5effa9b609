// A CUDA graph of one piece of GPU work (at::cuda::CUDAGraph), for decode steps: captured once
// with fixed tensor addresses, replayed every step without per-kernel host overhead.
#pragma once

#include <c10/core/Device.h>

#include <functional>
#include <memory>

namespace flexgen {

class CudaGraph {
 public:
  // Runs `work` `warm_runs` times on a side stream of `device` (warm-up: lazy initialisation,
  // cuBLAS workspaces; 0 where the caller has run the same work already), then captures one run;
  // `work` runs with `device` current, so every launch in it (whatever device guards it takes)
  // goes to the captured stream. Everything `work` allocates in the captured run comes from the
  // graph's private memory pool and stays valid for replays. Throws std::runtime_error when built
  // without CUDA.
  CudaGraph(const c10::Device& device, const std::function<void()>& work, int warm_runs = 2);
  ~CudaGraph();
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;
  // Replays the captured work on the device's current stream.
  void replay();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flexgen
