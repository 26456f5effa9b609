// Block-sparse attention (FlexAttention-style), CPU implementation.
//
// out[b, h, i, :] = sum_k softmax_k(scale * q[b,h,i,:] . k[b,h/g,k,:]) v[b,h/g,k,:]
// over the keys k with allowed(q_offset + i, k_offset + k), where g = heads / kv_heads (GQA:
// query head h reads KV head h / g in place, nothing is copied or repeated).
//
// Positions: the block mask and the attention mask of a batch row describe ABSOLUTE positions
// of that row's sequence (e.g. the whole prompt + generated tokens, as built by
// build_block_mask(layout, spec, B)). Query row i of `q` is absolute position q_offset + i and
// key row j of `k`/`v` is absolute position k_offset + j. Nothing has to be aligned to the
// block size: the kernel derives the mask's query block of every absolute row (row p belongs
// to query block p / block_size), splits its own query tiles at mask-block boundaries, and
// clips the mask's key blocks to the keys that are present in k/v. So the same call serves
// a full prefill (q_offset = k_offset = 0), a prefill chunk against an existing cache
// (q_offset = cache length, k_offset = 0, k/v = cache + chunk) and a decode step (Lq = 1).
//
// Per query tile it visits only the key blocks listed for its mask block; on full blocks it
// does no per-element mask work; on partial blocks it evaluates mask.allowed(q, k) per element
// (and trims the tile to the rows/columns that have any allowed pair). Online softmax with
// fp32 accumulation for fp32 and bf16 inputs; the output has the input dtype. A query row with
// nothing allowed gets zeros (and lse = -inf). Query rows past the end of the row's mask
// (padding of a shorter batch row) are treated the same way: zeros.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "flexgen/block_mask.h"
#include "flexgen/mask.h"

namespace flexgen {

// The mask of one batch row. The pointers must stay valid during the call.
struct SparseMaskRef {
  const BlockMask* block_mask = nullptr;  // over absolute positions of this row
  const AttentionMask* mask = nullptr;    // same positions; length >= block_mask q_len and kv_len
  int64_t q_offset = 0;                   // absolute position of query row 0
  int64_t k_offset = 0;                   // absolute position of key row 0
};

struct BlockSparseAttentionOptions {
  double scale = 0.0;       // softmax scale; 0 means 1/sqrt(head_dim)
  bool return_lse = false;  // also return the natural-log log-sum-exp per row [B, H, Lq] (fp32)
  // Query positions per kernel tile (each tile holds them for all query heads of one KV
  // head); 0 = automatic: 192 / (heads / kv_heads), measured best on AVX-512. Tiles never
  // straddle a mask block, so mask block size and tile size are independent; a row's result does
  // not depend on the tile size (nor on the batch, the threads or the instruction-set path).
  int64_t q_tile = 0;
  // CUDA: a row's arithmetic must not depend on how many rows share the call (decode steps always
  // take the split-K decode kernel, with a split count that depends on the keys alone).
  bool batch_invariant = false;
};

struct BlockSparseAttentionResult {
  at::Tensor out;  // [B, H, Lq, d], dtype of q (the CUDA kernels: a view of [B, Lq, H, d] memory)
  at::Tensor lse;  // [B, H, Lq] fp32, natural log; undefined unless return_lse
};

// q: [B, H, Lq, d]; k, v: [B, Hkv, Lk, d]; H % Hkv == 0; dtype float32 or bfloat16 (all the
// same); CPU; the last dimension must be contiguous (other strides are free, e.g. a view of a
// [B, L, H, d] tensor). masks.size() is 1 (shared by all batch rows) or B.
// Throws std::invalid_argument with a clear message on inconsistent shapes or masks.
BlockSparseAttentionResult block_sparse_attention(const at::Tensor& q, const at::Tensor& k,
                                                  const at::Tensor& v,
                                                  const std::vector<SparseMaskRef>& masks,
                                                  const BlockSparseAttentionOptions& options = {});

// Convenience: one mask for every batch row.
at::Tensor block_sparse_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                  const BlockMask& block_mask, const AttentionMask& mask,
                                  int64_t q_offset = 0, int64_t k_offset = 0, double scale = 0.0);

// Entry point for the model's group masks (flexgen::BatchMask::from_groups): one
// AttentionMask per batch row or one for all, over absolute positions; it must cover
// q_offset + Lq and k_offset + Lk (else std::invalid_argument). Builds the block masks of the
// query rows in use (build_block_mask_rows) and runs the kernel. scale 0 = 1/sqrt(head_dim).
at::Tensor block_sparse_attention_groups(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                         const std::vector<AttentionMask>& masks, double scale,
                                         int64_t q_offset, int64_t k_offset,
                                         int64_t block_size = kDefaultBlockSize);

// Which instruction-set path the kernel runs (cpu_isa()); for benchmarks and logs.
std::string block_sparse_attention_backend();

}  // namespace flexgen
