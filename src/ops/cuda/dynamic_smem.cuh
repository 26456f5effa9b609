// Raising a kernel's dynamic shared-memory limit above the 48 KB default, shared by ops/cuda's
// launchers. The attribute belongs to the kernel on the current device: it is set on the first
// launch on each device (up to 64 devices), later launches skip the call.
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>

namespace flexgen {
namespace cuda_launch {

// Lets Kernel take `bytes` of dynamic shared memory on the current device. Returns the
// cudaError_t of the attempt (cudaSuccess when already done on this device).
template <auto Kernel>
cudaError_t allow_dynamic_smem(int bytes) {
  static std::atomic<uint64_t> set_on{0};  // bit d: done on device d
  int device = 0;
  if (const cudaError_t e = cudaGetDevice(&device); e != cudaSuccess) return e;
  const uint64_t bit = uint64_t{1} << (device & 63);
  if ((set_on.load(std::memory_order_acquire) & bit) != 0) return cudaSuccess;
  if (const cudaError_t e = cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
      e != cudaSuccess)
    return e;
  set_on.fetch_or(bit, std::memory_order_acq_rel);
  return cudaSuccess;
}

}  // namespace cuda_launch
}  // namespace flexgen
