// Our own safetensors reader and writer. The reader memory-maps the file and
// validates it as the format requires (header length within the file, JSON
// well-formed, every tensor's offsets inside the data section and consistent
// with dtype x shape, no overlaps, no holes); tensors are wrapped without
// copies (at::from_blob on the mapping, which stays alive as long as any
// tensor does) when their address is aligned for the dtype.
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "flexgen/safetensors_header.h"  // SafetensorInfo, the torch-free header parser

namespace flexgen {

// A read-only view of a whole file, mapped copy-on-write (PROT_READ|PROT_WRITE,
// MAP_PRIVATE), so an accidental in-place write never reaches the file.
class MappedFile {
 public:
  explicit MappedFile(const std::filesystem::path& path);  // throws ModelError
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  uint8_t* mutable_data() const { return data_; }
  size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

class SafetensorsFile {
 public:
  // Maps and validates; throws ModelError naming the file (and tensor).
  static std::shared_ptr<SafetensorsFile> open(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return file_->path(); }
  const std::vector<SafetensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  const SafetensorInfo& info(const std::string& name) const;  // throws ModelError
  // The tensor, CPU, its file dtype. Zero-copy when the data is aligned for the
  // dtype (always for files written by the reference library); a copy otherwise.
  at::Tensor tensor(const std::string& name) const;
  // Whether `p` points into this file's mapping.
  bool maps(const void* p) const {
    const auto* b = static_cast<const uint8_t*>(p);
    return b >= file_->data() && b < file_->data() + file_->size();
  }
  // Whether tensor(name) aliases the mapping.
  bool is_zero_copy(const std::string& name) const;

 private:
  std::shared_ptr<MappedFile> file_;
  std::vector<SafetensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
  uint64_t data_start_ = 0;
};

// Writes CPU tensors (any of the supported dtypes; made contiguous) as a
// safetensors file, 8-byte aligned header. For tools and tests.
void write_safetensors(const std::filesystem::path& path,
                       const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// "BF16" -> at::kBFloat16 etc.; throws ModelError for unknown names.
at::ScalarType safetensors_dtype(const std::string& name);
std::string safetensors_dtype_name(at::ScalarType type);

}  // namespace flexgen
