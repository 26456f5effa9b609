// compute_device.h: the one place where the device is chosen and bound.
#include "flexgen/compute_device.h"

#include <ATen/Parallel.h>

#include "cuda/block_sparse_attention_cuda.h"
#include "cuda/cuda_device.h"
#include "flexgen/runtime_info.h"

namespace flexgen {

at::Device choose_device(const std::string& request) {
  const bool wants_cuda = request == "cuda" || request.rfind("cuda:", 0) == 0;
  if (request != "auto" && request != "cpu" && !wants_cuda)
    throw DeviceRequestError("unknown device '" + request + "' (expected auto, cpu, cuda or cuda:N)");
  int index = 0;
  if (request.rfind("cuda:", 0) == 0) {
    const std::string n = request.substr(5);
    if (n.empty() || n.find_first_not_of("0123456789") != std::string::npos || n.size() > 4)
      throw DeviceRequestError("'" + request + "' (expected cuda:N with N a device number)");
    index = std::stoi(n);
  }
  const bool have_cuda = cuda_available() && cuda_block_sparse_attention_available();
  if (request == "cpu" || (request == "auto" && !have_cuda)) return at::Device(at::kCPU);
  if (!have_cuda)
    throw std::runtime_error(cuda_available() ? std::string("this flexgen was built without CUDA kernels")
                                              : "this machine has no CUDA device, or this flexgen (libtorch " +
                                                    torch_version() + ") was built without CUDA");
  if (index >= cuda_device_count())
    throw std::runtime_error("this machine has " + std::to_string(cuda_device_count()) + " CUDA device(s)");
  return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
}

void bind_device(const at::Device& device) {
  if (device.is_cuda()) bind_cuda_device(device.has_index() ? device : at::Device(at::kCUDA, 0));
}

void set_cpu_threads(int n) {
  if (n > 0) at::set_num_threads(n);
}

}  // namespace flexgen
