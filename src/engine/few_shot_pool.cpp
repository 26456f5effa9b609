// The few-shot pool (see few_shot_pool.h).
#include "flexgen/few_shot_pool.h"

namespace flexgen {

std::vector<Sample> read_few_shot_pool(const DatasetFiles& files, const std::string& pool_file) {
  const std::string path = pool_file.empty() ? files.train : pool_file;
  if (path.empty()) return {};
  DatasetReadOptions options;
  options.unique_uuids = false;  // a pool may repeat questions; only the test file is keyed by uuid
  return read_dataset(path, options).samples;
}

}  // namespace flexgen
