// Block mask (FlexAttention-style): per query block, the sorted key blocks that
// are fully visible and those that are partially visible; the rest are empty.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "flexgen/layout.h"
#include "flexgen/mask.h"

namespace flexgen {

enum class BlockClass : uint8_t { Empty, Partial, Full };

struct BlockMask {
  int64_t q_len = 0;
  int64_t kv_len = 0;
  int64_t block_size = 128;
  int64_t num_q_blocks = 0;
  int64_t num_kv_blocks = 0;
  // CSR lists: key blocks of query block b are indices[offsets[b] .. offsets[b+1]).
  std::vector<int32_t> full_offsets, full_indices;
  std::vector<int32_t> partial_offsets, partial_indices;
  int64_t allowed_pairs = 0;  // exact number of allowed (q, k) pairs

  BlockClass classify(int64_t q_block, int64_t kv_block) const;
};

struct BlockMaskStats {
  int64_t full = 0, partial = 0, empty = 0;  // block pairs by class
  int64_t allowed_pairs = 0;
  int64_t total_pairs = 0;   // q_len * kv_len
  int64_t causal_pairs = 0;  // pairs with k <= q
  double density() const;         // allowed / total
  double causal_fraction() const;  // allowed / causal
};

constexpr int64_t kDefaultBlockSize = 128;
constexpr int64_t kMaxSequenceLength = 1000000;

// Analytic builder from the layout's spans: O(block pairs x spans per block),
// no per-element evaluation.
BlockMask build_block_mask(const SequenceLayout& layout, const MaskSpec& spec,
                           int64_t block_size = kDefaultBlockSize);

// The same from a per-position mask: runs of equal group ids play the spans' part.
BlockMask build_block_mask(const AttentionMask& mask, int64_t block_size = kDefaultBlockSize);

// As above, but only the query blocks that overlap [q_begin, q_end) get their lists
// (the others are left empty), so a decode step builds one block row.
BlockMask build_block_mask_rows(const AttentionMask& mask, int64_t block_size, int64_t q_begin, int64_t q_end);

// Generic builder: evaluates `allowed` on every (q, k) pair. For tests and custom masks.
BlockMask build_block_mask_generic(int64_t q_len, int64_t kv_len, int64_t block_size,
                                   const std::function<bool(int64_t, int64_t)>& allowed);

BlockMaskStats block_mask_stats(const BlockMask& mask);

}  // namespace flexgen
