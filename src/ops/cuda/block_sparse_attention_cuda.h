// Block-sparse attention, CUDA implementation (same semantics as the CPU kernel in
// flexgen/block_sparse_attention.h: block mask with full/partial key blocks, per-element
// group/visibility/causality checks only in partial blocks, GQA by index, zeros (never NaN) for
// rows with nothing allowed, fp32 accumulation, optional LSE, query/key offsets).
//
// This header holds no CUDA types and always compiles. The library flexgen_ops_cuda is always
// built: with a CUDA libtorch it holds the kernels (and defines FLEXGEN_WITH_CUDA for its
// users); without one it holds stubs that throw std::runtime_error("... built without CUDA").
// cuda_block_sparse_attention_available() says at run time whether the kernels can run.
//
// Usage (once per sequence, not per layer or step):
//   DeviceBlockMask dm = upload_block_mask(block_mask, attention_mask, q.device());
//   ... every layer / step:
//   auto r = block_sparse_attention_cuda(q, k, v, {DeviceMaskRef{&dm, q_offset, k_offset}}, opt);
// The DeviceBlockMask must outlive the calls that use it; rebuild and re-upload it when the
// sequence's block mask changes (e.g. when decoding crosses into a new query block the CPU-side
// block mask must cover the new positions: build it once for prompt + max_new_tokens).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "flexgen/block_mask.h"
#include "cpu/block_sparse_attention.h"
#include "flexgen/mask.h"

namespace flexgen {

// A block mask and its attention mask on one CUDA device: one int32 device buffer holding the
// CSR lists (full/partial offsets and indices), the group id of every position and the
// visibility matrix, plus the host-side sizes the launcher needs. For each partial block it also
// stores the range of the block's key columns that any query row of the block may see (from the
// runs of group ids), so the kernel skips e.g. the 127 invisible columns of the BOS block.
struct DeviceBlockMask {
  at::Tensor data;  // int32, on the device; owns everything below
  at::Tensor host;  // the same int32 values in (pinned) host memory: decode plans read them
  int64_t q_len = 0, kv_len = 0, block_size = 0, num_q_blocks = 0, num_kv_blocks = 0;
  int64_t length = 0;      // positions with a group id (attention mask length)
  int64_t num_groups = 0;
  bool causal = true;
  // Element offsets into `data` of each array.
  int64_t full_offsets = 0, full_indices = 0, partial_offsets = 0, partial_indices = 0;
  int64_t partial_cols = 0;  // per partial entry: [lo, hi) of the block's columns any row may see
  int64_t group_ids = 0, visible = 0;

  bool defined() const { return data.defined(); }
};

// Packs the block mask and the mask into one pinned host buffer and copies it to `device`
// asynchronously on the current CUDA stream (one transfer). Throws std::invalid_argument when
// the mask does not cover the block mask's positions or positions do not fit in int32.
DeviceBlockMask upload_block_mask(const BlockMask& block_mask, const AttentionMask& mask,
                                  const at::Device& device);

// The mask of one batch row (pointer not owned; must stay valid during the call).
struct DeviceMaskRef {
  const DeviceBlockMask* mask = nullptr;
  int64_t q_offset = 0;  // absolute position of query row 0
  int64_t k_offset = 0;  // absolute position of key row 0
  // Mask tables only: keys [0, shared_len) of this row are bitwise those of row shared_row of the
  // same k/v memory (a prefix many rows hold; DeviceMaskTable::shared_rows), and the decode kernel
  // may read them from there (the same bits; other kernels read the row's own). 0: none.
  int64_t shared_row = 0, shared_len = 0;
};

// q: [B, H, Lq, d]; k, v: [B, Hkv, Lk, d]; H % Hkv == 0; bf16 or fp16 (all the same); d = 64
// or 128; CUDA tensors on the masks' device; the last dimension contiguous (other strides free;
// rows that are not 16-byte aligned are copied first). masks.size() is 1 or B.
// options.scale and options.return_lse as in the CPU kernel; options.q_tile picks the query
// tile (64 or 128 rows; 0 = automatic); Runs on the current CUDA
// stream. Throws std::invalid_argument on bad shapes/dtypes/masks, std::runtime_error on CUDA
// errors or when built without CUDA.
BlockSparseAttentionResult block_sparse_attention_cuda(const at::Tensor& q, const at::Tensor& k,
                                                       const at::Tensor& v,
                                                       const std::vector<DeviceMaskRef>& masks,
                                                       const BlockSparseAttentionOptions& options = {});

// Per-row masks and query positions kept in device memory, for decode steps captured in a CUDA
// graph: the kernels read each batch row's mask descriptor (device pointers into its
// DeviceBlockMask, sizes, query position) from here, so one captured launch serves whatever
// masks and positions the host writes before each replay.
struct DeviceMaskTable {
  at::Tensor device;   // uint8 [rows * descriptor size] on the GPU
  at::Tensor staging;  // the same bytes in pinned host memory
  // Each row's decode plan (its query's listed key blocks, read from the host copy of its mask
  // when the table is written), on the GPU and staged in pinned host memory.
  at::Tensor plan_device, plan_staging;
  // int32 [rows * kDecodeCountedKvHeads] on the GPU, zero between launches: the decode kernel's
  // per-(row, KV head) split counts (the last split to finish merges the row's partials).
  at::Tensor counters;
  int64_t rows = 0;
  int64_t block_size = 0;  // every mask in the table uses this block size
  // Rows a descriptor's shared_row may name: [0, rows + shared_rows) of the k/v tensors' memory
  // (rows past the step's, in the same allocation with the same strides).
  int64_t shared_rows = 0;
  std::shared_ptr<void> copy_done;  // event of the last upload (the staging buffer is reused)
};

DeviceMaskTable make_device_mask_table(int64_t rows, int64_t block_size, const at::Device& device,
                                       int64_t shared_rows = 0);

// The table's first `rows` rows (1 <= rows <= table.rows) as a table of their own: a view of the
// same device memory, so every update of the whole table is what it reads (its shared_rows count
// from the table's rows: the same rows of memory stay nameable).
DeviceMaskTable device_mask_table_rows(const DeviceMaskTable& table, int64_t rows);

// Writes one descriptor per row (refs.size() == rows; k_offset 0; q_offset = the row's query
// position; each mask's block size == the table's) and copies them to the device on the current
// stream. The DeviceBlockMasks must stay alive while calls read the table.
void update_device_mask_table(DeviceMaskTable& table, const std::vector<DeviceMaskRef>& refs);

// One query row per batch row (q [rows, H, 1, d]), at the table's positions; k/v [rows, Hkv, Lk, d]
// with key row j at position j, their memory holding rows + shared_rows rows at their batch stride
// when the table has shared rows. Otherwise as above.
BlockSparseAttentionResult block_sparse_attention_cuda_table(const at::Tensor& q, const at::Tensor& k,
                                                       const at::Tensor& v, const DeviceMaskTable& table,
                                                       const BlockSparseAttentionOptions& options = {});

// Reads the attention's environment switches (FLEXGEN_CUDA_DECODE_MERGE, FLEXGEN_CUDA_BSA_VARIANT,
// FLEXGEN_CUDA_SHARED_PREFIX, FLEXGEN_CUDA_DECODE_PLAN) now: a value they do not take throws
// std::invalid_argument (bind_cuda_device calls it, so a run fails before it opens its output).
// CUDA builds only.
void read_attention_switches();

// Whether decode steps read stored prefixes from shared rows (DeviceMaskRef::shared_row):
// FLEXGEN_CUDA_SHARED_PREFIX unset or 1; 0 for A/B runs (the same bits). CUDA builds only.
bool shared_prefix_reads();

// Whether mask tables carry decode plans (DecodePlan: each row's listed key blocks, so the decode
// kernel does not walk the mask's lists): FLEXGEN_CUDA_DECODE_PLAN unset or 1; 0 for A/B runs
// (the same bits). CUDA builds only.
bool decode_plans();

// True when built with CUDA and a CUDA device is present.
bool cuda_block_sparse_attention_available();

// The head dims the kernels take.
constexpr bool cuda_attention_takes_head_dim(int64_t d) { return d == 64 || d == 128; }

// Description of the compiled kernels (for logs and benchmarks).
std::string block_sparse_attention_cuda_backend();

}  // namespace flexgen
