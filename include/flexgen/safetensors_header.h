// The torch-free part of the safetensors reader: the file's JSON header and the
// model.safetensors.index.json of sharded checkpoints, parsed and validated (safetensors.h maps
// the file and wraps the tensors).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "flexgen/model_config.h"  // ModelError

namespace flexgen {

struct SafetensorInfo {
  std::string name;
  std::string dtype;  // "F32", "BF16", ... as in the file
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // offsets within the data section
  uint64_t end = 0;
};

struct SafetensorsHeader {
  std::vector<SafetensorInfo> tensors;  // in header order
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // where the data section starts in the file (8 + header length)
};

// Parses the header of a safetensors file of `file_size` bytes whose first `available` bytes are
// at `data` (the whole file when it is mapped) and validates it as the format requires: header
// length within the file, JSON well-formed, every tensor's offsets inside the data section and
// consistent with dtype x shape, no overlaps, no holes. Throws ModelError naming `name` (and the
// tensor).
SafetensorsHeader parse_safetensors_header(const uint8_t* data, size_t available, uint64_t file_size,
                                           const std::string& name);

// Bytes per element of a safetensors dtype name ("BF16" -> 2); 0 when unknown.
size_t safetensors_dtype_size(const std::string& name);

// The weight_map of a model.safetensors.index.json: shard file name -> the tensors it holds, in
// file-name order. Throws ModelError naming `source` on malformed JSON, a missing weight_map, an
// entry that is not a file name or names a file outside the model directory.
std::map<std::string, std::vector<std::string>> parse_safetensors_index(const std::string& json_text,
                                                                        const std::string& source);

}  // namespace flexgen
