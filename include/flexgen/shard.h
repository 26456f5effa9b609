// Splitting a dataset over the jobs of an array: --shard I/N, RANK/WORLD_SIZE, SLURM, --max-samples.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "flexgen/setting_error.h"

namespace flexgen {

// Shard `index` of `count` (0 <= index < count) takes samples i with i mod count == index.
struct Shard {
  int64_t index = 0;
  int64_t count = 1;
  bool takes(size_t sample) const { return static_cast<int64_t>(sample % static_cast<size_t>(count)) == index; }
};

// Parses "I/N" (e.g. "3/8"); throws std::invalid_argument saying what is wrong.
Shard parse_shard(const std::string& text);

// Shard from RANK/WORLD_SIZE, else SLURM_PROCID/SLURM_NTASKS, else 0/1. A half-set or
// malformed pair throws std::invalid_argument naming the variable. `getenv` is for tests.
Shard shard_from_environment(const std::function<const char*(const char*)>& getenv = nullptr);

// "I/N" as parse_shard reads it.
std::string to_string(const Shard& shard);

// A per-shard file name: each "{rank}" becomes the shard index, each "{world}" the shard
// count ("out.{rank}.jsonl" -> "out.1.jsonl" for shard 1/2); "-" (stdout) and "" stay.
std::string shard_path(const std::string& pattern, const Shard& shard);

// Throws InvalidSetting(setting, pattern, ...) when the shards of a run (count > 1) would all
// write the one file `pattern`: a file (not "-" or "") whose name has no "{rank}".
void check_shard_path(Setting setting, const std::string& pattern, const Shard& shard);

// Indices (ascending) of the samples this shard runs, out of `num_samples`: the first
// `max_samples` of the dataset (all when unset) are split, so the shards of one job array
// together cover exactly those samples.
std::vector<size_t> select_samples(size_t num_samples, const Shard& shard,
                                   std::optional<int64_t> max_samples = std::nullopt);

}  // namespace flexgen
