// The one attention interface of the ops layer: the model calls only attention(), with the
// mask of the batch as one value (BatchMask) built in one place (make_row_mask); which kernel
// runs follows from the forms the mask was built in, never from a second device decision.
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
//   - causal():  k <= q (dense reference).
//   - dense():   a bool tensor [B or 1, Lq, Lk], true = allowed, indexed relative to the offsets.
//   - rows():    one RowMask per batch row (or one for all rows):
//                allowed(q, k) = (!causal || k <= q) && visible[group(q)][group(k)],
//                evaluated at absolute positions; it must cover q_offset+Lq and kv_offset+Lk.
//                Rows built with a block mask run the block-sparse kernel of their device (CPU,
//                or CUDA when the mask was uploaded); rows without one the dense reference.
//   - decode():  a decode step of rows at their own positions (continuous batching): one query
//                row per batch row, batch row b's at absolute position positions[b] (q_offset
//                is ignored), keys are the whole cache (kv_offset 0); masks must be causal, so
//                cache slots after a row's position are never read.
//   - decode_table(): the same on CUDA with the rows' masks and positions in a device table
//                (what a captured CUDA graph replays).
// A query row with nothing allowed returns zeros, never NaN. Bad shapes or a mask that does not
// cover the positions throw std::invalid_argument; there is no fallback to another kernel.
#pragma once

#include <ATen/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "flexgen/block_mask.h"
#include "flexgen/mask.h"

namespace flexgen {

struct DeviceBlockMask;  // the CUDA backend's uploaded block mask
struct DeviceMaskTable;  // the CUDA backend's per-row mask table for graph-captured decode steps

// One batch row's mask in the forms its backend reads. Cheap to copy (shared, immutable parts).
struct RowMask {
  std::shared_ptr<const AttentionMask> groups;     // always set
  std::shared_ptr<const BlockMask> blocks;         // block-sparse kernels; null = dense reference
  std::shared_ptr<const DeviceBlockMask> device;   // CUDA: blocks + groups uploaded to the device
};

// Builds a row's mask for attention on `device`: block_size > 0 adds its block mask (the
// block-sparse kernel), and on a CUDA device uploads both (the CUDA kernel needs a block size).
// block_size 0 on the CPU leaves the dense reference. The one place where mask forms are made.
RowMask make_row_mask(AttentionMask mask, int64_t block_size, const at::Device& device = at::kCPU);

// The mask of a batch (see the contract above). Kinds hold exactly what they need.
class BatchMask {
 public:
  enum class Kind { Causal, Dense, Rows, Decode, DecodeTable };

  static BatchMask causal() { return BatchMask(Kind::Causal); }
  static BatchMask dense(at::Tensor allowed);
  static BatchMask rows(std::vector<RowMask> rows);
  // Convenience for tests and references: CPU rows from group masks, with block masks (the
  // block-sparse kernel; one per mask) or without (the dense reference).
  static BatchMask rows(const std::vector<AttentionMask>& masks, const std::vector<BlockMask>& blocks = {});
  static BatchMask decode(std::vector<RowMask> rows, std::vector<int64_t> positions);
  // `table` must outlive the calls that use this mask.
  static BatchMask decode_table(const DeviceMaskTable& table);
  // Asks the kernels for arithmetic that does not depend on the number of rows in the call.
  BatchMask& with_batch_invariance(bool on) {
    batch_invariant_ = on;
    return *this;
  }
  bool batch_invariant() const { return batch_invariant_; }

  Kind kind() const { return kind_; }
  const at::Tensor& dense_allowed_tensor() const { return dense_; }
  const std::vector<RowMask>& row_masks() const { return rows_; }
  const std::vector<int64_t>& positions() const { return positions_; }
  const DeviceMaskTable* table() const { return table_; }
  // The group mask that batch row b uses (rows shared by all batch rows when there is one).
  const AttentionMask& groups_of(size_t b) const { return *rows_[rows_.size() == 1 ? 0 : b].groups; }

 private:
  explicit BatchMask(Kind kind) : kind_(kind) {}
  Kind kind_;
  at::Tensor dense_;
  std::vector<RowMask> rows_;
  std::vector<int64_t> positions_;
  const DeviceMaskTable* table_ = nullptr;
  bool batch_invariant_ = false;
};

// Builds the bool [B', Lq, Lk] "allowed" tensor the mask describes (B' = 1 for causal and for
// one row mask shared by all rows). Causal, Dense and Rows kinds. Exposed for kernels and tests.
at::Tensor dense_allowed(const BatchMask& mask, int64_t batch, int64_t q_len, int64_t kv_len, int64_t q_offset,
                         int64_t kv_offset);

// Dense masked reference implementation (Causal, Dense and Rows kinds; see the contract above).
at::Tensor attention_dense(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const BatchMask& mask,
                           double scale, int64_t q_offset, int64_t kv_offset);

// The entry point the model uses: the kernel the mask's forms call for (see above).
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const BatchMask& mask,
                     double scale, int64_t q_offset, int64_t kv_offset);

}  // namespace flexgen
