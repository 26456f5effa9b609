// prefill_linear's arithmetic through a warp-specialized Hopper kernel for passes of many rows
// (private to the CUDA backend; prefill_linear_kernel.cu's launcher calls it). Plain C++, no CUDA
// types.
#pragma once

#include <cstdint>

#include "fused_ops_params.h"

namespace flexgen {
namespace cuda_fused {

// y [rows, N] = x [rows, K] . w [N, K]^T with exactly prefill_linear's arithmetic (one fp32
// accumulator an output over the k16 steps of K in order, wgmma, rounded once), so a row's bits are
// those of any other prefill_linear launch. Tiles of 128 rows x prefill_tile_width columns: one
// warp loads x and w stages by TMA, two warpgroups multiply; persistent CTAs (one an SM) each go
// through their tiles with one ring of stages. Compute capability 9.0 only. K % 8 ==
// 0; x, w, y 16-byte aligned. Returns a cudaError_t value (0 = success).
int prefill_linear_tma(DType t, const void* x, const void* w, void* y, int rows, int N, int K, void* stream, bool pdl);

// y [rows, inter] = silu_times(gate, up) of the same product with w = [gate | up] ([2 inter, K]):
// each tile loads inter-apart gate and up rows side by side (prefill_tile_width of N = 2 inter) and
// rounds gate and up to T before silu_times, so the bits are those of prefill_linear_tma then
// silu_mul. inter % 8 == 0. Returns a cudaError_t value (0 = success).
int prefill_linear_silu_mul_tma(DType t, const void* x, const void* w, void* y, int rows, int inter, int K,
                                void* stream, bool pdl);

// The tile width (columns: 128, 160, 192, 208, 224, 240 or 256; rows 128) of a launch of `rows` x N
// on `sms` SMs (one CTA an SM): the one that ends soonest if a tile takes time in proportion to its
// width plus 80 (its fixed costs and the lower rate of narrow wgmmas: an H200's 3B and 1B matrices
// at 300-5000 rows), waves = ceil(tiles / sms); ties to the wider. A pass of one sample (~430
// tokens, 4 row tiles) then runs the 3B q|k|v projection (N = 5120) in one wave of 160-column tiles
// (128 CTAs; 256 gave 80, 128 two waves); at 600 tokens (5 row tiles) in one wave of 208 (125 CTAs)
// and gate|up (N = 16384) in three full waves of 208 (395 CTAs; 160 took four). forced: a width for
// every launch; -1 the rule before this one (128 where those fit in one wave, else 256). Speed
// only: the bits do not depend on the tile.
constexpr int prefill_tile_width(int64_t rows, int64_t N, int64_t sms, int forced = 0) {
  if (forced > 0) return forced;
  const int64_t row_tiles = (rows + 127) / 128;
  if (sms < 1) sms = 1;
  if (forced < 0) return row_tiles * ((N + 127) / 128) <= sms ? 128 : 256;
  const int widths[] = {256, 240, 224, 208, 192, 160, 128};
  int best = 256;
  int64_t best_cost = -1;
  for (const int w : widths) {
    const int64_t tiles = row_tiles * ((N + w - 1) / w), waves = (tiles + sms - 1) / sms, cost = waves * (w + 80);
    if (best_cost < 0 || cost < best_cost) best = w, best_cost = cost;
  }
  return best;
}

}  // namespace cuda_fused
}  // namespace flexgen
