// Where the model computes, decided once per process: the device a request names, bound as the
// process's current device, and the CPU threads. Every later layer takes the device from the
// loaded model (LlamaModel::device) and never decides again.
#pragma once

#include <c10/core/Device.h>

#include <stdexcept>
#include <string>

namespace flexgen {

// A device request that is not well formed (the caller's usage error).
struct DeviceRequestError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// "auto" (CUDA device 0 when this build and machine have one, else the CPU), "cpu", "cuda"
// (device 0) or "cuda:N". Throws DeviceRequestError for a malformed request and
// std::runtime_error for a device that is not there (no CUDA build, no GPU, N too large).
at::Device choose_device(const std::string& request);

// Makes `device` current for this process (CUDA), so that nothing lands on another GPU.
void bind_device(const at::Device& device);

// Intra-op threads for the CPU kernels and libtorch (it starts with 1 here); n <= 0 leaves it.
void set_cpu_threads(int n);

}  // namespace flexgen
