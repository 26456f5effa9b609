// Device side of step_timeline.h: stamping macros for the kernels, empty unless the build defines
// FLEXGEN_CUDA_TIMELINE. A kernel takes FLEXGEN_TIMELINE_NOW(v) first, FLEXGEN_TIMELINE_NOW(w)
// after its wait, and FLEXGEN_TIMELINE_STAMP(kind, id, n, v, w) where its thread 0 ends; a kernel
// file holding such kernels says FLEXGEN_TIMELINE_UNIT() once, outside any namespace (one buffer a
// file: the kernels are not built with relocatable device code).
#pragma once

#ifdef FLEXGEN_CUDA_TIMELINE
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "step_timeline.h"

namespace flexgen {
namespace cuda_timeline {
constexpr unsigned kUnitCapacity = 65536;
inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("kernel timeline: ") + what + ": " + cudaGetErrorString(e));
}
__device__ __forceinline__ unsigned long long now() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t)::"memory");
  return t;
}
}  // namespace cuda_timeline
}  // namespace flexgen

#define FLEXGEN_TIMELINE_UNIT()                                                                                  \
  namespace {                                                                                                    \
  __device__ ::flexgen::cuda_timeline::Stamp timeline_stamps[::flexgen::cuda_timeline::kUnitCapacity];          \
  __device__ unsigned timeline_count;                                                                            \
  void timeline_clear() {                                                                                        \
    const unsigned zero = 0;                                                                                     \
    ::flexgen::cuda_timeline::check(cudaMemcpyToSymbol(timeline_count, &zero, sizeof zero), "clear");            \
  }                                                                                                              \
  void timeline_read(std::vector<::flexgen::cuda_timeline::Stamp>& out) {                                        \
    unsigned n = 0;                                                                                              \
    ::flexgen::cuda_timeline::check(cudaMemcpyFromSymbol(&n, timeline_count, sizeof n), "read");                 \
    n = n < ::flexgen::cuda_timeline::kUnitCapacity ? n : ::flexgen::cuda_timeline::kUnitCapacity;               \
    const size_t at = out.size();                                                                                \
    out.resize(at + n);                                                                                          \
    if (n > 0)                                                                                                   \
      ::flexgen::cuda_timeline::check(                                                                           \
          cudaMemcpyFromSymbol(out.data() + at, timeline_stamps, n * sizeof(::flexgen::cuda_timeline::Stamp)), "read"); \
  }                                                                                                              \
  const bool timeline_registered = ::flexgen::cuda_timeline::register_unit(timeline_clear, timeline_read);       \
  }
#define FLEXGEN_TIMELINE_NOW(v) const unsigned long long v = ::flexgen::cuda_timeline::now()
#define FLEXGEN_TIMELINE_STAMP(kind_, id_, n_, start_, waited_)                                       \
  do {                                                                                                \
    if (threadIdx.x == 0) {                                                                           \
      unsigned sm_;                                                                                   \
      asm volatile("mov.u32 %0, %%smid;" : "=r"(sm_));                                                \
      const unsigned i_ = atomicAdd(&timeline_count, 1u);                                             \
      if (i_ < ::flexgen::cuda_timeline::kUnitCapacity) {                                             \
        ::flexgen::cuda_timeline::Stamp s_;                                                           \
        s_.start = (start_);                                                                          \
        s_.waited = (waited_);                                                                        \
        s_.end = ::flexgen::cuda_timeline::now();                                                     \
        s_.id = (id_);                                                                                \
        s_.kind = (kind_);                                                                            \
        s_.n = (n_);                                                                                  \
        s_.cta = static_cast<int>(blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z));   \
        s_.sm = static_cast<int>(sm_);                                                                \
        timeline_stamps[i_] = s_;                                                                     \
      }                                                                                               \
    }                                                                                                 \
  } while (0)
#else
#define FLEXGEN_TIMELINE_UNIT()
#define FLEXGEN_TIMELINE_NOW(v)
#define FLEXGEN_TIMELINE_STAMP(kind_, id_, n_, start_, waited_)
#endif
