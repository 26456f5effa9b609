// The one attention interface of the ops layer. The model calls only this;
// kernels (the dense reference here, the block-sparse CPU/CUDA kernels later)
// plug in behind it.
//
//   out = attention(q, k, v, mask, scale, q_offset, kv_offset)
//
//   q    [B, H,   Lq, D]   queries, rows at absolute positions q_offset .. q_offset+Lq-1
//   k, v [B, Hkv, Lk, D]   the cache contents, keys at absolute positions kv_offset ..
//   H % Hkv == 0; query head h reads KV head h / (H / Hkv) (GQA, as transformers' repeat_kv).
//   returns [B, H, Lq, D], dtype of q; softmax computed in fp32.
//
// Absolute positions index the sequence (cache slots), not RoPE position ids.
// The mask says which (query, key) pairs are allowed:
//   - Causal:  k <= q.
//   - Groups:  one flexgen::AttentionMask per batch row (or one for all rows):
//              allowed(q, k) = (!causal || k <= q) && visible[group(q)][group(k)],
//              evaluated at absolute positions; it must cover q_offset+Lq and kv_offset+Lk.
//   - Dense:   a bool tensor [B or 1, Lq, Lk], true = allowed, indexed relative to
//              the offsets.
// A query row with nothing allowed returns zeros, never NaN. Bad shapes or a
// mask that does not cover the positions throw std::invalid_argument; there
// is no fallback to another mask or kernel.
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <vector>

#include "flexgen/block_mask.h"
#include "flexgen/mask.h"

namespace flexgen {

struct DeviceBlockMask;  // block_sparse_attention_cuda.h
struct DeviceMaskTable;  // block_sparse_attention_cuda.h

struct AttentionMaskRef {
  enum class Kind { Causal, Groups, Dense };
  Kind kind = Kind::Causal;
  const std::vector<AttentionMask>* groups = nullptr;  // Groups: size B or 1, not owned
  at::Tensor dense;                                     // Dense: bool [B or 1, Lq, Lk]
  // Groups only: block masks over the same absolute positions, one per entry of
  // `groups`. When set, attention() runs the block-sparse kernel
  // (block_sparse_attention.h); otherwise the dense reference.
  const std::vector<BlockMask>* blocks = nullptr;
  // Groups only, CUDA tensors: the block masks uploaded to the device (one per entry of
  // `groups`, uploaded once per sequence); attention() then runs the CUDA kernel.
  const std::vector<DeviceBlockMask>* device_blocks = nullptr;
  // Decode steps of rows at different positions (continuous batching), one query row each:
  // query row of batch row b is at absolute position (*row_q_offsets)[b] (the q_offset argument
  // is ignored) and keys are the whole cache (kv_offset 0); the masks must be causal, so
  // cache slots after a row's position are never read. CUDA: `device_table` holds the rows'
  // masks and positions in device memory instead (what a captured CUDA graph replays).
  const std::vector<int64_t>* row_q_offsets = nullptr;
  const DeviceMaskTable* device_table = nullptr;

  static AttentionMaskRef causal() { return {}; }
  static AttentionMaskRef from_groups(const std::vector<AttentionMask>& rows) {
    AttentionMaskRef m;
    m.kind = Kind::Groups;
    m.groups = &rows;
    return m;
  }
  static AttentionMaskRef from_groups(const std::vector<AttentionMask>& rows, const std::vector<BlockMask>& blocks) {
    AttentionMaskRef m = from_groups(rows);
    m.blocks = &blocks;
    return m;
  }
  static AttentionMaskRef from_dense(at::Tensor allowed) {
    AttentionMaskRef m;
    m.kind = Kind::Dense;
    m.dense = std::move(allowed);
    return m;
  }
};

// Builds the bool [B', Lq, Lk] "allowed" tensor the mask describes (B' = 1 for
// Causal and for a single shared AttentionMask). Exposed for kernels and tests.
at::Tensor dense_allowed(const AttentionMaskRef& mask, int64_t batch, int64_t q_len,
                         int64_t kv_len, int64_t q_offset, int64_t kv_offset);

// Dense masked reference implementation (see the contract above).
at::Tensor attention_dense(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           const AttentionMaskRef& mask, double scale, int64_t q_offset,
                           int64_t kv_offset);

// The entry point the model uses: the block-sparse kernel for Groups masks with
// block masks, attention_dense for everything else.
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const AttentionMaskRef& mask, double scale, int64_t q_offset,
                     int64_t kv_offset);

}  // namespace flexgen
