// The safetensors header and index parsers (torch-free; see safetensors_header.h).
#include "flexgen/safetensors_header.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <limits>

#include "json_error_text.h"

namespace flexgen {
namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = 100ull * 1024 * 1024;  // the format's own bound

std::string tensor_msg(const std::string& file, const std::string& name, const std::string& what) {
  return file + ": tensor '" + name + "': " + what;
}

}  // namespace

size_t safetensors_dtype_size(const std::string& name) {
  static const std::pair<const char*, size_t> kSizes[] = {
      {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"F64", 8}, {"I64", 8},
      {"I32", 4}, {"I16", 2}, {"I8", 1},   {"U8", 1},  {"BOOL", 1},
  };
  for (const auto& [n, size] : kSizes)
    if (name == n) return size;
  return 0;
}

SafetensorsHeader parse_safetensors_header(const uint8_t* data, size_t available, uint64_t file_size,
                                           const std::string& fname) {
  SafetensorsHeader out;
  if (file_size < 8)
    throw ModelError(fname + ": truncated: " + std::to_string(file_size) +
                     " bytes, too short for a safetensors header length");
  if (available < 8) throw ModelError(fname + ": only " + std::to_string(available) + " bytes read");
  uint64_t n = 0;
  std::memcpy(&n, data, 8);  // little-endian u64 (x86-64 / aarch64)
  if (n > file_size - 8)
    throw ModelError(fname + ": bad header length " + std::to_string(n) + ": the file has only " +
                     std::to_string(file_size - 8) + " bytes after the length (truncated or not safetensors)");
  if (n > kMaxHeaderBytes)
    throw ModelError(fname + ": bad header length " + std::to_string(n) + " (over 100 MB)");
  if (n < 2) throw ModelError(fname + ": bad header length " + std::to_string(n));
  if (n > available - 8)
    throw ModelError(fname + ": only " + std::to_string(available - 8) + " bytes of the " + std::to_string(n) +
                     "-byte header read");
  const char* hp = reinterpret_cast<const char*>(data + 8);
  if (hp[0] != '{')
    throw ModelError(fname + ": header does not start with '{' (not a safetensors file)");
  json header;
  try {
    header = json::parse(hp, hp + n);
  } catch (const json::exception& e) {
    throw ModelError(fname + ": malformed JSON header: " + json_error_text(e));
  }
  if (!header.is_object()) throw ModelError(fname + ": header is not a JSON object");
  out.data_start = 8 + n;
  const uint64_t data_size = file_size - out.data_start;

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) throw ModelError(fname + ": __metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          throw ModelError(fname + ": __metadata__ value of '" + m.key() + "' is not a string");
        out.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
      throw ModelError(tensor_msg(fname, name, "entry needs dtype, shape and data_offsets"));
    SafetensorInfo info;
    info.name = name;
    if (!v["dtype"].is_string()) throw ModelError(tensor_msg(fname, name, "dtype is not a string"));
    info.dtype = v["dtype"].get<std::string>();
    const size_t esize = safetensors_dtype_size(info.dtype);
    if (esize == 0) throw ModelError(tensor_msg(fname, name, "unsupported dtype \"" + info.dtype + "\""));
    if (!v["shape"].is_array()) throw ModelError(tensor_msg(fname, name, "shape is not a list"));
    uint64_t numel = 1;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_unsigned())
        throw ModelError(tensor_msg(fname, name, "shape holds " + d.dump() + ", not a non-negative integer"));
      const uint64_t dim = d.get<uint64_t>();
      if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          (dim != 0 && numel > std::numeric_limits<uint64_t>::max() / 16 / dim))
        throw ModelError(tensor_msg(fname, name, "shape overflows"));
      numel *= dim;
      info.shape.push_back(static_cast<int64_t>(dim));
    }
    const json& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      throw ModelError(tensor_msg(fname, name, "data_offsets must be two non-negative integers"));
    info.begin = off[0].get<uint64_t>();
    info.end = off[1].get<uint64_t>();
    if (info.begin > info.end)
      throw ModelError(tensor_msg(fname, name, "data_offsets [" + std::to_string(info.begin) + ", " +
                                                   std::to_string(info.end) + "] are reversed"));
    if (info.end > data_size)
      throw ModelError(tensor_msg(fname, name, "data_offsets [" + std::to_string(info.begin) + ", " +
                                                   std::to_string(info.end) +
                                                   "] lie outside the data section (" +
                                                   std::to_string(data_size) + " bytes; file truncated?)"));
    if (info.end - info.begin != numel * esize)
      throw ModelError(tensor_msg(fname, name, "data_offsets span " + std::to_string(info.end - info.begin) +
                                                   " bytes but " + info.dtype + " x shape needs " +
                                                   std::to_string(numel * esize)));
    out.tensors.push_back(std::move(info));
  }
  // No overlaps, no holes: sorted by offset, the tensors tile the data section.
  std::vector<size_t> order(out.tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const auto& x = out.tensors[a];
    const auto& y = out.tensors[b];
    return x.begin != y.begin ? x.begin < y.begin : x.end < y.end;
  });
  uint64_t pos = 0;
  for (size_t i : order) {
    const auto& t = out.tensors[i];
    if (t.begin < pos)
      throw ModelError(tensor_msg(fname, t.name, "data_offsets [" + std::to_string(t.begin) + ", " +
                                                     std::to_string(t.end) + "] overlap another tensor"));
    if (t.begin > pos)
      throw ModelError(tensor_msg(fname, t.name, "hole in the data section before offset " +
                                                     std::to_string(t.begin)));
    pos = t.end;
  }
  if (pos != data_size)
    throw ModelError(fname + ": data section is " + std::to_string(data_size) + " bytes but the tensors cover " +
                     std::to_string(pos) + " (trailing bytes)");
  return out;
}

std::map<std::string, std::vector<std::string>> parse_safetensors_index(const std::string& text,
                                                                        const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw ModelError(source + ": malformed JSON: " + json_error_text(e));
  }
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    throw ModelError(source + ": no \"weight_map\" object");
  std::map<std::string, std::vector<std::string>> by_file;
  for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
    if (!it.value().is_string()) throw ModelError(source + ": weight_map entry '" + it.key() + "' is not a file name");
    const std::string file = it.value().get<std::string>();
    if (file.find('/') != std::string::npos || file == "..")
      throw ModelError(source + ": weight_map entry '" + it.key() + "' names a file outside the directory");
    by_file[file].push_back(it.key());
  }
  return by_file;
}

}  // namespace flexgen
