// mma_linear's arithmetic for many rows through wgmma (contract: mma_linear_wgmma.h).
//
// mma_linear gives each output S fp32 chains (split p: the 64-element groups p, p + S, ... of K,
// four k16 steps a group), added in split order. Here a CTA computes one split of a tile of 64 WG
// rows x 128 columns through tma_tile.cuh's warp-specialized pipeline (one producer warp loading
// the split's groups by TMA into the 128-byte-swizzled stages, WG consumer warpgroups running
// wgmma m64n128k16 with rows as the A operand and weights as B: an output element is still the MMA
// of its own row and column over the same K elements in the same fragment order). The S CTAs of a
// tile are a thread-block cluster: each puts its partial sums into its shared memory, and after a
// cluster barrier CTA p adds, for 1/S of the tile's rows, split 0's sum and then splits 1 .. S-1's
// in order (distributed shared memory), rounds once and writes y. Where those clusters would take
// more than two waves (many rows), one CTA computes a tile's splits one after another instead and
// makes the same additions in the same order (mma_linear_wgmma_seq_kernel).
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "env_switch.h"
#include "half_math.cuh"
#include "kernel_attribute.cuh"
#include "kernel_module.cuh"
#include "mma_linear_wgmma.h"
#include "pdl.cuh"
#include "prefill_linear_tma.h"
#include "tensor_map.h"
#include "tile_stages.cuh"
#include "tma_tile.cuh"
#include "wgmma_tile.cuh"

namespace flexgen {
namespace cuda_fused {

namespace {

using cuda_async::smem_u32;
using tile_stages::TmaTile;

// The partial sums of a tile in shared memory: BM rows of BN fp32, 4 floats of padding a row (a
// warp's float2 stores of 8 rows x 8 columns land in 32 different banks).
template <typename C>
constexpr int partial_pitch() {
  return C::BN + 4;
}

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
__device__ __forceinline__ void cluster_sync() {
  asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;\n" ::: "memory");
}

// 16 bytes at shared address `addr` of this CTA, read from the same address of cluster CTA `rank`.
__device__ __forceinline__ float4 ld_cluster(uint32_t addr, int rank) {
  float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
  uint32_t remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(remote) : "r"(addr), "r"(rank));
  asm volatile("ld.shared::cluster.v4.f32 {%0, %1, %2, %3}, [%4];\n"
               : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w)
               : "r"(remote)
               : "memory");
  return v;
}
#endif

// y's elements (r, c .. c + 3) of the 4 values (those past N are not written).
template <typename T>
__device__ __forceinline__ void store4(T* __restrict__ yr, int c, int N, float4 v) {
  using T2 = typename cuda_half::Pair<T>::type;
  if ((N & 1) == 0 && c + 3 < N) {
    const uint32_t lo = cuda_half::Mma<T>::pack(v.x, v.y), hi = cuda_half::Mma<T>::pack(v.z, v.w);
    *reinterpret_cast<T2*>(yr + c) = *reinterpret_cast<const T2*>(&lo);
    *reinterpret_cast<T2*>(yr + c + 2) = *reinterpret_cast<const T2*>(&hi);
    return;
  }
  const float e[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; ++i)
    if (c + i < N) yr[c + i] = cuda_half::to<T>(e[i]);
}

// CTA (blockIdx.x = S x row tile + p, blockIdx.y = column tile): split p of its tile. Launched as
// clusters of S x 1 x 1 when S > 1 (the splits of one tile), so p is the CTA's cluster rank.
template <typename T, typename C, int S>
__global__ void __launch_bounds__(C::kThreads, C::MINB)
    mma_linear_wgmma_kernel(const __grid_constant__ CUtensorMap xmap, const __grid_constant__ CUtensorMap wmap,
                            T* __restrict__ y, int rows, int N, int K) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ unsigned char smem_raw[];
  const int tid = threadIdx.x;
  const int p = static_cast<int>(blockIdx.x) % S;
  const int m0 = static_cast<int>(blockIdx.x) / S * C::BM, n0 = blockIdx.y * C::BN;
  const int groups = (K + tile_stages::kBK - 1) / tile_stages::kBK;
  const int ktiles = p < groups ? (groups - p + S - 1) / S : 0;
  const bool consumer = tid < C::kConsumers;
  static_assert(C::kBW == 128, "tiles of whole 128-column blocks");
  float d[C::kNB][64];
  const tile_stages::TmaStages<C> st = tile_stages::tma_tile_run<T, C>(smem_raw, &xmap, &wmap, m0, n0, p, S, ktiles, d);

  if constexpr (S == 1) {
    if (consumer)
#pragma unroll
      for (int b = 0; b < C::kNB; ++b) tile_stages::wgmma_tile_store<T>(d[b], y, rows, N, m0, n0 + 128 * b);
  } else {
    // d[b][4 j + e]: tile row r_lo + 8 (e >> 1), column 128 b + 8 j + 2 t + (e & 1) (tma_consume).
    const int t = tid & 3, r_lo = tile_stages::wgmma_thread_row();
    constexpr int P = partial_pitch<C>();
    __syncthreads();  // every stage is consumed: the partial sums reuse them
    float* part = reinterpret_cast<float*>(smem_raw + (st.base - smem_u32(smem_raw)));
    if (consumer)
#pragma unroll
      for (int b = 0; b < C::kNB; ++b)
#pragma unroll
        for (int h = 0; h < 2; ++h)
#pragma unroll
          for (int j = 0; j < 16; ++j)
            *reinterpret_cast<float2*>(part + (r_lo + 8 * h) * P + 128 * b + 8 * j + 2 * t) =
                make_float2(d[b][4 * j + 2 * h], d[b][4 * j + 2 * h + 1]);
    cluster_sync();  // every split's sums are in its CTA's shared memory
    constexpr int kRows = C::BM / S, kQuads = C::BN / 4;
    for (int q = tid; q < kRows * kQuads; q += C::kThreads) {
      const int r = p * kRows + q / kQuads, c = 4 * (q % kQuads);
      const uint32_t addr = st.base + static_cast<uint32_t>((r * P + c) * 4);
      float4 s = ld_cluster(addr, 0);
#pragma unroll
      for (int u = 1; u < S; ++u) {
        const float4 v = ld_cluster(addr, u);
        s.x += v.x;
        s.y += v.y;
        s.z += v.z;
        s.w += v.w;
      }
      if (m0 + r < rows && n0 + c < N) store4<T>(y + static_cast<int64_t>(m0 + r) * N, n0 + c, N, s);
    }
    cluster_sync();  // no CTA leaves while another reads its shared memory
  }
#else
  __trap();
#endif
}

// CTA (blockIdx.x = row tile, blockIdx.y = column tile): every split of its tile, one after another
// through one ring of stages, each split's sums from zero, added to a running total in the
// consumers' registers: split 0's sums, then splits 1 .. S-1's in order: the cluster merge's
// additions. Two sets of split sums alternate, so split p's first wgmmas are issued while split
// p - 1's last ones still run (no drain between splits); split p - 1's sums join the total after
// split p's first stage. The producer is a whole warpgroup (one thread loads) that gives its
// registers to the consumers (setmaxnreg: 40 + 2 x 232 a thread, from 168 at entry), so the total
// and both sets fit (a 9-warp CTA could not launch with the 214 registers of a total and one set).
// An H200, 3B, 322 rows, us (bench_linear_cuda), against the earlier version (the total in shared
// memory, a drain a split): q|k|v 30.4 -> 23.9, o 27.2 -> 21.2, gate|up 80.9 -> 77.9, down 55.3 ->
// 50.4 (the total in registers without the overlap: 26.3, 23.3, 77.5, 50.3).
template <typename C>
struct SeqThreads {
  static constexpr int kProducerRegs = 40, kConsumerRegs = 232;
  static constexpr int kThreads = C::kConsumers + 128;
  static_assert(C::kConsumers == 256 && kProducerRegs * 128 + kConsumerRegs * C::kConsumers <= 65536,
                "two consumer warpgroups and a producer warpgroup share the register file");
};

template <typename T, typename C, int S>
__global__ void __launch_bounds__(SeqThreads<C>::kThreads, 1)
    mma_linear_wgmma_seq_kernel(const __grid_constant__ CUtensorMap xmap, const __grid_constant__ CUtensorMap wmap,
                                T* __restrict__ y, int rows, int N, int K) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ unsigned char smem_raw[];
  const int tid = static_cast<int>(threadIdx.x);
  const int m0 = static_cast<int>(blockIdx.x) * C::BM, n0 = blockIdx.y * C::BN;
  const int groups = (K + tile_stages::kBK - 1) / tile_stages::kBK;
  static_assert(C::kBW == 128, "tiles of whole 128-column blocks");
  const tile_stages::TmaStages<C> st = tile_stages::tma_stages_ready<C>(smem_raw);
  auto ktiles_of = [&](int p) { return p < groups ? (groups - p + S - 1) / S : 0; };
  if (tid >= C::kConsumers) {
    cuda_wgmma::release_registers<SeqThreads<C>::kProducerRegs>();
    if (tid == C::kConsumers) {
      int base = 0;
#pragma unroll 1
      for (int p = 0; p < S; ++p) {
        tile_stages::tma_produce(st, &xmap, &wmap, nullptr, m0, n0, p, S, ktiles_of(p), base);
        base += ktiles_of(p);
      }
    }
    return;
  }
  cuda_wgmma::claim_registers<SeqThreads<C>::kConsumerRegs>();
  float total[C::kNB][64];
  float d0[C::kNB][64], d1[C::kNB][64];
  int g = 0;  // ring stages consumed so far
  auto add = [&](const float(&prev)[C::kNB][64], bool first) {
#pragma unroll
    for (int b = 0; b < C::kNB; ++b)
#pragma unroll
      for (int i = 0; i < 64; ++i) total[b][i] = first ? prev[b][i] : total[b][i] + prev[b][i];
  };
  // Split p into d; then split p - 1's sums (prev) into the total.
  auto split = [&](int p, float(&d)[C::kNB][64], const float(&prev)[C::kNB][64]) {
    const int wg = tid >> 7;
#pragma unroll
    for (int b = 0; b < C::kNB; ++b)
#pragma unroll
      for (int i = 0; i < 64; ++i) d[b][i] = 0.f;
    const int n = ktiles_of(p);
    if (n == 0) {
      cuda_wgmma::wait<0>();
      if (p > 0) add(prev, p == 1);
      return;
    }
    // One stage's wgmmas into d; then every group but this one is done: the previous stage goes back.
    auto stage = [&]() {
      const uint32_t sx = st.stage(g) + wg * 64 * tile_stages::kRowBytes, sw = st.stage(g) + C::kXBytes;
      cuda_tma::mbar_wait(st.full + 8 * (g % C::ST), (g / C::ST) & 1);
      cuda_wgmma::fence();
#pragma unroll
      for (int kk = 0; kk < tile_stages::kBK / 16; ++kk)
#pragma unroll
        for (int b = 0; b < C::kNB; ++b)
          cuda_wgmma::WgmmaN<T, C::kBW>::run(d[b], cuda_wgmma::smem_desc(sx + 32 * kk),
                                             cuda_wgmma::smem_desc(sw + b * C::kBW * tile_stages::kRowBytes + 32 * kk),
                                             1);
      cuda_wgmma::commit();
      cuda_wgmma::wait<1>();
      if (g > 0 && (tid & 31) == 0) cuda_tma::mbar_arrive(st.empty + 8 * ((g - 1) % C::ST));
      ++g;
    };
    stage();
    if (p > 0) add(prev, p == 1);
#pragma unroll 1
    for (int kt = 1; kt < n; ++kt) stage();
  };
  static_assert(S % 2 == 0, "splits in pairs");
#pragma unroll  // (unrolled, ptxas sees which wgmma group each wait retires; else it serializes them)
  for (int p = 0; p < S; p += 2) {
    split(p, d0, d1);
    split(p + 1, d1, d0);
  }
  cuda_wgmma::wait<0>();
  add(d1, false);
  cuda_pdl::pdl_trigger();
#pragma unroll
  for (int b = 0; b < C::kNB; ++b) tile_stages::wgmma_tile_store<T>(total[b], y, rows, N, m0, n0 + 128 * b);
#else
  __trap();
#endif
}

template <typename T, typename C, int S>
int launch_seq(DType t, const T* x, const T* w, T* y, int rows, int N, int K, bool pdl, cudaStream_t st) {
  constexpr auto kernel = mma_linear_wgmma_seq_kernel<T, C, S>;
  constexpr int smem = C::kSmemBytes;
  if (const cudaError_t e = cuda_launch::allow_dynamic_smem<kernel>(smem); e != cudaSuccess)
    return static_cast<int>(e);
  CUtensorMap xmap, wmap;
  if (const int e = cuda_tma::encode_k_major(&xmap, t, x, rows, K, C::BM); e != 0) return e;
  if (const int e = cuda_tma::encode_k_major(&wmap, t, w, N, K, C::BN); e != 0) return e;
  // Row tiles vary fastest: the CTAs of one column tile run together and share its weights in L2.
  const dim3 grid(static_cast<unsigned>((rows + C::BM - 1) / C::BM), static_cast<unsigned>((N + C::BN - 1) / C::BN));
  return static_cast<int>(
      cuda_pdl::launch(kernel, grid, dim3(SeqThreads<C>::kThreads), smem, st, pdl, xmap, wmap, y, rows, N, K));
}

template <typename T, typename C, int S>
int launch_tile(DType t, const T* x, const T* w, T* y, int rows, int N, int K, bool pdl, cudaStream_t st) {
  static_assert(C::BM * partial_pitch<C>() * 4 <= C::ST * C::kStageBytes, "partial sums fit in the stages");
  static_assert(C::BM % S == 0, "rows a split merges");
  constexpr auto kernel = mma_linear_wgmma_kernel<T, C, S>;
  if (const cudaError_t e = cuda_launch::allow_dynamic_smem<kernel>(C::kSmemBytes); e != cudaSuccess)
    return static_cast<int>(e);
  CUtensorMap xmap, wmap;
  if (const int e = cuda_tma::encode_k_major(&xmap, t, x, rows, K, C::BM); e != 0) return e;
  if (const int e = cuda_tma::encode_k_major(&wmap, t, w, N, K, C::BN); e != 0) return e;
  // Splits, then row tiles vary fastest: the CTAs of one column tile run together and share its
  // weights in L2.
  const dim3 grid(static_cast<unsigned>(S * ((rows + C::BM - 1) / C::BM)),
                  static_cast<unsigned>((N + C::BN - 1) / C::BN));
  return static_cast<int>(cuda_pdl::launch_clusters(S > 1 ? S : 0u, kernel, grid, dim3(C::kThreads), C::kSmemBytes,
                                                    st, pdl, xmap, wmap, y, rows, N, K));
}

template <typename T, typename C>
int launch_splits(DType t, const T* x, const T* w, T* y, int rows, int N, int K, int k_splits, bool pdl,
                  cudaStream_t st) {
  switch (k_splits) {
    case 1: return launch_tile<T, C, 1>(t, x, w, y, rows, N, K, pdl, st);
    case 2: return launch_tile<T, C, 2>(t, x, w, y, rows, N, K, pdl, st);
    case 4: return launch_tile<T, C, 4>(t, x, w, y, rows, N, K, pdl, st);
    case 8: return launch_tile<T, C, 8>(t, x, w, y, rows, N, K, pdl, st);
    default: return static_cast<int>(cudaErrorInvalidValue);
  }
}

// A tile a CTA: 64 rows up to 64 rows (3 CTAs an SM), 128 up to 128, 192 up to 192, 128-row tiles
// above (an H200, 3B matrices, one call: at 160-192 rows 2-14% faster than the cp.async version
// it replaced; at 33-128 rows from 10% faster (q|k|v at 64 rows) to 12% slower (o, down at 33)).
using Tile64 = TmaTile<1, 128, 3, 3>;   // 75 KB
using Tile128 = TmaTile<2, 128, 3, 2>;  // 97 KB
using Tile192 = TmaTile<3, 128, 3, 1>;  // 121 KB

// The sequential-splits kernel's tile: 128 rows, 6 stages (193 KB; one CTA an SM, its registers
// fill the SM: 4 stages measured the same).
using SeqTile = TmaTile<2, 128, 6, 1>;

enum class SeqMode { Auto, Off, On };

// FLEXGEN_CUDA_DECODE_SEQ: unset or `auto` (seq_pays), `off` (every launch of more than one split
// as clusters), `on` (every such launch through mma_linear_wgmma_seq_kernel): A/B runs and tests,
// the same bits. Read once.
SeqMode seq_mode() {
  static const SeqMode m = [] {
    const std::string s = cuda_env::env_switch("FLEXGEN_CUDA_DECODE_SEQ", {"auto", "off", "on"});
    return s == "off" ? SeqMode::Off : s == "on" ? SeqMode::On : SeqMode::Auto;
  }();
  return m;
}

// Whether a launch runs its tiles' splits one after another in one CTA (mma_linear_wgmma_seq_kernel)
// rather than as clusters of split CTAs of tile C: where the clusters' CTAs would take more than two
// waves of those resident (C::MINB an SM), or more than one where the sequential kernel's CTAs fit
// in one wave and each goes through at most kSeqOneWaveGroups groups of K in all with 4 or 8
// splits. An H200, 3B matrices, bench_linear_cuda, us (2026-12-02e, with the total in shared
// memory): q|k|v at 192 / 256 / 322 rows 37.0 / 41.8 / 60.3 -> 29.0 / 29.8 / 29.8, o / gate|up /
// down at 322 rows 40.1 / 92.6 / 68.0 -> 28.0 / 83.2 / 55.8. With the total in registers
// (2026-12-02i, clusters -> sequential): q|k|v at 96 / 128 rows 26.7 / 26.2 -> 22.0 / 22.5, o at
// 160 / 192 / 256 rows 25.4 / 25.1 / 27.4 -> 21.5 / 21.3 / 21.5; the clusters stay faster for o at
// 96 / 128 rows (one wave: 16.4 / 16.0 vs 20.8 / 21.4), gate|up up to 256 rows (36.0 -> 43.4 at 96,
// 50.7 -> 66.2 at 160) and down up to 256 (26.4 -> 47.2 at 96, 44.3 -> 48.1 at 256: 128 groups of K
// a CTA).
constexpr int kSeqOneWaveGroups = 48;
template <typename C>
bool seq_pays(int rows, int N, int K, int k_splits) {
  if (k_splits == 1 || seq_mode() == SeqMode::Off) return false;
  if (seq_mode() == SeqMode::On) return true;
  const int64_t col_tiles = (N + C::BN - 1) / C::BN, wave = int64_t{C::MINB} * tile_stages::sm_count();
  const int64_t ctas = int64_t{k_splits} * ((rows + C::BM - 1) / C::BM) * col_tiles;
  if (ctas > 2 * wave) return true;
  const int64_t seq_ctas = (rows + SeqTile::BM - 1) / SeqTile::BM * ((N + SeqTile::BN - 1) / SeqTile::BN);
  const int groups = (K + tile_stages::kBK - 1) / tile_stages::kBK;
  return ctas > wave && k_splits >= 4 && groups <= kSeqOneWaveGroups && seq_ctas <= tile_stages::sm_count();
}

template <typename T, typename C>
int launch_tiles(DType t, const T* x, const T* w, T* y, int rows, int N, int K, int k_splits, bool pdl,
                 cudaStream_t st) {
  if (!seq_pays<C>(rows, N, K, k_splits)) return launch_splits<T, C>(t, x, w, y, rows, N, K, k_splits, pdl, st);
  switch (k_splits) {
    case 2: return launch_seq<T, SeqTile, 2>(t, x, w, y, rows, N, K, pdl, st);
    case 4: return launch_seq<T, SeqTile, 4>(t, x, w, y, rows, N, K, pdl, st);
    case 8: return launch_seq<T, SeqTile, 8>(t, x, w, y, rows, N, K, pdl, st);
    default: return static_cast<int>(cudaErrorInvalidValue);
  }
}

// FLEXGEN_CUDA_ONE_SPLIT_TMA: 1 (default) launches of one K split (the LM head: N >= 32768) and
// 65-128 or more than 192 rows run through prefill_linear_tma, 0 through this file's tiles (A/B
// runs: the same bits, see launch). Read once.
bool one_split_tma() {
  static const bool on = cuda_env::env_switch("FLEXGEN_CUDA_ONE_SPLIT_TMA", {"0", "1"}) != "0";
  return on;
}

template <typename T>
int launch(DType t, const T* x, const T* w, T* y, int rows, int N, int K, int k_splits, bool pdl, cudaStream_t st) {
  if (rows <= 64) return launch_tiles<T, Tile64>(t, x, w, y, rows, N, K, k_splits, pdl, st);
  if (rows > 128 && rows <= 192) return launch_tiles<T, Tile192>(t, x, w, y, rows, N, K, k_splits, pdl, st);
  // One split is one fp32 chain over K's k16 steps in order from zero, rounded once: prefill_linear's
  // arithmetic, whose persistent kernel with wider tiles computes it for the rows 128-row tiles
  // would take (an H200, the 3B LM head, us: 65 rows 293.5 -> 217.3, 256 377.4 -> 339.3, 322 597.7
  // -> 504.2; cuBLAS 220, 296, 390; one 192-row tile stays faster: 192 rows 380.3 vs 393.7).
  if (k_splits == 1 && one_split_tma()) return prefill_linear_tma(t, x, w, y, rows, N, K, st, pdl);
  return launch_tiles<T, Tile128>(t, x, w, y, rows, N, K, k_splits, pdl, st);
}

}  // namespace

bool mma_linear_wgmma_available() { return tile_stages::hopper(); }

void mma_linear_wgmma_read_switches() {
  seq_mode();
  one_split_tma();
}

int mma_linear_wgmma(DType t, const void* x, const void* w, void* y, int64_t rows, int N, int K, int k_splits,
                     void* stream, bool pdl) {
  if (rows < 0 || rows > (int64_t{1} << 30) || N <= 0 || K <= 0 || K % 8 != 0)
    return static_cast<int>(cudaErrorInvalidValue);
  if (rows == 0) return 0;
  const auto st = static_cast<cudaStream_t>(stream);
  const int r = static_cast<int>(rows);
  return t == DType::BF16 ? launch(t, static_cast<const __nv_bfloat16*>(x), static_cast<const __nv_bfloat16*>(w),
                                   static_cast<__nv_bfloat16*>(y), r, N, K, k_splits, pdl, st)
                          : launch(t, static_cast<const __half*>(x), static_cast<const __half*>(w),
                                   static_cast<__half*>(y), r, N, K, k_splits, pdl, st);
}

}  // namespace cuda_fused
}  // namespace flexgen

FLEXGEN_CUDA_MODULE_ANCHOR(mma_linear_wgmma)
