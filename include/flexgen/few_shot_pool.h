// The few-shot pool of a run: the records few-shot examples are drawn from.
#pragma once

#include <string>
#include <vector>

#include "flexgen/dataset.h"

namespace flexgen {

// Reads the pool: `pool_file` when given, else the dataset's own train file (none: empty).
// Questions may repeat in a pool (uuids are not checked). Throws DatasetError.
std::vector<Sample> read_few_shot_pool(const DatasetFiles& files, const std::string& pool_file = "");

}  // namespace flexgen
