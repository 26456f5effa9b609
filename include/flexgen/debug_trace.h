// `flexgen debug`: the trace data of one sample run with the real mask (paraphrases, segment
// table, mask, isolation check, block mask, per-step top tokens); the CLI renders it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "flexgen/block_mask.h"
#include "flexgen/decoder.h"
#include "flexgen/generate_run.h"
#include "flexgen/isolation_check.h"
#include "flexgen/layout.h"
#include "flexgen/mask.h"
#include "flexgen/output_records.h"
#include "flexgen/tokenizer.h"

namespace flexgen {

// Shape, dtype and value range of one prefill input.
struct TensorSummary {
  std::string name;
  std::vector<int64_t> shape;
  std::string dtype;
  int64_t min = 0, max = 0;
};

// One row of the segment table.
struct SegmentRow {
  std::string group;   // "BOS", "context", "para 1", "sep 1", "fewshot Q1", "generated", ...
  int64_t start = 0, end = 0;
  int64_t first_position = 0, last_position = 0;  // position ids (meaningless when empty)
  std::string preview;  // decoded text, escaped, at most 80 characters
};

// Everything `flexgen debug` shows about one sample.
struct SampleTrace {
  std::string uuid, question, method;
  std::vector<std::string> answers;
  std::vector<std::string> paraphrases;     // the texts used
  std::vector<size_t> paraphrase_indexes;
  std::vector<int64_t> paraphrase_tokens;   // tokens of each paraphrase's prompt part
  std::vector<int32_t> separator_ids;       // flex only
  std::vector<std::string> separator_pieces;
  std::vector<std::string> row_previews;    // non-flex: each row's prompt (escaped, 80 chars)
  std::vector<int64_t> row_tokens;
  // Flex only: the sequence with the generated tokens, its mask and the prefill block mask.
  std::optional<SequenceLayout> layout;
  std::optional<AttentionMask> mask;
  std::optional<BlockMask> blocks;
  PositionMode positions = PositionMode::Sequential;
  std::vector<SegmentRow> segments;
  IsolationCheck isolation;
  std::vector<TensorSummary> inputs;        // per row: token ids, position ids, group ids
  std::vector<StreamResult> results;        // one per stream, with the step trace
  std::vector<OutputRecord> records;        // what `generate` writes for these results
};

// Builds the trace of a decoded sample. `block_size` is the block mask's (--block-size).
SampleTrace make_sample_trace(const PreparedSample& prepared, const std::vector<StreamResult>& results,
                              const Tokenizer& tokenizer, Method method, PositionMode positions,
                              int64_t block_size, uint64_t paraphrase_seed);

}  // namespace flexgen
