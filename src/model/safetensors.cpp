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
#include "json_error_text.h"

namespace flexgen {
namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = 100ull * 1024 * 1024;  // the format's own bound

struct DtypeEntry {
  const char* name;
  at::ScalarType type;
  size_t size;
};
const DtypeEntry kDtypes[] = {
    {"F32", at::kFloat, 4},  {"F16", at::kHalf, 2},   {"BF16", at::kBFloat16, 2},
    {"F64", at::kDouble, 8}, {"I64", at::kLong, 8},   {"I32", at::kInt, 4},
    {"I16", at::kShort, 2},  {"I8", at::kChar, 1},    {"U8", at::kByte, 1},
    {"BOOL", at::kBool, 1},
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

size_t safetensors_dtype_size(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return d.size;
  return 0;
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
  const std::string fname = path.string();
  if (f.size() < 8)
    throw ModelError(fname + ": truncated: " + std::to_string(f.size()) +
                     " bytes, too short for a safetensors header length");
  uint64_t n = 0;
  std::memcpy(&n, f.data(), 8);  // little-endian u64 (x86-64 / aarch64)
  if (n > f.size() - 8)
    throw ModelError(fname + ": bad header length " + std::to_string(n) + ": the file has only " +
                     std::to_string(f.size() - 8) + " bytes after the length (truncated or not safetensors)");
  if (n > kMaxHeaderBytes)
    throw ModelError(fname + ": bad header length " + std::to_string(n) + " (over 100 MB)");
  if (n < 2) throw ModelError(fname + ": bad header length " + std::to_string(n));
  const char* hp = reinterpret_cast<const char*>(f.data() + 8);
  if (hp[0] != '{')
    throw ModelError(fname + ": header does not start with '{' (not a safetensors file)");
  json header;
  try {
    header = json::parse(hp, hp + n);
  } catch (const json::exception& e) {
    throw ModelError(fname + ": malformed JSON header: " + json_error_text(e));
  }
  if (!header.is_object()) throw ModelError(fname + ": header is not a JSON object");
  out->data_start_ = 8 + n;
  const uint64_t data_size = f.size() - out->data_start_;

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) throw ModelError(fname + ": __metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          throw ModelError(fname + ": __metadata__ value of '" + m.key() + "' is not a string");
        out->metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
      throw ModelError(tensor_msg(path, name, "entry needs dtype, shape and data_offsets"));
    SafetensorInfo info;
    info.name = name;
    if (!v["dtype"].is_string()) throw ModelError(tensor_msg(path, name, "dtype is not a string"));
    info.dtype = v["dtype"].get<std::string>();
    const size_t esize = safetensors_dtype_size(info.dtype);
    if (esize == 0) throw ModelError(tensor_msg(path, name, "unsupported dtype \"" + info.dtype + "\""));
    if (!v["shape"].is_array()) throw ModelError(tensor_msg(path, name, "shape is not a list"));
    uint64_t numel = 1;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_unsigned())
        throw ModelError(tensor_msg(path, name, "shape holds " + d.dump() + ", not a non-negative integer"));
      const uint64_t dim = d.get<uint64_t>();
      if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          (dim != 0 && numel > std::numeric_limits<uint64_t>::max() / 16 / dim))
        throw ModelError(tensor_msg(path, name, "shape overflows"));
      numel *= dim;
      info.shape.push_back(static_cast<int64_t>(dim));
    }
    const json& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      throw ModelError(tensor_msg(path, name, "data_offsets must be two non-negative integers"));
    info.begin = off[0].get<uint64_t>();
    info.end = off[1].get<uint64_t>();
    if (info.begin > info.end)
      throw ModelError(tensor_msg(path, name, "data_offsets [" + std::to_string(info.begin) + ", " +
                                                  std::to_string(info.end) + "] are reversed"));
    if (info.end > data_size)
      throw ModelError(tensor_msg(path, name, "data_offsets [" + std::to_string(info.begin) + ", " +
                                                  std::to_string(info.end) +
                                                  "] lie outside the data section (" +
                                                  std::to_string(data_size) + " bytes; file truncated?)"));
    if (info.end - info.begin != numel * esize)
      throw ModelError(tensor_msg(path, name, "data_offsets span " + std::to_string(info.end - info.begin) +
                                                  " bytes but " + info.dtype + " x shape needs " +
                                                  std::to_string(numel * esize)));
    out->tensors_.push_back(std::move(info));
  }
  // No overlaps, no holes: sorted by offset, the tensors tile the data section.
  std::vector<size_t> order(out->tensors_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const auto& x = out->tensors_[a];
    const auto& y = out->tensors_[b];
    return x.begin != y.begin ? x.begin < y.begin : x.end < y.end;
  });
  uint64_t pos = 0;
  for (size_t i : order) {
    const auto& t = out->tensors_[i];
    if (t.begin < pos)
      throw ModelError(tensor_msg(path, t.name, "data_offsets [" + std::to_string(t.begin) + ", " +
                                                    std::to_string(t.end) + "] overlap another tensor"));
    if (t.begin > pos)
      throw ModelError(tensor_msg(path, t.name, "hole in the data section before offset " +
                                                    std::to_string(t.begin)));
    pos = t.end;
  }
  if (pos != data_size)
    throw ModelError(fname + ": data section is " + std::to_string(data_size) + " bytes but the tensors cover " +
                     std::to_string(pos) + " (trailing bytes)");
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
