// CudaEvent (cuda_event.h) over a cudaEvent_t without timing.
#include "cuda_event.h"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace flexgen {

namespace {
void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("CUDA event: ") + what + ": " + cudaGetErrorString(e));
}
}  // namespace

CudaEvent::CudaEvent(const c10::Device& device) : device_(device) {
  if (!device.is_cuda()) throw std::invalid_argument("CUDA event: " + device.str() + " is not a CUDA device");
  c10::cuda::CUDAGuard guard(device);
  cudaEvent_t ev = nullptr;
  check(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming), "create");
  event_ = std::shared_ptr<void>(ev, [](void* e) { cudaEventDestroy(static_cast<cudaEvent_t>(e)); });
}

void CudaEvent::record() {
  c10::cuda::CUDAGuard guard(device_);
  check(cudaEventRecord(static_cast<cudaEvent_t>(event_.get()), at::cuda::getCurrentCUDAStream(device_.index()).stream()),
        "record");
}

void CudaEvent::wait() const { check(cudaEventSynchronize(static_cast<cudaEvent_t>(event_.get())), "wait"); }

}  // namespace flexgen
