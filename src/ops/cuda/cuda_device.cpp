// bind_cuda_device (cuda_device.h).
#include "cuda/cuda_device.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAFunctions.h>

#include <stdexcept>
#include <string>

#include "cuda/block_sparse_attention_cuda.h"
#include "cuda/fused_ops_cuda.h"
#include "env_switch.h"

namespace flexgen {

void bind_cuda_device(const at::Device& device) {
  if (!device.is_cuda() || !device.has_index())
    throw std::invalid_argument("bind_cuda_device: needs a CUDA device with an index, got " + device.str());
  c10::cuda::set_device(device.index());
  // Every FLEXGEN_CUDA_* switch read now: a bad value stops the run before it opens its output.
  cuda_pdl_enabled();
  read_fused_ops_switches();
  read_attention_switches();
}

bool cuda_pdl_enabled() {
  static const bool on = cuda_env::env_switch("FLEXGEN_CUDA_PDL", {"0", "1"}) != "0" &&
                         at::cuda::getCurrentDeviceProperties()->major >= 9;
  return on;
}

}  // namespace flexgen
