#include "flexgen/safetensors.h"

#include <ATen/ATen.h>
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>

#include "flexgen/model_config.h"

namespace flexgen {
namespace {

using json = nlohmann::json;

struct DtypeEntry {
  const char* name;
  at::ScalarType type;
};
const DtypeEntry kDtypes[] = {
    {"F32", at::kFloat},  {"F16", at::kHalf},   {"BF16", at::kBFloat16}, {"F64", at::kDouble}, {"I64", at::kLong},
    {"I32", at::kInt},    {"I16", at::kShort},  {"I8", at::kChar},       {"U8", at::kByte},    {"BOOL", at::kBool},
};

std::string tensor_msg(const std::filesystem::path& p, const std::string& name, const std::string& what) {
  return p.string() + ": tensor '" + name + "': " + what;
}

}  // namespace

at::ScalarType safetensors_dtype(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return d.type;
  throw ModelError("unsupported safetensors dtype \"" + name + "\"");
}

std::string safetensors_dtype_name(at::ScalarType type) {
  for (const auto& d : kDtypes)
    if (type == d.type) return d.name;
  throw ModelError(std::string("no safetensors dtype for ") + c10::toString(type));
}

// ---------------------------------------------------------------- MappedFile

MappedFile::MappedFile(const std::filesystem::path& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw ModelError(path.string() + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    throw ModelError(path.string() + ": cannot stat: " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw ModelError(path.string() + ": not a regular file");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ == 0) {
    ::close(fd);
    throw ModelError(path.string() + ": empty file");
  }
  void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  int err = errno;
  ::close(fd);
  if (p == MAP_FAILED) throw ModelError(path.string() + ": mmap failed: " + std::strerror(err));
  data_ = static_cast<uint8_t*>(p);
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(data_, size_);
}

// ----------------------------------------------------------- SafetensorsFile

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::filesystem::path& path) {
  auto out = std::shared_ptr<SafetensorsFile>(new SafetensorsFile());
  out->file_ = std::make_shared<MappedFile>(path);
  const MappedFile& f = *out->file_;
  SafetensorsHeader header = parse_safetensors_header(f.data(), f.size(), f.size(), path.string());
  out->tensors_ = std::move(header.tensors);
  out->metadata_ = std::move(header.metadata);
  out->data_start_ = header.data_start;
  for (size_t i = 0; i < out->tensors_.size(); ++i) out->index_[out->tensors_[i].name] = i;
  return out;
}

const SafetensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) throw ModelError(tensor_msg(path(), name, "not in this file"));
  return tensors_[it->second];
}

bool SafetensorsFile::is_zero_copy(const std::string& name) const {
  const SafetensorInfo& t = info(name);
  const auto addr = reinterpret_cast<uintptr_t>(file_->data() + data_start_ + t.begin);
  return addr % safetensors_dtype_size(t.dtype) == 0;
}

at::Tensor SafetensorsFile::tensor(const std::string& name) const {
  const SafetensorInfo& t = info(name);
  const at::ScalarType type = safetensors_dtype(t.dtype);
  uint8_t* ptr = file_->mutable_data() + data_start_ + t.begin;
  const auto opts = at::TensorOptions().dtype(type).device(at::kCPU);
  if (is_zero_copy(name)) {
    std::shared_ptr<MappedFile> keep = file_;
    return at::from_blob(ptr, t.shape, [keep](void*) {}, opts);
  }
  at::Tensor out = at::empty(t.shape, opts);
  std::memcpy(out.data_ptr(), ptr, t.end - t.begin);
  return out;
}

// -------------------------------------------------------------------- writer

void write_safetensors(const std::filesystem::path& path,
                       const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, t0] : tensors) {
    at::Tensor t = t0.contiguous().cpu();
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    header[name] = {{"dtype", safetensors_dtype_name(t.scalar_type())},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    data.push_back(t);
  }
  std::string h = header.dump();
  while (h.size() % 8 != 0) h.push_back(' ');
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw ModelError(path.string() + ": cannot write");
  const uint64_t n = h.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out.write(h.data(), static_cast<std::streamsize>(h.size()));
  for (const auto& t : data)
    out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.numel() * t.element_size()));
  if (!out) throw ModelError(path.string() + ": write failed");
}

}  // namespace flexgen
