// Kernel attributes set (and occupancies asked) once per device, shared by ops/cuda's launchers:
// an attribute belongs to the kernel on the current device, so it is set on the first launch on
// each device (up to 64 devices) and later launches skip the call.
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

// CTAs of Kernel (threads a CTA and `bytes` of dynamic shared memory: each Kernel launches with one
// configuration) an SM of the current device holds at once, into `ctas`; asked once per device.
// Returns the cudaError_t of the query (cudaSuccess when known already).
template <auto Kernel>
cudaError_t resident_ctas(int threads, int bytes, int& ctas) {
  static std::atomic<int> known[64] = {};  // value + 1 once asked
  int device = 0;
  if (const cudaError_t e = cudaGetDevice(&device); e != cudaSuccess) return e;
  if (const int k = known[device & 63].load(std::memory_order_acquire); k != 0) {
    ctas = k - 1;
    return cudaSuccess;
  }
  int n = 0;
  if (const cudaError_t e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, Kernel, threads, bytes); e != cudaSuccess)
    return e;
  known[device & 63].store(n + 1, std::memory_order_release);
  ctas = n;
  return cudaSuccess;
}

}  // namespace cuda_launch
}  // namespace flexgen
