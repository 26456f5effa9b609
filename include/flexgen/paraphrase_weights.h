// Per-paraphrase weights of the weighted_* methods, read from a JSON Lines file.
#pragma once

#include <cstddef>
#include <map>
#include <string>

namespace flexgen {

// Weights keyed by uuid, then by paraphrase index (into the record's candidates).
using WeightTable = std::map<std::string, std::map<size_t, double>>;

// Reads JSONL lines {"uuid", "weights": [...]} (indexed like the record's candidates) or
// {"uuid", "index", "weight"}; blank lines are skipped. Weights are numbers >= 0.
// Throws std::runtime_error naming file:line.
WeightTable read_weights(const std::string& path);

}  // namespace flexgen
