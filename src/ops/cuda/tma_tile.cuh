// The warp-specialized wgmma pipeline of the tiled linears (prefill_linear_tma_kernel.cu,
// mma_linear_wgmma_kernel.cu): a CTA of WG consumer warpgroups (64 rows each) and one producer
// warp. The producer streams x and w tiles of 64 elements of K into ST shared-memory stages by TMA
// (128-byte swizzle: tile_stages.cuh's layout, so the same wgmma descriptors), each stage completing
// on its "full" mbarrier; the consumers run wgmma m64n128k16 over a stage (BN / 128 of them a k16
// step; one m64nBNk16 for the other widths), keep one stage's wgmmas in flight while issuing the
// next, and hand a stage back through its "empty" mbarrier once the wgmmas that read it are done.
// Hopper only (tma.cuh, wgmma.cuh).
#pragma once

#include <cuda.h>

#include <cstdint>

#include "cp_async.cuh"
#include "pdl.cuh"
#include "tile_stages.cuh"
#include "tma.cuh"
#include "wgmma.cuh"

namespace flexgen {
namespace cuda_fused {
namespace tile_stages {

// WG consumer warpgroups (BM = 64 WG rows), BN columns (a multiple of 128, or 160-240 by 16), ST
// stages, MINB CTAs an SM. Sets the speed, never the bits. A consumer thread's accumulators are kNB
// blocks of kBW columns (kBW / 2 floats each): 128 for multiples of 128, else one block of BN.
template <int WG_, int BN_, int ST_, int MINB_>
struct TmaTile {
  static constexpr int WG = WG_, BM = 64 * WG_, BN = BN_, ST = ST_, MINB = MINB_;
  static constexpr int kBW = BN % 128 == 0 ? 128 : BN;
  static constexpr int kConsumers = 128 * WG, kThreads = kConsumers + 32, kNB = BN / kBW;
  static constexpr int kXBytes = BM * kRowBytes, kStageBytes = (BM + BN) * kRowBytes;
  static constexpr int kBarOffset = ST * kStageBytes;                 // full[ST], then empty[ST]
  static constexpr int kSmemBytes = kBarOffset + 16 * ST + 1024;     // + room to align to 1024 bytes
  static_assert((BN % 128 == 0 || (BN % 16 == 0 && BN > 128)) && BN <= 256 && BM <= 256, "tile shape");
};

// A CTA's stages (1024-byte aligned in its dynamic shared memory) and their mbarriers.
template <typename C>
struct TmaStages {
  uint32_t base, full, empty;
  __device__ __forceinline__ explicit TmaStages(const unsigned char* smem_raw)
      : base((cuda_async::smem_u32(smem_raw) + 1023u) & ~1023u),
        full(base + C::kBarOffset),
        empty(base + C::kBarOffset + 8 * C::ST) {}
  __device__ __forceinline__ uint32_t stage(int kt) const { return base + (kt % C::ST) * C::kStageBytes; }
  // Thread 0 sets the barriers up; __syncthreads() before any use.
  __device__ __forceinline__ void init() const {
    if (threadIdx.x != 0) return;
    for (int s = 0; s < C::ST; ++s) {
      cuda_tma::mbar_init(full + 8 * s, 1);
      cuda_tma::mbar_init(empty + 8 * s, C::kConsumers / 32);
    }
  }
};

// A stage's w rows: one box of BN rows of wmap at row n0, or with w2map (boxes of BN / 2 rows) the
// rows n0 .. of wmap then the rows n0 .. of w2map (a [gate | up] tile; BN / 2 is a multiple of 8
// rows, so the second box starts on the 128-byte swizzle's 1024-byte period).
template <typename C>
__device__ __forceinline__ void tma_load_w(uint32_t dst, const CUtensorMap* wmap, const CUtensorMap* w2map,
                                           uint32_t bar, int k, int n0) {
  static_assert(C::BN % 16 == 0, "two boxes of whole swizzle periods");
  cuda_tma::tma_load_2d(dst, wmap, bar, k, n0);
  if (w2map != nullptr) cuda_tma::tma_load_2d(dst + C::BN / 2 * kRowBytes, w2map, bar, k, n0);
}

// The producer (one thread): ring stage base + kt holds K's 64-element group g0 + gs kt, kt < ktiles,
// of the x rows m0 .. m0 + BM - 1 and the w rows n0 .. n0 + BN - 1 (tma_load_w). base: the stages
// the CTA's earlier tiles used (a CTA's tiles go through the ring one after another). The weights
// of the first tile's first stages do not depend on the previous kernel and are in flight before
// waiting for it (PDL).
template <typename C>
__device__ __forceinline__ void tma_produce(const TmaStages<C>& st, const CUtensorMap* xmap, const CUtensorMap* wmap,
                                            const CUtensorMap* w2map, int m0, int n0, int g0, int gs, int ktiles,
                                            int base = 0) {
  int kt = 0;
  if (base == 0) {
    const int first = ktiles < C::ST ? ktiles : C::ST;
    for (; kt < first; ++kt) {
      cuda_tma::mbar_arrive_expect_tx(st.full + 8 * kt, C::kStageBytes);
      tma_load_w<C>(st.stage(kt) + C::kXBytes, wmap, w2map, st.full + 8 * kt, (g0 + gs * kt) * kBK, n0);
    }
    cuda_pdl::pdl_wait();
    for (int j = 0; j < first; ++j)
      cuda_tma::tma_load_2d(st.stage(j), xmap, st.full + 8 * j, (g0 + gs * j) * kBK, m0);
  }
  for (; kt < ktiles; ++kt) {
    const int g = base + kt;
    const uint32_t s = 8 * (g % C::ST);
    if (g >= C::ST) cuda_tma::mbar_wait(st.empty + s, ((g / C::ST) - 1) & 1);
    cuda_tma::mbar_arrive_expect_tx(st.full + s, C::kStageBytes);
    tma_load_w<C>(st.stage(g) + C::kXBytes, wmap, w2map, st.full + s, (g0 + gs * kt) * kBK, n0);
    cuda_tma::tma_load_2d(st.stage(g), xmap, st.full + s, (g0 + gs * kt) * kBK, m0);
  }
}

// A consumer warpgroup (threads 0 .. kConsumers - 1): d[b] = its 64 x kBW part b of the tile's
// x . w^T over the ktiles ring stages from base on (tma_produce), one fp32 accumulator an output
// over the k16 steps in stage order from zero. d[b][4 j + e]: tile row 64 wg + 16 (warp % 4) + g +
// 8 (e >> 1), column kBW b + 8 j + 2 t + (e & 1) (wgmma_tile_store's layout). Every stage is handed
// back but the last, which release_last hands back too (a CTA with another tile to compute).
template <typename T, typename C>
__device__ __forceinline__ void tma_consume(const TmaStages<C>& st, int ktiles, float (&d)[C::kNB][C::kBW / 2],
                                            int base = 0, bool release_last = false) {
  const int tid = static_cast<int>(threadIdx.x), wg = tid >> 7;
#pragma unroll
  for (int b = 0; b < C::kNB; ++b)
#pragma unroll
    for (int i = 0; i < C::kBW / 2; ++i) d[b][i] = 0.f;
  for (int kt = 0; kt < ktiles; ++kt) {
    const int g = base + kt;
    const uint32_t sx = st.stage(g) + wg * 64 * kRowBytes, sw = st.stage(g) + C::kXBytes;
    cuda_tma::mbar_wait(st.full + 8 * (g % C::ST), (g / C::ST) & 1);
    cuda_wgmma::fence();
#pragma unroll
    for (int kk = 0; kk < kBK / 16; ++kk)
#pragma unroll
      for (int b = 0; b < C::kNB; ++b)
        cuda_wgmma::WgmmaN<T, C::kBW>::run(d[b], cuda_wgmma::smem_desc(sx + 32 * kk),
                                           cuda_wgmma::smem_desc(sw + b * C::kBW * kRowBytes + 32 * kk), 1);
    cuda_wgmma::commit();
    cuda_wgmma::wait<1>();  // the previous stage's wgmmas are done: hand its slot back
    if (kt > 0 && (tid & 31) == 0) cuda_tma::mbar_arrive(st.empty + 8 * ((g - 1) % C::ST));
  }
  cuda_wgmma::wait<0>();
  if (release_last && ktiles > 0 && (tid & 31) == 0) cuda_tma::mbar_arrive(st.empty + 8 * ((base + ktiles - 1) % C::ST));
}

// A CTA's stages with their barriers set up and visible to every thread.
template <typename C>
__device__ __forceinline__ TmaStages<C> tma_stages_ready(const unsigned char* smem_raw) {
  const TmaStages<C> st(smem_raw);
  st.init();
  __syncthreads();
  return st;
}

// One tile through the ring stages base .. base + ktiles - 1 (K groups g0 + gs kt): the producer
// thread loads while the consumer warpgroups (threads 0 .. kConsumers - 1) fill d (tma_consume's
// layout; release_last: another tile follows). w2map: the w tile in two boxes (tma_load_w).
template <typename T, typename C>
__device__ __forceinline__ void tma_tile_pass(const TmaStages<C>& st, const CUtensorMap* xmap, const CUtensorMap* wmap,
                                              int m0, int n0, int g0, int gs, int ktiles,
                                              float (&d)[C::kNB][C::kBW / 2], const CUtensorMap* w2map = nullptr,
                                              int base = 0, bool release_last = false) {
  const int tid = static_cast<int>(threadIdx.x);
  if (tid < C::kConsumers) tma_consume<T>(st, ktiles, d, base, release_last);
  else if (tid == C::kConsumers) tma_produce(st, xmap, wmap, w2map, m0, n0, g0, gs, ktiles, base);
}

// A CTA's whole pipeline over its ktiles stages, one tile: the stages set up, tma_tile_pass, then
// every thread lets the next kernel launch. Returns the stages (free for other use after a
// __syncthreads()).
template <typename T, typename C>
__device__ __forceinline__ TmaStages<C> tma_tile_run(const unsigned char* smem_raw, const CUtensorMap* xmap,
                                                     const CUtensorMap* wmap, int m0, int n0, int g0, int gs,
                                                     int ktiles, float (&d)[C::kNB][C::kBW / 2],
                                                     const CUtensorMap* w2map = nullptr) {
  const TmaStages<C> st = tma_stages_ready<C>(smem_raw);
  tma_tile_pass<T>(st, xmap, wmap, m0, n0, g0, gs, ktiles, d, w2map);
  cuda_pdl::pdl_trigger();
  return st;
}

}  // namespace tile_stages
}  // namespace cuda_fused
}  // namespace flexgen
