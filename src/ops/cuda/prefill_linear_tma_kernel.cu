// Warp-specialized Hopper tiled linear (contract: prefill_linear_tma.h): prefill_linear's bits at
// closer to the tensor cores' rate for passes of many rows.
//
// A CTA computes 128-row x BN-column tiles of y, one after another (persistent CTAs, one an SM),
// through tma_tile.cuh's pipeline: one producer warp streams the x and w stages by TMA, two
// consumer warpgroups of 64 rows multiply with wgmma and round their accumulators once into y.
//
// Arithmetic: one fp32 accumulator an output takes the k16 steps of K in increasing order from
// zero, each a wgmma of x[r, k .. k+15] with w[n, k .. k+15]; elements past K are zeros (TMA fills
// them); rounded once to T. That is prefill_linear's (and its mma.sync kernel's) order, so the
// bits are the same whatever kernel or tile a row goes through.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "env_switch.h"
#include "kernel_attribute.cuh"
#include "kernel_module.cuh"
#include "pdl.cuh"
#include "prefill_linear_params.h"
#include "prefill_linear_tma.h"
#include "tensor_map.h"
#include "tile_stages.cuh"
#include "tma_tile.cuh"
#include "wgmma_tile.cuh"

namespace flexgen {
namespace cuda_fused {

namespace {

using tile_stages::TmaTile;

// Tiles of 128 rows x BN columns, 4 stages (129-193 KB: one CTA an SM).
template <int BN>
using Tile = TmaTile<2, BN, 4, 1>;

// SILU: wmap and umap are the gate and up halves of a [gate | up] weight (boxes of BN / 2 rows),
// N = I, and the CTA's BN-column product (BN / 2 gate columns, the same BN / 2 of up) leaves as
// BN / 2 columns of silu_times(gate, up) (wgmma_tile_store_silu).
// Tiles t = blockIdx.x, blockIdx.x + gridDim.x, ... of the mt x nt tiles, row tiles fastest (t:
// row tile t % mt, column tile t / mt): a grid of every tile computes one each; a smaller one
// (persistent CTAs) goes through its tiles with one ring of stages, the producer loading the next
// tile's first stages while the consumers store the last one's outputs.
template <typename T, typename C, bool SILU>
__global__ void __launch_bounds__(C::kThreads, C::MINB)
    prefill_linear_tma_kernel(const __grid_constant__ CUtensorMap xmap, const __grid_constant__ CUtensorMap wmap,
                              const __grid_constant__ CUtensorMap umap, T* __restrict__ y, int rows, int N, int K) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ unsigned char smem_raw[];
  constexpr int kOutCols = SILU ? C::BN / 2 : C::BN;
  const int ktiles = (K + tile_stages::kBK - 1) / tile_stages::kBK;
  const int mt = (rows + C::BM - 1) / C::BM, tiles = mt * ((N + kOutCols - 1) / kOutCols);
  const tile_stages::TmaStages<C> st = tile_stages::tma_stages_ready<C>(smem_raw);
  const int tid = static_cast<int>(threadIdx.x);
  int base = 0;
  for (int t = static_cast<int>(blockIdx.x); t < tiles; t += static_cast<int>(gridDim.x), base += ktiles) {
    const int m0 = t % mt * C::BM, n0 = t / mt * kOutCols;
    // A last row or column tile that would reach past x or w loads the box that ends at their edge
    // instead (TMA's zero fill of rows past a tensor is slow) and stores only its own outputs: each
    // output is its own x row and w row's product, wherever in a tile it is computed.
    const int ml = m0 + C::BM > rows && rows >= C::BM ? rows - C::BM : m0;
    const int nl = n0 + kOutCols > N && N >= kOutCols ? N - kOutCols : n0;
    const bool last = t + static_cast<int>(gridDim.x) >= tiles;
    float d[C::kNB][C::kBW / 2];
    tile_stages::tma_tile_pass<T>(st, &xmap, &wmap, ml, nl, 0, 1, ktiles, d, SILU ? &umap : nullptr, base, !last);
    if (last) cuda_pdl::pdl_trigger();  // the next kernel may launch (it waits for this one's end)
    if (tid < C::kConsumers) {
      if constexpr (SILU) {
        tile_stages::wgmma_tile_store_silu<T, C::kNB, C::kBW>(d, y, rows, N, ml, nl, m0, n0);
      } else {
#pragma unroll
        for (int b = 0; b < C::kNB; ++b)
          tile_stages::wgmma_tile_store<T>(d[b], y, rows, N, ml, nl + C::kBW * b, m0, n0);
      }
    }
  }
#else
  __trap();
#endif
}

// Whether the TMA prefill linear launches persistent CTAs (FLEXGEN_CUDA_PREFILL_PERSISTENT=1, the
// default) or one CTA a tile (=0, A/B runs: the same bits). Read once.
bool persistent_switch() {
  static const bool on = cuda_env::env_switch("FLEXGEN_CUDA_PREFILL_PERSISTENT", {"0", "1"}) != "0";
  return on;
}

// SILU: w is [gate | up] with gate and up N / 2 rows each, and y [rows, N / 2]
// their silu_times: the w tile is two boxes of BN / 2 rows, one of each half.
// Either way the kernel's N is the rows of a weight map (wrows) and a column tile is `box` of them.
template <typename T, typename C, bool SILU>
int launch_tile(DType t, const void* x, const void* w, void* y, int rows, int N, int K, bool pdl, cudaStream_t st) {
  constexpr auto kernel = prefill_linear_tma_kernel<T, C, SILU>;
  if (const cudaError_t e = cuda_launch::allow_dynamic_smem<kernel>(C::kSmemBytes); e != cudaSuccess)
    return static_cast<int>(e);
  constexpr int box = SILU ? C::BN / 2 : C::BN;
  const int wrows = SILU ? N / 2 : N;
  CUtensorMap xmap, wmap, umap;
  if (const int e = cuda_tma::encode_k_major(&xmap, t, x, rows, K, C::BM); e != 0) return e;
  if (const int e = cuda_tma::encode_k_major(&wmap, t, w, wrows, K, box); e != 0) return e;
  if (SILU) {
    const auto* up = static_cast<const T*>(w) + static_cast<int64_t>(wrows) * K;
    if (const int e = cuda_tma::encode_k_major(&umap, t, up, wrows, K, box); e != 0) return e;
  } else {
    umap = wmap;  // unused
  }
  // Row tiles vary fastest: the CTAs of one column tile run together and share its weights in L2.
  // Persistent: as many CTAs as are resident at once, each going through its tiles.
  const int64_t tiles = int64_t{(rows + C::BM - 1) / C::BM} * ((wrows + box - 1) / box);
  int64_t ctas = tiles;
  if (persistent_switch()) {
    int per_sm = 0;
    if (const cudaError_t e = cuda_launch::resident_ctas<kernel>(C::kThreads, C::kSmemBytes, per_sm); e != cudaSuccess)
      return static_cast<int>(e);
    ctas = std::min<int64_t>(tiles, int64_t{std::max(per_sm, 1)} * tile_stages::sm_count());
  }
  return static_cast<int>(cuda_pdl::launch(kernel, dim3(static_cast<unsigned>(ctas)), dim3(C::kThreads), C::kSmemBytes,
                                           st, pdl, xmap, wmap, umap, static_cast<T*>(y), rows, wrows, K));
}

template <typename T, typename C>
int launch_tile(DType t, const void* x, const void* w, void* y, int rows, int N, int K, bool silu, bool pdl,
                cudaStream_t st) {
  return silu ? launch_tile<T, C, true>(t, x, w, y, rows, N, K, pdl, st)
              : launch_tile<T, C, false>(t, x, w, y, rows, N, K, pdl, st);
}

// Tile widths by the run's FLEXGEN_CUDA_PREFILL_BN (read once; A/B runs: no value depends on it):
// unset or `auto` 0 (prefill_tile_width's rule), `legacy` -1 (the rule before it: 128 x 128 where
// those fit in one wave, else 128 x 256), or a width (128, 160, 192, 208, 224, 240, 256) for every
// launch.
int tile_width_switch() {
  static const int v = [] {
    const std::string s = cuda_env::env_switch(
        "FLEXGEN_CUDA_PREFILL_BN", {"auto", "legacy", "128", "160", "192", "208", "224", "240", "256"});
    if (s.empty() || s == "auto") return 0;
    return s == "legacy" ? -1 : std::stoi(s);
  }();
  return v;
}

// silu: N = 2 I columns of [gate | up] in (the tile width is chosen for them), I out.
template <typename T>
int launch(DType t, const void* x, const void* w, void* y, int rows, int N, int K, bool silu, bool pdl,
           cudaStream_t st) {
  switch (prefill_tile_width(rows, N, tile_stages::sm_count(), tile_width_switch())) {
    case 128: return launch_tile<T, Tile<128>>(t, x, w, y, rows, N, K, silu, pdl, st);
    case 160: return launch_tile<T, Tile<160>>(t, x, w, y, rows, N, K, silu, pdl, st);
    case 192: return launch_tile<T, Tile<192>>(t, x, w, y, rows, N, K, silu, pdl, st);
    case 208: return launch_tile<T, Tile<208>>(t, x, w, y, rows, N, K, silu, pdl, st);
    case 224: return launch_tile<T, Tile<224>>(t, x, w, y, rows, N, K, silu, pdl, st);
    case 240: return launch_tile<T, Tile<240>>(t, x, w, y, rows, N, K, silu, pdl, st);
    default: return launch_tile<T, Tile<256>>(t, x, w, y, rows, N, K, silu, pdl, st);
  }
}

int launch_any(DType t, const void* x, const void* w, void* y, int rows, int N, int K, bool silu, void* stream,
               bool pdl) {
  if (rows < 1 || N <= 0 || K <= 0 || K % 8 != 0) return static_cast<int>(cudaErrorInvalidValue);
  const auto st = static_cast<cudaStream_t>(stream);
  return t == DType::BF16 ? launch<__nv_bfloat16>(t, x, w, y, rows, N, K, silu, pdl, st)
                          : launch<__half>(t, x, w, y, rows, N, K, silu, pdl, st);
}

}  // namespace

void prefill_linear_read_switches() {
  tile_width_switch();
  persistent_switch();
}

int prefill_linear_tma(DType t, const void* x, const void* w, void* y, int rows, int N, int K, void* stream, bool pdl) {
  return launch_any(t, x, w, y, rows, N, K, false, stream, pdl);
}

int prefill_linear_silu_mul_tma(DType t, const void* x, const void* w, void* y, int rows, int inter, int K,
                                void* stream, bool pdl) {
  if (inter <= 0 || inter % 8 != 0 || inter > (1 << 29)) return static_cast<int>(cudaErrorInvalidValue);
  return launch_any(t, x, w, y, rows, 2 * inter, K, true, stream, pdl);
}

}  // namespace cuda_fused
}  // namespace flexgen

FLEXGEN_CUDA_MODULE_ANCHOR(prefill_linear_tma)
