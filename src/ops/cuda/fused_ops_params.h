// Launch interface of the fused LLaMA kernels (fused_ops_kernel.cu); plain C++, no CUDA types.
#pragma once

#include <cstdint>

namespace flexgen {
namespace cuda_fused {

// The element type of every buffer of one call.
enum class DType { BF16, FP16 };

// Whether a buffer starts on a 16-byte boundary (what the 16-byte loads of the kernels need).
inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

struct RopeParams {
  // device buffers of the call's element type
  const void* qkv;      // [B, L, (H + 2 Hkv) D], or packed rows [T, (H + 2 Hkv) D] with `rows`
  const void* cos;      // [B, L, D]
  const void* sin;
  void* q_out;          // [B, H, L, D]
  void* k_cache;        // [B, Hkv, T, D] with strides cs0, cs1, cs2 (last dim contiguous)
  void* v_cache;        // same strides
  const int64_t* first_slot;  // [B]
  // [B * L] or null (row = token): token b * L + l's row of qkv, -1 for none (its q|k|v are zeros)
  const int64_t* rows;
  int64_t cs0, cs1, cs2;
  int B, L, H, Hkv, D;
};

// Each returns a cudaError_t value (0 = success). Pointers are device buffers of element type t.
// pdl: launched with programmatic dependent launch (Hopper and later; cuda_pdl_enabled()).
// h [rows, n]; delta null: out = rms_norm(h); else h = h + delta, out = rms_norm(h).
int rms_norm(DType t, void* h, const void* delta, const void* w, void* out, int64_t rows, int n, float eps,
             void* stream, bool pdl = false);
int silu_mul(DType t, const void* gu, void* out, int64_t rows, int inter, void* stream, bool pdl = false);
int rope_qkv(DType t, const RopeParams& p, void* stream, bool pdl = false);
// cos/sin [tokens, D] of the int64 positions [tokens] and fp32 inv_freq [D / 2] (rope_tables_cuda).
int rope_tables(DType t, const int64_t* positions, const float* inv_freq, void* cos, void* sin, int64_t tokens,
                int D, void* stream, bool pdl = false);
// y [rows, N] = x [rows, K] . w [N, K]^T; rows 1..8; K % 8 == 0; 16-byte aligned rows; wpc (1, 2,
// 4 or 8) warps share one output column (the arithmetic of a column depends on it); read_once: no
// later launch of this step reads w again (its lines are evicted from L2 first).
int gemv(DType t, const void* x, const void* w, void* y, int rows, int N, int K, int wpc, bool read_once,
         void* stream, bool pdl = false);
// The warps per column for N outputs: enough warps to fill the GPU (N * wpc >= 8192, at most 8), from
// the matrix's shape alone so that every GPU and every batch computes the same bits.
int gemv_warps_per_column(int N);

}  // namespace cuda_fused
}  // namespace flexgen
