// The byte <-> code point mapping of GPT-2's bytes_to_unicode().
#include "byte_level.h"

#include <array>

#include "unicode.h"
#include "flexgen/utf8.h"

namespace flexgen::tokenizer_detail {

namespace {

struct ByteTables {
  std::array<uint32_t, 256> to_cp{};
  std::array<int16_t, 512> from_cp{};  // every mapped code point is < 512

  ByteTables() {
    from_cp.fill(-1);
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_cp[b] = printable ? static_cast<uint32_t>(b) : next++;
      from_cp[to_cp[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteTables& tables() {
  static const ByteTables t;
  return t;
}

}  // namespace

uint32_t byte_to_codepoint(unsigned char b) { return tables().to_cp[b]; }

std::optional<std::string> byte_level_decode(std::string_view piece) {
  if (utf8::find_invalid(piece) != std::string_view::npos) return std::nullopt;
  const auto& t = tables();
  std::string out;
  out.reserve(piece.size());
  const auto* p = reinterpret_cast<const unsigned char*>(piece.data());
  size_t i = 0;
  while (i < piece.size()) {
    size_t len;
    const uint32_t cp = utf8::decode_valid(p + i, len);
    if (cp >= t.from_cp.size() || t.from_cp[cp] < 0) return std::nullopt;
    out += static_cast<char>(t.from_cp[cp]);
    i += len;
  }
  return out;
}

std::string byte_level_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) utf8::append(out, tables().to_cp[b]);
  return out;
}

}  // namespace flexgen::tokenizer_detail
