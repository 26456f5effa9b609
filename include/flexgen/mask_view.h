// Text views of a mask, in the format of the seed document ("Smart Sampling"
// matrix, legend) plus a block-level view. Pure C++.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "flexgen/block_mask.h"
#include "flexgen/layout.h"
#include "flexgen/mask.h"

namespace flexgen {

struct MaskViewOptions {
  int64_t max_positions = 25;  // sampled rows/columns
  bool full = false;           // every position (only for small sequences)
  bool ascii = false;          // '#'/'.' and no emoji
};

constexpr int64_t kMaxFullMatrix = 512;

// Strategic positions: span boundaries (start, end-1), thirds of paraphrases
// longer than 4, the generation start, the position before it, the first 5
// generated and the last; gaps filled with midpoints; sorted, first N kept.
std::vector<int64_t> sample_positions(const SequenceLayout& layout, int64_t max_positions);

// Row label of a position: "S1"/"E1" (paraphrase start/end), "G0", "B" (BOS),
// "C"/"CE" (shared context start/end), "P1" (separator run after paraphrase 1),
// "Q1"/"A1" (few-shot example 1 question/answer start), or "".
std::string position_label(const SequenceLayout& layout, int64_t pos);

// The seed's "Attention Mask Visualization" block; throws std::invalid_argument
// when `full` is asked for a sequence longer than kMaxFullMatrix.
std::string render_mask_matrix(const SequenceLayout& layout, const AttentionMask& mask,
                               const MaskViewOptions& options);

// Legend, one line per span (with its position ids in restart mode), the
// generation start and the number of generated tokens.
std::string render_legend(const SequenceLayout& layout, bool ascii,
                          PositionMode positions = PositionMode::Sequential);

// Full/partial/empty per block pair, then the statistics.
std::string render_block_view(const BlockMask& blocks, bool ascii);
std::string render_block_stats(const BlockMask& blocks);

}  // namespace flexgen
