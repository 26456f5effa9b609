// Merging what the N shards of one run wrote (result files and summaries) into what one process
// running every sample writes: the same records in dataset order, and one summary.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "flexgen/output_records.h"
#include "flexgen/scoring.h"

namespace flexgen {

// The files given are not the shards of one run (a shard missing or given twice, records of
// different methods, a sample twice, ...); the message names the file.
struct ShardMergeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct MergedShards {
  int64_t shards = 0;                  // N: one per part
  std::optional<OutputFormat> format;  // the parts' format; unset when every part is empty
  std::vector<OutputRecord> records;   // every record in dataset order (sample_index, then file order)
  ScoreSummary score;                  // over every record
  std::string summary;                 // the merged summary (JSON text ending in "\n"); "" without summaries
  std::vector<std::string> notes;      // summary fields left out because the ranks' values differ
};

// Reads the N `parts` (result files of `generate --shard I/N`, JSONL or CSV, in any order: a
// part's shard is the sample_index mod N of its records) and, when given, the N `summaries`
// (each names its shard "I/N"). Checks that they are the N shards of one run: one format, one
// method and paraphrase count, each shard once, each sample (per_prompt: each row) once, no
// sample missing between the first and the last (unless a summary counts it as skipped bad), and
// each summary's sample count equal to its part's. The merged summary sums samples, rows and
// token counts, recomputes accuracy over every record, takes the longest wall time and the
// largest peak memory, divides samples by that wall time, and says `ranks: N`.
// Throws ShardMergeError, or OutputFileError for a file that cannot be read.
MergedShards merge_shards(const std::vector<std::string>& parts, const std::vector<std::string>& summaries = {});

// Writes `text` to `path` through a temporary file beside it and a rename, so that `path` is
// either the old file or the whole new one. Throws OutputFileError naming the file.
void write_file_atomically(const std::string& path, const std::string& text);

}  // namespace flexgen
