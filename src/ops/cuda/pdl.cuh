// Programmatic dependent launch (Hopper and later), shared by the CUDA kernels of ops/cuda.
// A kernel launched with the PDL attribute may start while the previous kernel of its stream
// finishes: pdl_wait() blocks until that kernel has completed and its writes are visible, so it
// comes before the first read of anything an earlier kernel wrote (weights and masks uploaded
// before the step are not: they may be read before it). pdl_trigger() lets the next kernel launch
// once every block of this one has called it (or exited). Without the attribute both are no-ops.
#pragma once

#include <cuda_runtime.h>

#include "env_switch.h"

namespace flexgen {
namespace cuda_pdl {

__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// 16 bytes of what the previous kernel wrote, read after pdl_wait(): a plain ld.global in a
// volatile asm, which the compiler keeps after the wait. Not __ldg or loads through a const
// __restrict__ pointer (ld.global.nc): their data is taken not to change while the kernel runs,
// so they may be issued before the wait, and with PDL the previous kernel may still be writing.
__device__ __forceinline__ uint4 load_after_wait(const void* p) {
  uint4 v;
  asm volatile("ld.global.v4.u32 {%0, %1, %2, %3}, [%4];\n" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  return v;
}

__device__ __forceinline__ void pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Decode launches of at most this many rows trigger their dependents as they start (before their
// own wait), so the next kernel's blocks are resident and fetching their weights while this one
// streams (an H200, batch 1, one call: 3B step 2.275 -> 2.222 ms, 1B 1.038 -> 1.011). With more
// rows it cost 1% (32 and 160 rows), so those trigger late.
constexpr long long kEarlyTriggerRows = 8;

// Whether launches of few rows trigger early: yes unless FLEXGEN_CUDA_EARLY_TRIGGER=0 (A/B runs;
// no value depends on it: a dependent still waits for this kernel's end). Read once per process.
inline bool early_trigger_enabled() {
  static const bool on = cuda_env::env_switch("FLEXGEN_CUDA_EARLY_TRIGGER", {"0", "1"}) != "0";
  return on;
}

// Whether a PDL launch of `rows` rows triggers its dependents early.
inline bool trigger_early(bool pdl, long long rows) {
  return pdl && rows <= kEarlyTriggerRows && early_trigger_enabled();
}

// Launches kernel<<<grid, block, smem, stream>>>(args...), with the PDL attribute when `pdl` and,
// when cluster_x > 0, as thread-block clusters of cluster_x x 1 x 1 CTAs (sm_90; sizes above 8 need
// the kernel's NonPortableClusterSizeAllowed attribute). Returns the cudaError_t of the launch.
template <typename... Params, typename... Args>
cudaError_t launch_clusters(unsigned cluster_x, void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                            cudaStream_t stream, bool pdl, Args... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[2];
  unsigned n = 0;
  if (pdl) {
    attr[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[n++].val.programmaticStreamSerializationAllowed = 1;
  }
  if (cluster_x > 0) {
    attr[n].id = cudaLaunchAttributeClusterDimension;
    attr[n].val.clusterDim.x = cluster_x;
    attr[n].val.clusterDim.y = 1;
    attr[n++].val.clusterDim.z = 1;
  }
  cfg.attrs = attr;
  cfg.numAttrs = n;
  return cudaLaunchKernelEx(&cfg, kernel, static_cast<Params>(args)...);
}

// The same without clusters.
template <typename... Params, typename... Args>
cudaError_t launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, bool pdl,
                   Args... args) {
  return launch_clusters(0, kernel, grid, block, smem, stream, pdl, args...);
}

}  // namespace cuda_pdl
}  // namespace flexgen
