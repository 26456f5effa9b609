// CudaGraph (flexgen/cuda_graph.h) on at::cuda::CUDAGraph.
#include "cuda/cuda_graph.h"

#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>

#include <stdexcept>

namespace flexgen {

struct CudaGraph::Impl {
  at::cuda::CUDAGraph graph;
  c10::Device device = c10::Device(c10::kCUDA, 0);
};

CudaGraph::CudaGraph(const c10::Device& device, const std::function<void()>& work, int warm_runs)
    : impl_(std::make_unique<Impl>()) {
  if (!device.is_cuda() || !device.has_index())
    throw std::invalid_argument("CudaGraph: needs a CUDA device with an index, got " + device.str());
  impl_->device = device;
  // Everything below (streams, capture, the work's launches) on `device`, whatever is current.
  c10::cuda::CUDAGuard device_guard(device);
  // Capture must happen on a side stream; it waits for the work already queued on the current one.
  at::cuda::CUDAStream current = at::cuda::getCurrentCUDAStream(device.index());
  at::cuda::CUDAStream side = at::cuda::getStreamFromPool(false, device.index());
  side.synchronize();
  current.synchronize();
  {
    c10::cuda::CUDAStreamGuard guard(side);
    for (int i = 0; i < warm_runs; ++i) work();
    side.synchronize();
    impl_->graph.capture_begin();
    work();
    impl_->graph.capture_end();
  }
  side.synchronize();
}

CudaGraph::~CudaGraph() = default;

void CudaGraph::replay() {
  c10::cuda::CUDAGuard device_guard(impl_->device);
  impl_->graph.replay();
}

}  // namespace flexgen
