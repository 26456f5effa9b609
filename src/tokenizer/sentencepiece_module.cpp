// libflexgen_spm.so: the C ABI of spm_module_api.h over libsentencepiece. This is
// the only code that includes SentencePiece (and so protobuf) headers.
#include <sentencepiece_processor.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "spm_module_api.h"

#define FLEXGEN_SPM_EXPORT extern "C" __attribute__((visibility("default")))

struct flexgen_spm {
  sentencepiece::SentencePieceProcessor sp;
};

namespace {

void set_error(char* err, size_t size, const std::string& msg) {
  if (!err || size == 0) return;
  std::strncpy(err, msg.c_str(), size - 1);
  err[size - 1] = '\0';
}

}  // namespace

FLEXGEN_SPM_EXPORT int flexgen_spm_abi_version(void) { return FLEXGEN_SPM_ABI_VERSION; }

FLEXGEN_SPM_EXPORT flexgen_spm* flexgen_spm_load(const char* path, char* err, size_t err_size) {
  auto* h = new flexgen_spm;
  const auto status = h->sp.Load(path);
  if (!status.ok()) {
    set_error(err, err_size, status.ToString());
    delete h;
    return nullptr;
  }
  return h;
}

FLEXGEN_SPM_EXPORT void flexgen_spm_free(flexgen_spm* h) { delete h; }
FLEXGEN_SPM_EXPORT void flexgen_spm_release(void* buffer) { std::free(buffer); }
FLEXGEN_SPM_EXPORT int32_t flexgen_spm_vocab_size(const flexgen_spm* h) { return h->sp.GetPieceSize(); }
FLEXGEN_SPM_EXPORT int32_t flexgen_spm_bos_id(const flexgen_spm* h) { return h->sp.bos_id(); }
FLEXGEN_SPM_EXPORT int32_t flexgen_spm_eos_id(const flexgen_spm* h) { return h->sp.eos_id(); }
FLEXGEN_SPM_EXPORT int32_t flexgen_spm_unk_id(const flexgen_spm* h) { return h->sp.unk_id(); }

FLEXGEN_SPM_EXPORT int flexgen_spm_encode(const flexgen_spm* h, const char* text, size_t len, int32_t** ids,
                                          size_t* n, char* err, size_t err_size) {
  std::vector<int> out;
  const auto status = h->sp.Encode(std::string(text, len), &out);
  if (!status.ok()) {
    set_error(err, err_size, status.ToString());
    return 1;
  }
  *n = out.size();
  *ids = static_cast<int32_t*>(std::malloc(sizeof(int32_t) * (out.empty() ? 1 : out.size())));
  for (size_t i = 0; i < out.size(); ++i) (*ids)[i] = out[i];
  return 0;
}

FLEXGEN_SPM_EXPORT int flexgen_spm_decode(const flexgen_spm* h, const int32_t* ids, size_t n, char** text,
                                          size_t* len, char* err, size_t err_size) {
  const std::vector<int> in(ids, ids + n);
  std::string out;
  const auto status = h->sp.Decode(in, &out);
  if (!status.ok()) {
    set_error(err, err_size, status.ToString());
    return 1;
  }
  *len = out.size();
  *text = static_cast<char*>(std::malloc(out.size() + 1));
  std::memcpy(*text, out.data(), out.size());
  (*text)[out.size()] = '\0';
  return 0;
}

FLEXGEN_SPM_EXPORT const char* flexgen_spm_piece(const flexgen_spm* h, int32_t id) {
  if (id < 0 || id >= h->sp.GetPieceSize()) return nullptr;
  return h->sp.IdToPiece(id).c_str();
}

FLEXGEN_SPM_EXPORT int32_t flexgen_spm_piece_to_id(const flexgen_spm* h, const char* piece, size_t len) {
  const std::string p(piece, len);
  const int id = h->sp.PieceToId(p);
  if (id < 0 || id >= h->sp.GetPieceSize() || h->sp.IdToPiece(id) != p) return -1;
  return id;
}

FLEXGEN_SPM_EXPORT int flexgen_spm_is_control(const flexgen_spm* h, int32_t id) { return h->sp.IsControl(id); }
FLEXGEN_SPM_EXPORT int flexgen_spm_is_byte(const flexgen_spm* h, int32_t id) { return h->sp.IsByte(id); }
FLEXGEN_SPM_EXPORT int flexgen_spm_is_unknown(const flexgen_spm* h, int32_t id) { return h->sp.IsUnknown(id); }

FLEXGEN_SPM_EXPORT int flexgen_spm_add_dummy_prefix(const flexgen_spm* h) {
  // Encoding "a" gives "▁a" (or its pieces) when the normalizer adds a dummy prefix.
  std::vector<std::string> pieces;
  if (!h->sp.Encode("a", &pieces).ok() || pieces.empty()) return 0;
  return pieces[0].rfind("\xE2\x96\x81", 0) == 0 ? 1 : 0;
}
