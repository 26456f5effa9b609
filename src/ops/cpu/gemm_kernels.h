// Matrix products for the model's linear layers on the CPU (private to the ops CPU backend):
// out[m][n] = sum_k x[m][k] * w[n][k] in fp32, for bf16 or fp32 x and w, one kernel per
// instruction-set path, all with the SAME arithmetic, so every path gives bitwise the same result.
// bf16:
//   each output accumulates in 16 fp32 lanes; lane i takes the pairs (2i, 2i+1) of each run of
//   32 k's, the odd product first, then the even one, each with one rounding (exactly what
//   AVX512_BF16's vdpbf16ps does: products of bf16 values are exact in fp32); a K that is not a
//   multiple of 32 is padded with zeros; the 16 lanes are summed in a fixed tree at the end
//   (reduce_lanes). Rows never share arithmetic, so a row's result does not depend on how many
//   rows share the call (batch invariance), nor on the threads.
// (vdpbf16ps flushes denormal inputs and outputs to zero; the other paths do not: bf16 weights
// and activations of a working model are never that small.)
// fp32: lane i takes k = 16 j + i (one FMA per k, in k order; zeros past K), the same lane-sum tree.
#pragma once

#include <cstdint>

#include "flexgen/cpu_isa.h"

namespace flexgen::cpu {

constexpr int kLanes = 16;   // fp32 accumulator lanes per output
constexpr int kChunk = 32;   // bf16 k's per step (two per lane)
constexpr int kChunkF32 = 16;  // fp32 k's per step (one per lane)
constexpr int kMaxRows = 4;  // rows per micro-kernel call
constexpr int kMaxCols = 4;  // outputs per micro-kernel call
constexpr int kMaxColsWide = 6;  // outputs per call of the avx512bf16 bf16 kernel (block_cols)

// A single row's product (a decode step) streams every weight row once: each step asks for the
// bytes kPrefetchBytes ahead in each of its weight rows (a hint; it changes no value, and
// prefetches never fault). Intel Xeon VM (model 207), interleaved runs, decode median +17% on
// avx512bf16, +7% avx512, +10% avx2 (bench/cpu/results/vm-2026-12-01f-prefetch.md); calls of more
// rows reuse their weights from cache and gained nothing measurable (5-row steps), so only
// single-row calls prefetch. Past a row's end (the last kPrefetchBytes of K) it asks for the same
// row of the next block, w + NR ldw on (the next call's rows: a thread's calls walk contiguous
// blocks of its tile), so a block does not start cold.
constexpr int64_t kPrefetchBytes = 2048;
template <int NR, typename T>
inline void prefetch_weight_rows(const T* w, int64_t ldw, int64_t K, int64_t k) {
  const int64_t ahead = k + kPrefetchBytes / static_cast<int64_t>(sizeof(T));
  const T* p = ahead < K ? w + ahead : w + NR * ldw + (ahead - K);
  for (int n = 0; n < NR; ++n) __builtin_prefetch(p + n * ldw, 0, 3);
}

// The fixed order in which the 16 lanes are summed: halves, quarters, eighths, then the last pair.
inline float reduce_lanes(const float* l) {
  float s8[8], s4[4], s2[2];
  for (int i = 0; i < 8; ++i) s8[i] = l[i] + l[i + 8];
  for (int i = 0; i < 4; ++i) s4[i] = s8[i] + s8[i + 4];
  for (int i = 0; i < 2; ++i) s2[i] = s4[i] + s4[i + 2];
  return s2[0] + s2[1];
}

// One block: out[m * ldo + n] for m < rows (<= kMaxRows), n < cols (<= kMaxCols); x rows at
// x + m * ldx, w rows at w + n * ldw, K values each (bf16 bit patterns).
using BlockKernel = void (*)(const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t ldw, int64_t K, int rows,
                             int cols, float* out, int64_t ldo);

// Calls fn<rows, cols>(x, ldx, w, ldw, K, out, ldo) for rows, cols in 1..4 (the kernels' template).
#define FLEXGEN_BLOCK_DISPATCH(fn)                                                                                  \
  switch (rows * 8 + cols) {                                                                                  \
    case 9: return fn<1, 1>(x, ldx, w, ldw, K, out, ldo);                                                     \
    case 10: return fn<1, 2>(x, ldx, w, ldw, K, out, ldo);                                                    \
    case 11: return fn<1, 3>(x, ldx, w, ldw, K, out, ldo);                                                    \
    case 12: return fn<1, 4>(x, ldx, w, ldw, K, out, ldo);                                                    \
    case 17: return fn<2, 1>(x, ldx, w, ldw, K, out, ldo);                                                    \
    case 18: return fn<2, 2>(x, ldx, w, ldw, K, out, ldo);                                                    \
    case 19: return fn<2, 3>(x, ldx, w, ldw, K, out, ldo);                                                    \
    case 20: return fn<2, 4>(x, ldx, w, ldw, K, out, ldo);                                                    \
    case 25: return fn<3, 1>(x, ldx, w, ldw, K, out, ldo);                                                    \
    case 26: return fn<3, 2>(x, ldx, w, ldw, K, out, ldo);                                                    \
    case 27: return fn<3, 3>(x, ldx, w, ldw, K, out, ldo);                                                    \
    case 28: return fn<3, 4>(x, ldx, w, ldw, K, out, ldo);                                                    \
    case 33: return fn<4, 1>(x, ldx, w, ldw, K, out, ldo);                                                    \
    case 34: return fn<4, 2>(x, ldx, w, ldw, K, out, ldo);                                                    \
    case 35: return fn<4, 3>(x, ldx, w, ldw, K, out, ldo);                                                    \
    case 36: return fn<4, 4>(x, ldx, w, ldw, K, out, ldo);                                                    \
    default: return;                                                                                          \
  }

// The same for fp32 x and w.
using BlockKernelF32 = void (*)(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t K, int rows,
                                int cols, float* out, int64_t ldo);

BlockKernel block_kernel(CpuIsa isa);          // the bf16 kernel of a path (any path this build has)
// The most outputs one call of a path's bf16 kernel takes: kMaxColsWide on avx512bf16 (4 x 6
// accumulators: 10 loads per 24 vdpbf16ps instead of 8 per 16; 2-core Zen 5 VM, 1B shapes: the
// K = 8192 down projection 1.2x at 80 rows, a decode step's linears 1.07x at 16 rows, 1.04x at 80),
// else kMaxCols. Blocking changes no bit: every output's sum is its own.
int block_cols(CpuIsa isa);
BlockKernelF32 block_kernel_f32(CpuIsa isa);   // the fp32 one (avx512bf16 runs the avx512 one)

void block_portable(const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t ldw, int64_t K, int rows, int cols,
                    float* out, int64_t ldo);
void block_avx2(const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t ldw, int64_t K, int rows, int cols,
                float* out, int64_t ldo);
void block_avx512(const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t ldw, int64_t K, int rows, int cols,
                  float* out, int64_t ldo);
void block_avx512bf16(const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t ldw, int64_t K, int rows, int cols,
                      float* out, int64_t ldo);
void block_f32_portable(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t K, int rows, int cols,
                        float* out, int64_t ldo);
void block_f32_avx2(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t K, int rows, int cols,
                    float* out, int64_t ldo);
void block_f32_avx512(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t K, int rows, int cols,
                      float* out, int64_t ldo);

}  // namespace flexgen::cpu
