// Kernel attributes set once per device, shared by ops/cuda's launchers: an attribute belongs to
// the kernel on the current device, so it is set on the first launch on each device (up to 64
// devices) and later launches skip the call.
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>

namespace flexgen {
namespace cuda_launch {

// Sets Kernel's attribute A to `value` on the current device (each (Kernel, A) pair keeps one
// value). Returns the cudaError_t of the attempt (cudaSuccess when already done on this device).
template <auto Kernel, cudaFuncAttribute A>
cudaError_t set_once(int value) {
  static std::atomic<uint64_t> set_on{0};  // bit d: done on device d
  int device = 0;
  if (const cudaError_t e = cudaGetDevice(&device); e != cudaSuccess) return e;
  const uint64_t bit = uint64_t{1} << (device & 63);
  if ((set_on.load(std::memory_order_acquire) & bit) != 0) return cudaSuccess;
  if (const cudaError_t e = cudaFuncSetAttribute(Kernel, A, value); e != cudaSuccess) return e;
  set_on.fetch_or(bit, std::memory_order_acq_rel);
  return cudaSuccess;
}

// Lets Kernel take `bytes` of dynamic shared memory (above the 48 KB default).
template <auto Kernel>
cudaError_t allow_dynamic_smem(int bytes) {
  return set_once<Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize>(bytes);
}

}  // namespace cuda_launch
}  // namespace flexgen
