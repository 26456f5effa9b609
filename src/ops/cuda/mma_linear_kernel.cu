// Row-invariant tensor-core linear y = x . w^T (contract: mma_linear_params.h), the decode-step
// projections of any number of rows.
//
// The weights are the MMA's A operand (one or two 16-column tiles a warp), the rows its B operand
// (8 rows an n8 tile, NT tiles a launch), so one weight load serves up to 64 rows. Each warp
// streams its weight rows and the rows' x through its own ring of shared-memory stages by cp.async
// (64 elements of K a stage; loads in flight hold no registers, so many are); ldmatrix reads the
// fragments of each k16 step (K elements k .. k + 15 in the PTX fragment layout, as the tiled
// linears read them). A launch of one row (the batch-1 decode step) copies its x once into shared
// memory instead and its rings hold weights only (NT = 1: smaller CTAs, more of them resident).
//
// Arithmetic of one output (row r, column n): split p (one warp) accumulates, in fp32 through the
// MMA, the 64-element groups p, p + S, p + 2S, ... in increasing order (four k16 steps a group,
// each elements k .. k + 15 in order); the S partial sums are added in split order; rounded once
// to T. Rows are MMA columns: a row's dot products never mix with another row's, rows past `rows`
// are zeros, and nothing depends on NT, on the warps a CTA, the stages or how many rows are valid
// (row tiles without a row of the call are skipped). S comes from N alone. So each row gets the
// same bits in any batch, on any GPU. On Hopper, launches of many rows run the same arithmetic
// through wgmma (mma_linear_wgmma_kernel.cu): one CTA a split of a tile, the splits of a tile a
// cluster that adds their sums in split order, or, where those clusters would take more than two
// waves, one CTA computing a tile's splits one after another and adding them in the same order.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "cp_async.cuh"
#include "env_switch.h"
#include "half_math.cuh"
#include "kernel_attribute.cuh"
#include "kernel_module.cuh"
#include "ldmatrix.cuh"
#include "llama_elementwise.cuh"
#include "mma_epilogue.cuh"
#include "mma_linear_params.h"
#include "mma_linear_wgmma.h"
#include "pdl.cuh"
#include "step_timeline.cuh"
#include "tile_stages.cuh"

FLEXGEN_TIMELINE_UNIT()

namespace flexgen {
namespace cuda_fused {

namespace {

using cuda_async::cp_async16;
using cuda_async::cp_async_commit;
using cuda_async::cp_async_wait;
using cuda_async::ldmatrix_x4;
using cuda_async::smem_u32;
using cuda_half::Mma;
using cuda_pdl::pdl_trigger;
using cuda_pdl::pdl_wait;

constexpr int kMaxTiles = 8;    // n8 row tiles a launch: 64 rows

using Kind = MmaEpilogue::Kind;

// The rows' x chunk of a stage goes through the warp's ring too (8 NT rows x 64 elements, the same
// swizzle): its loads are in flight with the weights' (x is read only by cp.async after the wait
// for the previous kernel; an earlier version read it with __ldg, which the compiler may hoist
// above that wait: with programmatic dependent launch an H200 run read a stale x through it).
// NT == 1 is the one-row kernel (launches of a single row, the batch-1 decode step): its x is
// copied once into shared memory after the rings (K elements, zero-filled to whole 64-element
// groups) and each k16 step's B fragment is read from there (lanes of MMA column 0 hold the row's
// values, the others zeros: the same MMAs on the same operands as in the multi-row kernel, so the
// same bits); the rings then hold weights only, and a CTA needs less shared memory.
template <int NT, int CW>
constexpr int stage_bytes() { return CW * kStageBytes + (NT == 1 ? 0 : NT * 8 * 128); }

template <int W, int NT, int ST, int CW>
constexpr int smem_bytes() {
  return W * ST * stage_bytes<NT, CW>() > W * CW * NT * 32 * 16 ? W * ST * stage_bytes<NT, CW>() : W * CW * NT * 32 * 16;
}

// Bytes of the one-row kernel's x copy for K.
__host__ __device__ constexpr int one_row_x_bytes(int K) { return (K + 63) / 64 * 64 * 2; }
// The longest K the one-row kernel takes (its x copy is 64 KiB at most); longer rows run through
// the multi-row kernel (the same bits).
constexpr int kOneRowMaxK = 32768;

// CTA: W warps = (W / S) warp columns x S splits of K; a warp column is CW tiles of 16 output
// columns (each x load serves CW tiles). NT: n8 row tiles (rows <= 8 NT). Each warp streams its
// tiles' weights through its own ring of ST stages (cp.async, no registers held by loads in
// flight); split p takes the 64-element groups p, p + S, p + 2S, ... ep: the epilogue (Plain: y
// written). NT is even (tiles are read in pairs).
template <typename T, int NT, int S, int W, int ST, int CW>
__global__ void __launch_bounds__(W * 32) mma_linear_kernel(const T* __restrict__ x, const T* __restrict__ w,
                                                            T* __restrict__ y, int rows, int N, int K,
                                                            bool read_once, const __grid_constant__ MmaEpilogue ep,
                                                            bool early, int paced) {
  static_assert(W % S == 0 && (NT == 1 || NT % 2 == 0), "splits per CTA, row tiles in pairs (or one row)");
  constexpr bool kOne = NT == 1;
  constexpr int CT = W / S;
  extern __shared__ __align__(16) unsigned char smem[];
  FLEXGEN_TIMELINE_NOW(timeline_start);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int part = warp % S;
  // CTA b: column tile b / R, row group b % R (rows 64 g .. 64 g + 63 of the call) for R row
  // groups: the CTAs of one column tile run together, so its weights come from memory once and
  // from L2 for the other groups. A 1-D grid: one row group is the plain grid of column tiles.
  const int row_groups = (rows + 8 * kMaxTiles - 1) / (8 * kMaxTiles);
  const int group = static_cast<int>(blockIdx.x) % row_groups;
  const int n0 = (static_cast<int>(blockIdx.x) / row_groups * CT + warp / S) * 16 * CW;
  const int row0 = group * 8 * kMaxTiles;  // the call's row of this CTA's row 0
  x += static_cast<int64_t>(row0) * K;
  if (ep.kind == Kind::Plain) y += static_cast<int64_t>(row0) * N;
  rows = min(rows - row0, 8 * kMaxTiles);
  const int nt = (rows + 7) / 8;  // row tiles holding a row of the call: the others are skipped
  const int groups = (K + 63) / 64;
  const int mine = part < groups ? (groups - part + S - 1) / S : 0;  // groups of this split
  constexpr int kStage = stage_bytes<NT, CW>();
  unsigned char* ring = smem + warp * ST * kStage;
  const uint32_t ring_s = smem_u32(ring);

  uint64_t policy;
  if (read_once)
    asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
  else
    asm volatile("createpolicy.fractional.L2::evict_normal.b64 %0, 1.0;" : "=l"(policy));
  // Lane l copies units q = l + 32 i (i < 4 CW) of a stage: row q / 8 (columns past N read column
  // N - 1, whose results are not written), 16-byte unit q % 8: 4 rows x 128 bytes an instruction.
  const T* src[4 * CW];
#pragma unroll
  for (int i = 0; i < 4 * CW; ++i) {
    const int q = lane + 32 * i;
    src[i] = w + static_cast<int64_t>(weight_row(ep, min(n0 + (q >> 3), N - 1), N)) * K + 8 * (q & 7);
  }
  auto load_w = [&](int i) {  // the split's i-th group of weights into slot i % ST
    const int k0 = 64 * (part + S * i);
    const uint32_t dst = ring_s + (i % ST) * kStage;
#pragma unroll
    for (int u = 0; u < 4 * CW; ++u) {
      const int q = lane + 32 * u;
      cp_async16(dst + unit_offset(q >> 3, q & 7), src[u] + k0, k0 + 8 * (q & 7) < K, policy);
    }
  };
  // The same group of x: units q = lane + 32 u, row q / 8, 16-byte unit q % 8; rows past `rows`
  // and elements past K are zero-filled.
  auto load_x = [&](int i) {
    if constexpr (kOne) return;
    const int k0 = 64 * (part + S * i);
    const uint32_t dst = ring_s + (i % ST) * kStage + CW * kStageBytes;
#pragma unroll
    for (int u = 0; u < 2 * NT; ++u) {
      const int q = lane + 32 * u, r = q >> 3, e = k0 + 8 * (q & 7);
      cp_async16(dst + unit_offset(r, q & 7), x + static_cast<int64_t>(r < rows ? r : 0) * K + e, r < rows && e < K);
    }
  };
  // A launch of few rows lets the next kernel launch now (cuda_pdl::trigger_early): its blocks
  // fetch their first weights while this one streams; else once this one's main loop is done.
  if (early) pdl_trigger();
  // The weights do not depend on the previous kernel: the first stages are in flight before
  // waiting for it. Group i holds stage i's x (and group 0 the first stages' weights: x may only
  // be read after the wait). paced > 0: each stage is its own group, issued once at most `paced`
  // of the warp's stages are in flight (the previous kernel's loads then do not queue behind all
  // of this kernel's first stages at once).
#pragma unroll
  for (int i = 0; i < ST - 1; ++i) {
    if (paced > 0 && i >= paced) {
      if (paced == 1) cp_async_wait<0>();
      else if (paced == 2) cp_async_wait<1>();
      else cp_async_wait<2>();
    }
    if (i < mine) load_w(i);
    if (paced > 0) cp_async_commit();
  }
  pdl_wait();
  FLEXGEN_TIMELINE_NOW(timeline_waited);
  // One row: the CTA copies x whole (zeros past K) into xs, in group 0 with the first stages.
  unsigned char* xs = smem + W * ST * kStage;
  if constexpr (kOne) {
    for (int q = threadIdx.x; q < one_row_x_bytes(K) / 16; q += W * 32)
      cp_async16(smem_u32(xs + 16 * q), x + 8 * q, 8 * q < K);
  }
#pragma unroll
  for (int i = 0; i < ST - 1; ++i) {
    if (i < mine) load_x(i);
    cp_async_commit();
  }
  if constexpr (kOne) {  // every thread's part of x (and its first stages) has landed
    cp_async_wait<ST - 2>();
    __syncthreads();
  }
  const uint32_t* xs32 = reinterpret_cast<const uint32_t*>(xs);

  float acc[CW][NT][4];
#pragma unroll
  for (int c = 0; c < CW; ++c)
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[c][j][e] = 0.f;

  for (int i = 0; i < mine; ++i) {
    cp_async_wait<ST - 2>();
    __syncwarp();
    if (i + ST - 1 < mine) {
      load_w(i + ST - 1);
      load_x(i + ST - 1);
    }
    cp_async_commit();
    const uint32_t stage = ring_s + (i % ST) * kStage;
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {  // k16 step kk of the group: units 2 kk (k .. k + 7), 2 kk + 1
      uint32_t a[CW][4];
#pragma unroll
      for (int c = 0; c < CW; ++c)
        ldmatrix_x4(a[c], stage + unit_offset(16 * c + (lane & 7) + ((lane >> 3) & 1) * 8, 2 * kk + (lane >> 4)));
      // B fragments: tile j's two registers (tiles 2 jj and 2 jj + 1 from one ldmatrix).
      uint32_t b[NT][2];
      if constexpr (kOne) {  // B = the row as MMA column 0 (lanes g == 0), zeros elsewhere
        const int k = 64 * (part + S * i) + 16 * kk + 2 * t;
        const uint32_t v0 = xs32[k >> 1], v1 = xs32[(k + 8) >> 1];
        b[0][0] = g == 0 ? v0 : 0u;
        b[0][1] = g == 0 ? v1 : 0u;
      }
#pragma unroll
      for (int jj = 0; jj < NT / 2; ++jj) {
        if (2 * jj >= nt) break;
        uint32_t r[4];
        ldmatrix_x4(r, stage + CW * kStageBytes +
                           unit_offset(16 * jj + (lane & 7) + (lane >> 4) * 8, 2 * kk + ((lane >> 3) & 1)));
        b[2 * jj][0] = r[0];
        b[2 * jj][1] = r[1];
        b[2 * jj + 1][0] = r[2];
        b[2 * jj + 1][1] = r[3];
      }
#pragma unroll
      for (int c = 0; c < CW; ++c)
#pragma unroll
        for (int j = 0; j < NT; ++j) {
          if (j >= nt) break;
          Mma<T>::run(acc[c][j], a[c], b[j][0], b[j][1]);
        }
    }
  }
  cp_async_wait<0>();
  if (!early) pdl_trigger();

  if constexpr (S > 1) {
    __syncthreads();  // every warp is done with its ring: the partial sums reuse the memory
    float4* partial = reinterpret_cast<float4*>(smem);  // [W][CW][NT][32]
    if (part != 0) {
#pragma unroll
      for (int c = 0; c < CW; ++c)
#pragma unroll
        for (int j = 0; j < NT; ++j)
          partial[((warp * CW + c) * NT + j) * 32 + lane] =
              make_float4(acc[c][j][0], acc[c][j][1], acc[c][j][2], acc[c][j][3]);
    }
    __syncthreads();
    if (part != 0) return;
    for (int p = 1; p < S; ++p) {
#pragma unroll
      for (int c = 0; c < CW; ++c)
#pragma unroll
        for (int j = 0; j < NT; ++j) {
          const float4 v = partial[(((warp + p) * CW + c) * NT + j) * 32 + lane];
          acc[c][j][0] += v.x;
          acc[c][j][1] += v.y;
          acc[c][j][2] += v.z;
          acc[c][j][3] += v.w;
        }
    }
  }
  // Accumulator (c, j, e): row 8 j + 2 t + (e & 1), column n0 + 16 c + g + 8 (e >> 1).
  if (ep.kind != Kind::Plain) {
#pragma unroll
    for (int c = 0; c < CW; ++c) {
      const int na = n0 + 16 * c + g;
      if (na >= N) continue;
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        const int r0 = 8 * j + 2 * t, r1 = r0 + 1;
        if (r0 < rows) pair_epilogue<T>(ep, y, row0 + r0, na, N, acc[c][j][0], acc[c][j][2]);
        if (r1 < rows) pair_epilogue<T>(ep, y, row0 + r1, na, N, acc[c][j][1], acc[c][j][3]);
      }
    }
    FLEXGEN_TIMELINE_STAMP(::flexgen::cuda_timeline::kLinear + static_cast<int>(ep.kind), w, N, timeline_start,
                           timeline_waited);
    return;
  }
#pragma unroll
  for (int c = 0; c < CW; ++c) {
    const int na = n0 + 16 * c + g, nb = na + 8;
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      const int r0 = 8 * j + 2 * t, r1 = r0 + 1;
      if (na < N) {
        if (r0 < rows) y[static_cast<int64_t>(r0) * N + na] = cuda_half::to<T>(acc[c][j][0]);
        if (r1 < rows) y[static_cast<int64_t>(r1) * N + na] = cuda_half::to<T>(acc[c][j][1]);
      }
      if (nb < N) {
        if (r0 < rows) y[static_cast<int64_t>(r0) * N + nb] = cuda_half::to<T>(acc[c][j][2]);
        if (r1 < rows) y[static_cast<int64_t>(r1) * N + nb] = cuda_half::to<T>(acc[c][j][3]);
      }
    }
  }
  FLEXGEN_TIMELINE_STAMP(::flexgen::cuda_timeline::kLinear, w, N, timeline_start, timeline_waited);
}

// Stages a warp keeps in flight while it fetches its first weights before waiting for the
// previous kernel, in launches that trigger early (0: all at once). All at once, a projection's
// first stages (15-20 MB of the 3B shape's) were queued ahead of the loads of the attention or
// norm kernel still running, which waited for them (an H200, batch 1, per-CTA timeline of a step:
// attention 9.6 -> 8.0 us, add + RMSNorm 3.3 -> 2.4 with one stage in flight).
// FLEXGEN_CUDA_PREFETCH_PACED=N (0-3; A/B runs: no value depends on it), default 1. Read once.
int prefetch_paced() {
  static const int n = [] {
    const std::string v = cuda_env::env_switch("FLEXGEN_CUDA_PREFETCH_PACED", {"0", "1", "2", "3"});
    return v.empty() ? 1 : v[0] - '0';
  }();
  return n;
}

// Launches one instantiation with its dynamic shared memory (the attribute set once per kernel and
// device).
template <typename T, int NT, int S, int W, int ST, int CW>
int launch_kernel(const T* x, const T* w, T* y, int rows, int N, int K, bool read_once, const MmaEpilogue& ep,
                  bool pdl, cudaStream_t st) {
  constexpr int ring = smem_bytes<W, NT, ST, CW>();
  constexpr auto kernel = mma_linear_kernel<T, NT, S, W, ST, CW>;
  if (const cudaError_t e = cuda_launch::allow_dynamic_smem<kernel>(ring + (NT == 1 ? one_row_x_bytes(kOneRowMaxK) : 0));
      e != cudaSuccess)
    return static_cast<int>(e);
  const int bytes = ring + (NT == 1 ? one_row_x_bytes(K) : 0);
  const int tiles = (N + 15) / 16;
  constexpr int per_cta = W / S * CW;
  const int64_t row_groups = (rows + 8 * kMaxTiles - 1) / (8 * kMaxTiles);
  const dim3 grid(static_cast<unsigned>(row_groups * ((tiles + per_cta - 1) / per_cta))), block(W * 32);
  const bool early = cuda_pdl::trigger_early(pdl, rows);
  return static_cast<int>(cuda_pdl::launch(kernel, grid, block, bytes, st, pdl, x, w, y, rows, N, K, read_once, ep,
                                           early, early ? prefetch_paced() : 0));
}

// Whether launches of one row take the one-row kernel (default) or the multi-row kernel's
// 16-row configuration (FLEXGEN_CUDA_ONE_ROW_LINEAR=0, for A/B runs: the same bits). Read once.
bool one_row_kernel_enabled() {
  static const bool on = cuda_env::env_switch("FLEXGEN_CUDA_ONE_ROW_LINEAR", {"0", "1"}) != "0";
  return on;
}

// CTAs of `bytes` of shared memory an SM can hold on the current device (0 if unknown).
int ctas_per_sm(int bytes) {
  using tile_stages::device_attribute;
  return device_attribute<cudaDevAttrMaxSharedMemoryPerMultiprocessor>() /
         (bytes + device_attribute<cudaDevAttrReservedSharedMemoryPerBlock>());
}

// One row: one 16-column tile a warp (twice the CTAs of two, so small matrices spread over more
// SMs) and a ring of 6 stages, or of 4 where that keeps every CTA resident at once (3 CTAs an SM
// instead of 2; the 3B q|k|v projection: 320 CTAs). An H200, 3B shape, per launch against the
// 16-row configuration: q|k|v + RoPE 15.4 -> 8.95 us (4 stages), o 6.28 -> 6.12, gate|up + SiLU
// 23.9 -> 22.8, down 14.1 -> 13.3, LM head 187 -> 181; step 2.165 -> 1.960 ms (one call; the
// configurations swept: bench/decode_cuda/results/h200-2026-12-01g).
template <typename T, int S>
int launch_one_row(const T* x, const T* w, T* y, int N, int K, bool read_once, const MmaEpilogue& ep, bool pdl,
                   cudaStream_t st) {
  constexpr int W = 8, per_cta = W / S;
  const int ctas = ((N + 15) / 16 + per_cta - 1) / per_cta;
  const int sms = tile_stages::sm_count();
  const int deep = smem_bytes<W, 1, 6, 1>() + one_row_x_bytes(K), shallow = smem_bytes<W, 1, 4, 1>() + one_row_x_bytes(K);
  if (ctas > sms * ctas_per_sm(deep) && ctas <= sms * ctas_per_sm(shallow))
    return launch_kernel<T, 1, S, W, 4, 1>(x, w, y, 1, N, K, read_once, ep, pdl, st);
  return launch_kernel<T, 1, S, W, 6, 1>(x, w, y, 1, N, K, read_once, ep, pdl, st);
}

// Warps a CTA (W), stages a warp (ST) and 16-column tiles a warp (CW) by row tiles: they set the
// speed, not the bits (those depend on S). Chosen on H200s by sweeps over the Llama-3.2 1B/3B
// matrices (two tiles a warp halve the x loads; 2-16 rows share the 16-row configuration: with x
// through the ring it made the 3B batch-1 step 2.25 -> 2.12 ms against x read from L2 by 1 x 8
// row tiles, and 8 rows o 11.3 -> 8.9 us, down 21.4 -> 16.9); one row: launch_one_row.
template <typename T, int S>
int launch_tiles(const T* x, const T* w, T* y, int rows, int N, int K, bool read_once, const MmaEpilogue& ep,
                 bool pdl, cudaStream_t st) {
  if (rows == 1 && K <= kOneRowMaxK && one_row_kernel_enabled())
    return launch_one_row<T, S>(x, w, y, N, K, read_once, ep, pdl, st);
  if (rows <= 16) return launch_kernel<T, 2, S, 8, 4, 2>(x, w, y, rows, N, K, read_once, ep, pdl, st);
  if (rows <= 32) return launch_kernel<T, 4, S, 8, 3, 2>(x, w, y, rows, N, K, read_once, ep, pdl, st);
  return launch_kernel<T, 8, S, 8, 2, 2>(x, w, y, rows, N, K, read_once, ep, pdl, st);
}

// One launch: groups of 64 rows side by side in the grid. read_once only where one group reads
// the weights (with several, the other groups' CTAs read the same lines from L2 just after).
template <typename T>
int mma_linear_t(const void* x, const void* w, void* y, int64_t rows, int N, int K, int k_splits, bool read_once,
                 const MmaEpilogue& ep, bool pdl, cudaStream_t st) {
  if (rows == 0) return 0;
  const auto* xp = static_cast<const T*>(x);
  const auto* wp = static_cast<const T*>(w);
  auto* yp = static_cast<T*>(y);
  const int n = static_cast<int>(rows);
  const bool once = read_once && rows <= 8 * kMaxTiles;
  switch (k_splits) {
    case 1: return launch_tiles<T, 1>(xp, wp, yp, n, N, K, once, ep, pdl, st);
    case 2: return launch_tiles<T, 2>(xp, wp, yp, n, N, K, once, ep, pdl, st);
    case 4: return launch_tiles<T, 4>(xp, wp, yp, n, N, K, once, ep, pdl, st);
    case 8: return launch_tiles<T, 8>(xp, wp, yp, n, N, K, once, ep, pdl, st);
    default: return static_cast<int>(cudaErrorInvalidValue);
  }
}

// Launches of at least this many rows run through mma_linear_wgmma on Hopper (the same bits; an
// H200, 3B matrices: faster from 48 rows on, e.g. 64 rows q|k|v 29.9 -> 18.7 us, gate|up 46.5 ->
// 30.9, LM head 322 -> 198; as fast at 24-32): FLEXGEN_CUDA_DECODE_WGMMA_ROWS=N sets it, =off keeps
// every launch on the mma.sync kernel (A/B runs). Read once per process.
int64_t wgmma_min_rows() {
  static const int64_t v = [] {
    const char* env = std::getenv("FLEXGEN_CUDA_DECODE_WGMMA_ROWS");
    if (!env || !*env) return int64_t{33};
    if (std::strcmp(env, "off") == 0) return int64_t{1} << 40;
    char* end = nullptr;
    const long long n = std::strtoll(env, &end, 10);
    if (*end != '\0' || n < 1)
      throw std::invalid_argument(std::string("FLEXGEN_CUDA_DECODE_WGMMA_ROWS must be a row count >= 1 or off, got '") +
                                  env + "'");
    return static_cast<int64_t>(n);
  }();
  return v;
}

}  // namespace

void mma_linear_read_switches() {
  one_row_kernel_enabled();
  prefetch_paced();
  wgmma_min_rows();
  mma_linear_wgmma_read_switches();
  cuda_pdl::early_trigger_enabled();
}

int mma_linear_k_splits(int N) {
  static_assert(mma_linear_k_splits_of(1 << 20) == 1 && mma_linear_k_splits_of(2048) == 8, "splits 1 .. 8");
  return mma_linear_k_splits_of(N);
}

int mma_linear_epilogue(DType t, const void* x, const void* w, void* y, int64_t rows, int N, int K, int k_splits,
                        bool read_once, const MmaEpilogue& ep, void* stream, bool pdl) {
  if (rows < 0 || rows > (int64_t{1} << 30) || N <= 0 || K <= 0 || K % 8 != 0)
    return static_cast<int>(cudaErrorInvalidValue);
  if (!mma_epilogue_fits(ep, N)) return static_cast<int>(cudaErrorInvalidValue);
  const auto st = static_cast<cudaStream_t>(stream);
  if (ep.kind == Kind::Plain && rows >= wgmma_min_rows() && mma_linear_wgmma_available())
    return mma_linear_wgmma(t, x, w, y, rows, N, K, k_splits, stream, pdl);
  return t == DType::BF16 ? mma_linear_t<__nv_bfloat16>(x, w, y, rows, N, K, k_splits, read_once, ep, pdl, st)
                          : mma_linear_t<__half>(x, w, y, rows, N, K, k_splits, read_once, ep, pdl, st);
}

int mma_linear(DType t, const void* x, const void* w, void* y, int64_t rows, int N, int K, int k_splits,
               bool read_once, void* stream, bool pdl) {
  return mma_linear_epilogue(t, x, w, y, rows, N, K, k_splits, read_once, MmaEpilogue{}, stream, pdl);
}

}  // namespace cuda_fused
}  // namespace flexgen

FLEXGEN_CUDA_MODULE_ANCHOR(mma_linear)
