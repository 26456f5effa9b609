// model.safetensors.index.json of sharded checkpoints.
//   Any input gives the shard map or a ModelError naming the file (never another exception);
//   no shard name leaves the model directory; every tensor is listed under exactly one shard.
#include <set>
#include <string>

#include "flexgen/safetensors_header.h"
#include "fuzz_target.h"

FLEXGEN_FUZZ_TARGET(safetensors_index) {
  using namespace flexgen;
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::string source = "fuzz/model.safetensors.index.json";
  std::map<std::string, std::vector<std::string>> shards;
  if (!EXPECT_ONLY(ModelError, source, { shards = parse_safetensors_index(text, source); })) return 0;
  std::set<std::string> seen;
  for (const auto& [file, names] : shards) {
    FUZZ_CHECK(file.find('/') == std::string::npos && file != "..", "shard '" + file + "' is outside the directory");
    FUZZ_CHECK(!names.empty(), "shard '" + file + "' lists no tensor");
    for (const auto& n : names) FUZZ_CHECK(seen.insert(n).second, "tensor '" + n + "' listed twice");
  }
  return 0;
}
