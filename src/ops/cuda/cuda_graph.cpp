// CudaGraph (flexgen/cuda_graph.h) on at::cuda::CUDAGraph.
#include "flexgen/cuda_graph.h"

#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>

namespace flexgen {

struct CudaGraph::Impl {
  at::cuda::CUDAGraph graph;
};

CudaGraph::CudaGraph(const std::function<void()>& work) : impl_(std::make_unique<Impl>()) {
  // Capture must happen on a side stream; it waits for the work already queued on the current one.
  at::cuda::CUDAStream current = at::cuda::getCurrentCUDAStream();
  at::cuda::CUDAStream side = at::cuda::getStreamFromPool();
  side.synchronize();
  current.synchronize();
  {
    c10::cuda::CUDAStreamGuard guard(side);
    work();
    work();
    side.synchronize();
    impl_->graph.capture_begin();
    work();
    impl_->graph.capture_end();
  }
  side.synchronize();
}

CudaGraph::~CudaGraph() = default;

void CudaGraph::replay() { impl_->graph.replay(); }

}  // namespace flexgen
