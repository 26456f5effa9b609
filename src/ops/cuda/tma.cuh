// Hopper (sm_90a) tensor memory access and shared-memory barriers for the warp-specialized tiled
// linear (prefill_linear_tma_kernel.cu): mbarrier init / arrive / expect-tx / parity wait, and the
// 2-D TMA tile load that completes on an mbarrier. Compiled to nothing (or a trap) elsewhere: the
// launchers take these paths only on compute capability 9.0.
#pragma once

#include <cstdint>

namespace flexgen {
namespace cuda_tma {

// One mbarrier at shared address `bar`, completing a phase after `count` arrivals (and the bytes
// announced by arrive_expect_tx). Make it visible to the CTA (__syncthreads) before use.
__device__ __forceinline__ void mbar_init(uint32_t bar, unsigned count) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("{\n.reg .b64 s;\nmbarrier.arrive.shared::cta.b64 s, [%0];\n}\n" ::"r"(bar) : "memory");
#endif
}

// Arrives once and announces `bytes` of TMA writes the phase also waits for.
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, unsigned bytes) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("{\n.reg .b64 s;\nmbarrier.arrive.expect_tx.shared::cta.b64 s, [%0], %1;\n}\n" ::"r"(bar), "r"(bytes)
               : "memory");
#endif
}

// Blocks until the phase of parity `parity` (0, 1, 0, ...: phase count & 1) has completed.
__device__ __forceinline__ void mbar_wait(uint32_t bar, unsigned parity) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile(
      "{\n.reg .pred p;\nWAIT_%=:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n"
      "@!p bra WAIT_%=;\n}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
#endif
}

// The box of a 2-D tensor map at element coordinates (c0 along the contiguous dimension, c1 along
// rows) into shared memory at `dst` (laid out and swizzled as the map says; elements outside the
// tensor are zeros); its bytes complete on mbarrier `bar`.
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const void* map, uint32_t bar, int c0, int c1) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4}], [%2];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(bar), "r"(c0), "r"(c1)
      : "memory");
#endif
}

}  // namespace cuda_tma
}  // namespace flexgen
