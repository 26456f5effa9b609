// bind_cuda_device (cuda_device.h).
#include "cuda/cuda_device.h"

#include <c10/cuda/CUDAFunctions.h>

#include <stdexcept>

namespace flexgen {

void bind_cuda_device(const at::Device& device) {
  if (!device.is_cuda() || !device.has_index())
    throw std::invalid_argument("bind_cuda_device: needs a CUDA device with an index, got " + device.str());
  c10::cuda::set_device(device.index());
}

}  // namespace flexgen
