// Client side of the flexgen_spm module: finds it, dlopen()s it with
// RTLD_LOCAL | RTLD_DEEPBIND (its protobuf must stay apart from libtorch's),
// and implements the Tokenizer interface over its C ABI.
#include "spm_tokenizer.h"

#include <dlfcn.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <vector>
#include <mutex>
#include <unordered_map>

#include "spm_module_api.h"
#include "unicode.h"
#include "flexgen/utf8.h"

#ifndef FLEXGEN_SPM_BUILD_PATH
#define FLEXGEN_SPM_BUILD_PATH ""
#endif

namespace flexgen::tokenizer_detail {

namespace fs = std::filesystem;

namespace {

constexpr const char* kModuleName = "libflexgen_spm.so";

// The module's functions, resolved once per process.
struct SpmApi {
  decltype(&flexgen_spm_abi_version) abi_version;
  decltype(&flexgen_spm_load) load;
  decltype(&flexgen_spm_free) free_handle;
  decltype(&flexgen_spm_release) release;
  decltype(&flexgen_spm_vocab_size) vocab_size;
  decltype(&flexgen_spm_bos_id) bos_id;
  decltype(&flexgen_spm_eos_id) eos_id;
  decltype(&flexgen_spm_unk_id) unk_id;
  decltype(&flexgen_spm_encode) encode;
  decltype(&flexgen_spm_decode) decode;
  decltype(&flexgen_spm_piece) piece;
  decltype(&flexgen_spm_piece_to_id) piece_to_id;
  decltype(&flexgen_spm_is_control) is_control;
  decltype(&flexgen_spm_is_byte) is_byte;
  decltype(&flexgen_spm_is_unknown) is_unknown;
  decltype(&flexgen_spm_add_dummy_prefix) add_dummy_prefix;
};

template <class F>
void resolve(void* lib, const char* name, F& fn, const std::string& where) {
  fn = reinterpret_cast<F>(dlsym(lib, name));
  if (!fn) throw TokenizerError(where + ": the SentencePiece module lacks " + name);
}

const SpmApi& api() {
  static std::once_flag once;
  static SpmApi a;
  static std::string error;
  std::call_once(once, [] {
    std::string tried;
    void* lib = nullptr;
    std::string where;
    for (const std::string& c : spm_module_candidates()) {
      if (!fs::exists(c)) {
        tried += "\n  " + c + " (absent)";
        continue;
      }
#ifdef FLEXGEN_SPM_NO_DEEPBIND
      lib = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);  // sanitizer builds (ASan refuses RTLD_DEEPBIND)
#else
      lib = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
#endif
      if (lib) {
        where = c;
        spdlog::debug("SentencePiece module {}", c);
        break;
      }
      tried += "\n  " + c + " (" + dlerror() + ")";
    }
    if (!lib) {
      error = std::string("cannot load the SentencePiece module ") + kModuleName +
              " (build the flexgen_spm target, or set FLEXGEN_SPM_MODULE); tried:" + tried;
      return;
    }
    try {
      resolve(lib, "flexgen_spm_abi_version", a.abi_version, where);
      if (a.abi_version() != FLEXGEN_SPM_ABI_VERSION) throw TokenizerError(where + ": wrong module ABI version");
      resolve(lib, "flexgen_spm_load", a.load, where);
      resolve(lib, "flexgen_spm_free", a.free_handle, where);
      resolve(lib, "flexgen_spm_release", a.release, where);
      resolve(lib, "flexgen_spm_vocab_size", a.vocab_size, where);
      resolve(lib, "flexgen_spm_bos_id", a.bos_id, where);
      resolve(lib, "flexgen_spm_eos_id", a.eos_id, where);
      resolve(lib, "flexgen_spm_unk_id", a.unk_id, where);
      resolve(lib, "flexgen_spm_encode", a.encode, where);
      resolve(lib, "flexgen_spm_decode", a.decode, where);
      resolve(lib, "flexgen_spm_piece", a.piece, where);
      resolve(lib, "flexgen_spm_piece_to_id", a.piece_to_id, where);
      resolve(lib, "flexgen_spm_is_control", a.is_control, where);
      resolve(lib, "flexgen_spm_is_byte", a.is_byte, where);
      resolve(lib, "flexgen_spm_is_unknown", a.is_unknown, where);
      resolve(lib, "flexgen_spm_add_dummy_prefix", a.add_dummy_prefix, where);
    } catch (const TokenizerError& e) {
      error = e.what();
    }
  });
  if (!error.empty()) throw TokenizerError(error);
  return a;
}

// SentencePiece's status text in words: "Internal: ./src/sentencepiece_processor.cc(1101)
// [model_proto->ParseFromArray(...)] " names the library's source, not the problem.
std::string spm_problem(const std::string& status) {
  if (status.find("ParseFromArray") != std::string::npos)
    return "the file does not parse as a SentencePiece model (protobuf)";
  std::string m = status;
  const size_t cc = m.find(".cc(");
  if (cc != std::string::npos) {  // drop "<code>: <path>.cc(<line>) [<expression>] "
    const size_t close = m.find(") ", cc);
    size_t from = m.rfind(' ', cc);
    from = from == std::string::npos ? 0 : from + 1;
    if (close != std::string::npos) {
      size_t to = close + 2;
      if (to < m.size() && m[to] == '[') {
        const size_t end = m.find("] ", to);
        to = end == std::string::npos ? m.size() : end + 2;
      }
      m.erase(from, to - from);
    }
  }
  while (!m.empty() && (m.back() == ' ' || m.back() == ':')) m.pop_back();
  return m.empty() ? "the file is not a SentencePiece model" : m;
}

// Byte value of a "<0xAB>" piece, or -1.
int byte_piece_value(const char* p) {
  if (std::strlen(p) != 6 || std::strncmp(p, "<0x", 3) != 0 || p[5] != '>') return -1;
  char* end = nullptr;
  const long v = std::strtol(p + 3, &end, 16);
  return end == p + 5 ? static_cast<int>(v) : -1;
}

class SpmTokenizer final : public Tokenizer {
 public:
  SpmTokenizer(std::string path, flexgen_spm* h) : path_(std::move(path)), h_(h), a_(api()) {
    vocab_size_ = a_.vocab_size(h_);
    const int32_t bos = a_.bos_id(h_), eos = a_.eos_id(h_);
    if (bos >= 0) bos_ = bos;
    if (eos >= 0) eos_ = eos;
    dummy_prefix_ = a_.add_dummy_prefix(h_) != 0;
  }
  ~SpmTokenizer() override { a_.free_handle(h_); }

  TokenizerKind kind() const override { return TokenizerKind::SentencePiece; }
  const std::string& source() const override { return path_; }

  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& options) const override {
    const size_t bad = utf8::find_invalid(text);
    if (bad != std::string_view::npos)
      throw std::invalid_argument("text is not valid UTF-8 (byte offset " + std::to_string(bad) + ")");
    int32_t* ids = nullptr;
    size_t n = 0;
    char err[512];
    if (a_.encode(h_, text.data(), text.size(), &ids, &n, err, sizeof err) != 0)
      throw std::runtime_error(path_ + ": SentencePiece encode failed: " + spm_problem(err));
    std::vector<int32_t> out;
    out.reserve(n + 1);
    if (options.add_bos && bos_) out.push_back(*bos_);
    out.insert(out.end(), ids, ids + n);
    a_.release(ids);
    return out;
  }

  // SentencePiece's own decoding of the ordinary tokens. Control tokens (<s>, </s>)
  // are dropped with skip_special_tokens; otherwise they are written as their
  // piece text, and the text is assembled token by token as the stream decoder does.
  std::string decode(const std::vector<int32_t>& ids, const DecodeOptions& options) const override {
    std::vector<int32_t> keep;
    keep.reserve(ids.size());
    bool has_control = false;
    for (int32_t id : ids) {
      check(id);
      if (is_special(id)) {
        if (options.skip_special_tokens) continue;
        has_control = true;
      }
      keep.push_back(id);
    }
    if (has_control) {
      std::string bytes;
      bool first = true;
      for (int32_t id : keep) {
        bytes += token_bytes(id, first);
        if (!is_special(id)) first = false;
      }
      return utf8::lossy(bytes);
    }
    char* text = nullptr;
    size_t len = 0;
    char err[512];
    if (a_.decode(h_, keep.data(), keep.size(), &text, &len, err, sizeof err) != 0)
      throw std::runtime_error(path_ + ": SentencePiece decode failed: " + spm_problem(err));
    std::string out(text, len);
    a_.release(text);
    return utf8::lossy(out);
  }

  // Piece text with "▁" as a space, byte pieces as their byte, control pieces as their name.
  std::string token_bytes(int32_t id, bool first) const override {
    check(id);
    if (a_.is_control(h_, id)) return a_.piece(h_, id);
    const char* p = a_.piece(h_, id);
    if (a_.is_byte(h_, id)) {
      const int v = byte_piece_value(p);
      if (v >= 0) return std::string(1, static_cast<char>(v));
    }
    if (a_.is_unknown(h_, id)) return " \xE2\x81\x87 ";  // what SentencePiece prints for <unk>
    std::string out;
    for (const char* c = p; *c;) {
      if (std::strncmp(c, "\xE2\x96\x81", 3) == 0) {
        out += ' ';
        c += 3;
      } else {
        out += *c++;
      }
    }
    if (first && dummy_prefix_ && !out.empty() && out[0] == ' ') out.erase(0, 1);
    return out;
  }

  std::string piece(int32_t id) const override {
    check(id);
    return a_.piece(h_, id);
  }
  std::optional<int32_t> token_id(std::string_view piece) const override {
    const int32_t id = a_.piece_to_id(h_, piece.data(), piece.size());
    if (id < 0) return std::nullopt;
    return id;
  }
  bool is_special(int32_t id) const override { return id >= 0 && id < vocab_size_ && a_.is_control(h_, id); }
  int32_t vocab_size() const override { return vocab_size_; }
  std::optional<int32_t> bos_id() const override { return bos_; }
  std::optional<int32_t> eos_id() const override { return eos_; }
  const std::string& chat_template() const override { return chat_template_; }

 private:
  void check(int32_t id) const {
    if (id < 0 || id >= vocab_size_) throw std::out_of_range("token id " + std::to_string(id) + " is out of range");
  }

  std::string path_;
  flexgen_spm* h_;
  const SpmApi& a_;
  int32_t vocab_size_ = 0;
  std::optional<int32_t> bos_, eos_;
  bool dummy_prefix_ = true;
  std::string chat_template_;
};

}  // namespace

std::vector<std::string> spm_module_candidates() {
  std::vector<std::string> out;
  if (const char* env = std::getenv("FLEXGEN_SPM_MODULE"); env && *env) return {env};
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    out.push_back((exe.parent_path() / kModuleName).string());
    out.push_back((exe.parent_path().parent_path() / "lib" / "flexgen" / kModuleName).string());  // installed
    out.push_back((exe.parent_path().parent_path() / "lib" / kModuleName).string());
  }
  if (std::string(FLEXGEN_SPM_BUILD_PATH).size() > 0) out.emplace_back(FLEXGEN_SPM_BUILD_PATH);
  return out;
}

std::unique_ptr<Tokenizer> load_sentencepiece(const std::string& path) {
  if (!fs::is_regular_file(path)) throw TokenizerError(path + ": no such file");
  const SpmApi& a = api();
  char err[512] = {0};
  flexgen_spm* h = a.load(path.c_str(), err, sizeof err);
  if (!h) throw TokenizerError(path + ": not a usable SentencePiece model: " + spm_problem(err));
  return std::make_unique<SpmTokenizer>(path, h);
}

}  // namespace flexgen::tokenizer_detail
