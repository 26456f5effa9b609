// bind_cuda_device (cuda_device.h).
#include "cuda/cuda_device.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAFunctions.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace flexgen {

void bind_cuda_device(const at::Device& device) {
  if (!device.is_cuda() || !device.has_index())
    throw std::invalid_argument("bind_cuda_device: needs a CUDA device with an index, got " + device.str());
  c10::cuda::set_device(device.index());
}

bool cuda_pdl_enabled() {
  static const bool on = [] {
    const char* env = std::getenv("FLEXGEN_CUDA_PDL");
    return at::cuda::getCurrentDeviceProperties()->major >= 9 && !(env && std::string(env) == "0");
  }();
  return on;
}

}  // namespace flexgen
