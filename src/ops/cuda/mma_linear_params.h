// Launch interface of the row-invariant tensor-core linear (mma_linear_kernel.cu); plain C++, no
// CUDA types.
#pragma once

#include <cstdint>

#include "fused_ops_params.h"

namespace flexgen {
namespace cuda_fused {

// y [rows, N] = x [rows, K] . w [N, K]^T for any number of rows (one launch; CTAs of 64 rows side
// by side, a single row with its x copied once into shared memory, or on Hopper from 33 rows the
// same arithmetic through wgmma: mma_linear_wgmma.h),
// reading each weight from memory once at bandwidth. K % 8 == 0; x, w 16-byte aligned. Row r's
// result depends on x's row r, w, K and k_splits only: never on `rows`, on the other rows or on
// the GPU, so a row decoded alone and in a batch of any size gets the same bits. k_splits (1, 2, 4
// or 8): warps that share an output column's K (mma_linear_k_splits). read_once: no later launch
// of this step reads w again (its lines go into L2 as the first to evict). pdl: programmatic
// dependent launch (launches of up to 8 rows let the next kernel launch as they start:
// cuda_pdl::trigger_early). Returns a cudaError_t value (0 = success).
int mma_linear(DType t, const void* x, const void* w, void* y, int64_t rows, int N, int K, int k_splits,
               bool read_once, void* stream, bool pdl = false);

// What a decode step's projection does with its outputs instead of writing y [rows, N] (the
// step's next elementwise kernel, folded into the linear's last instructions; each output the
// same bits as the linear's rounded output put through that kernel). The kernel then computes
// the two outputs of a pair in one lane: 16-column tiles are 8 columns and their 8 partners.
struct MmaEpilogue {
  enum class Kind { Plain, SiluMul, RopeCache };
  Kind kind = Kind::Plain;
  // [N] of the element type or null: added to each output (rounded like at::add) first.
  const void* bias = nullptr;
  // SiluMul: w = [gate | up] (N = 2 I, I % 8 == 0): y [rows, I] = silu_times(gate, up).
  // RopeCache: w = [q | k | v] ((H + 2 Hkv) D rows, D % 16 == 0), one new token per row r at
  // position cos/sin[r]: RoPE'd q into q_out [rows, H, D], RoPE'd k and plain v into the caches
  // at slot first_slot[r] (strides cs0 row, cs1 KV head, cs2 slot; y is not written).
  const void* cos = nullptr;  // [rows, D]
  const void* sin = nullptr;
  void* q_out = nullptr;
  void* k_cache = nullptr;
  void* v_cache = nullptr;
  const int64_t* first_slot = nullptr;
  int64_t cs0 = 0, cs1 = 0, cs2 = 0;
  int H = 0, Hkv = 0, D = 0;
};

// Whether `ep` can take a linear of N outputs: pair epilogues need whole tiles of pairs (SiluMul: N
// a multiple of 16; RopeCache: N = (H + 2 Hkv) D, D a multiple of 16).
inline bool mma_epilogue_fits(const MmaEpilogue& ep, int N) {
  if (ep.kind == MmaEpilogue::Kind::SiluMul) return N % 16 == 0;
  if (ep.kind == MmaEpilogue::Kind::RopeCache)
    return ep.D > 0 && ep.D % 16 == 0 && ep.H > 0 && ep.Hkv > 0 && N == (ep.H + 2 * ep.Hkv) * ep.D;
  return true;
}

// mma_linear with an epilogue (Kind::Plain: mma_linear itself, bias not added). The products and
// their sums are mma_linear's: only the columns' order within a warp's tile differs.
int mma_linear_epilogue(DType t, const void* x, const void* w, void* y, int64_t rows, int N, int K, int k_splits,
                        bool read_once, const MmaEpilogue& epilogue, void* stream, bool pdl = false);

// Reads the linears' environment switches now (FLEXGEN_CUDA_ONE_ROW_LINEAR,
// FLEXGEN_CUDA_PREFETCH_PACED, FLEXGEN_CUDA_DECODE_WGMMA_ROWS, FLEXGEN_CUDA_EARLY_TRIGGER): a value
// they do not take throws std::invalid_argument.
void mma_linear_read_switches();

// The K splits for N outputs, from N alone (enough warps to fill any GPU: 16-column tiles x splits
// >= 2048, at most 8), so that every GPU and every batch computes the same bits.
constexpr int mma_linear_k_splits_of(int N) {
  int s = 1;
  while (s < 8 && (N + 15) / 16 * s < 2048) s *= 2;
  return s;
}
int mma_linear_k_splits(int N);

}  // namespace cuda_fused
}  // namespace flexgen
