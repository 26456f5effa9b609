// Shared-memory stages of the tiled tensor-core linears: x and w tiles of 64 elements of K a stage,
// rows of 128 bytes whose 16-byte units are XOR-swizzled by row & 7 (conflict-free for ldmatrix;
// wgmma's 128-byte K-major layout, which TMA's 128-byte swizzle also writes: tma_tile.cuh), copied
// by cp.async (prefill_linear_kernel.cu); the Hopper tile shapes of the cp.async stages; and the
// device facts the launchers pick kernels and tiles by. The stages set the speed, never the bits.
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>

#include "cp_async.cuh"
#include "pdl.cuh"

namespace flexgen {
namespace cuda_fused {
namespace tile_stages {

constexpr int kBK = 64;             // K elements a stage
constexpr int kRowBytes = kBK * 2;  // 128 bytes a tile row a stage

// Byte offset of 16-byte unit u (0..7) of tile row r.
__device__ __forceinline__ uint32_t unit_offset(int r, int u) {
  return static_cast<uint32_t>(r * kRowBytes + ((u ^ (r & 7)) << 4));
}

// Hopper tiles: WG warpgroups of 64 rows x 128 columns, ST stages, MINB CTAs an SM.
template <int WG_, int ST_, int MINB_>
struct WgTile {
  static constexpr int BM = 64 * WG_, BN = 128, ST = ST_, MINB = MINB_, kThreads = 128 * WG_;
  static constexpr int kStageBytes = (BM + BN) * kRowBytes;
  static constexpr int kSmemBytes = ST * kStageBytes + 1024;  // + room to align the stages to 1024 bytes
  static constexpr int kXUnits = BM * 8 / kThreads, kWUnits = BN * 8 / kThreads;
  static_assert(kXUnits * kThreads == BM * 8 && kWUnits * kThreads == BN * 8, "tile shape");
};

// Copies a CTA's x and w tiles of K stages into shared memory by cp.async, for a tile
// configuration C: thread tid copies units q = tid + threads * i of each tile (tile row q / 8,
// 16-byte unit q % 8); rows past `rows` or N and elements past K are zero-filled. Stage kt holds
// the 64-element group kt of K and goes to slot kt % ST at `base`: the x tile, then the w tile.
template <typename T, typename C>
struct TileLoader {
  const T* xs[C::kXUnits];
  const T* ws[C::kWUnits];
  bool xok[C::kXUnits], wok[C::kWUnits];
  int tid, K, ktiles;
  uint32_t base;

  __device__ __forceinline__ TileLoader(const T* x, const T* w, int rows, int N, int K_, int m0, int n0,
                                        uint32_t base_)
      : tid(static_cast<int>(threadIdx.x)), K(K_), ktiles((K_ + kBK - 1) / kBK), base(base_) {
#pragma unroll
    for (int i = 0; i < C::kXUnits; ++i) {
      const int q = tid + C::kThreads * i, r = q >> 3;
      xok[i] = m0 + r < rows;
      xs[i] = x + static_cast<int64_t>(xok[i] ? m0 + r : 0) * K + 8 * (q & 7);
    }
#pragma unroll
    for (int i = 0; i < C::kWUnits; ++i) {
      const int q = tid + C::kThreads * i, r = q >> 3;
      wok[i] = n0 + r < N;
      ws[i] = w + static_cast<int64_t>(wok[i] ? n0 + r : 0) * K + 8 * (q & 7);
    }
  }
  __device__ __forceinline__ uint32_t slot(int kt) const { return base + (kt % C::ST) * C::kStageBytes; }
  __device__ __forceinline__ void load_w(int kt) const {
    const int k0 = kt * kBK;
    const uint32_t dst = slot(kt) + C::BM * kRowBytes;
#pragma unroll
    for (int i = 0; i < C::kWUnits; ++i) {
      const int q = tid + C::kThreads * i;
      cuda_async::cp_async16(dst + unit_offset(q >> 3, q & 7), ws[i] + k0, wok[i] && k0 + 8 * (q & 7) < K);
    }
  }
  __device__ __forceinline__ void load_x(int kt) const {
    const int k0 = kt * kBK;
    const uint32_t dst = slot(kt);
#pragma unroll
    for (int i = 0; i < C::kXUnits; ++i) {
      const int q = tid + C::kThreads * i;
      cuda_async::cp_async16(dst + unit_offset(q >> 3, q & 7), xs[i] + k0, xok[i] && k0 + 8 * (q & 7) < K);
    }
  }
  // The first ST - 1 stages. The weights do not depend on the previous kernel: they are in flight
  // before waiting for it. Group s holds stage s's x (and group 0 the first stages' weights).
  __device__ __forceinline__ void prologue() const {
#pragma unroll
    for (int s = 0; s < C::ST - 1; ++s)
      if (s < ktiles) load_w(s);
    cuda_pdl::pdl_wait();
#pragma unroll
    for (int s = 0; s < C::ST - 1; ++s) {
      if (s < ktiles) load_x(s);
      cuda_async::cp_async_commit();
    }
  }
  // Stage kt + ST - 1 into the slot the MMAs of stage kt - 1 read (call after they are done).
  __device__ __forceinline__ void next(int kt) const {
    if (kt + C::ST - 1 < ktiles) {
      load_w(kt + C::ST - 1);
      load_x(kt + C::ST - 1);
    }
    cuda_async::cp_async_commit();
  }
};

// Attribute A of the current device (0 if it cannot be read), read once per device (a failed
// read is tried again at the next call).
template <cudaDeviceAttr A>
inline int device_attribute() {
  static std::atomic<int> known[64] = {};  // value + 1 once read
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return 0;
  const int k = known[device & 63].load(std::memory_order_acquire);
  if (k != 0) return k - 1;
  int v = 0;
  if (cudaDeviceGetAttribute(&v, A, device) != cudaSuccess) return 0;
  known[device & 63].store(v + 1, std::memory_order_release);
  return v;
}

// Compute capability 9.0 (Hopper, the sm_90a code: wgmma) on the current device.
inline bool hopper() {
  return device_attribute<cudaDevAttrComputeCapabilityMajor>() == 9 &&
         device_attribute<cudaDevAttrComputeCapabilityMinor>() == 0;
}

// Streaming multiprocessors of the current device (0 if it cannot be read).
inline int sm_count() { return device_attribute<cudaDevAttrMultiProcessorCount>(); }

}  // namespace tile_stages
}  // namespace cuda_fused
}  // namespace flexgen
