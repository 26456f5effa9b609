// Character class lookup (a two-stage table built once from the generated ranges) and UTF-8 helpers.
#include "unicode.h"

#include <map>
#include <vector>

#include "unicode_tables.h"

namespace flexgen::tokenizer_detail {

namespace {

constexpr uint32_t kBlockBits = 7;
constexpr uint32_t kBlockSize = 1u << kBlockBits;
constexpr uint32_t kNumBlocks = 0x110000u >> kBlockBits;

// stage1[cp >> 7] selects a 128-entry block of stage2; identical blocks are shared.
struct ClassTable {
  std::vector<uint16_t> stage1;
  std::vector<uint8_t> stage2;

  ClassTable() {
    std::vector<uint8_t> full(0x110000, 0);
    auto mark = [&](const CodepointRange* r, size_t n, uint8_t bit) {
      for (size_t i = 0; i < n; ++i)
        for (uint32_t cp = r[i].first; cp <= r[i].last; ++cp) full[cp] |= bit;
    };
    mark(kLetterRanges, kLetterRanges_size, kClassLetter);
    mark(kNumberRanges, kNumberRanges_size, kClassNumber);
    mark(kWhiteSpaceRanges, kWhiteSpaceRanges_size, kClassSpace);
    full['\r'] |= kClassNewline;
    full['\n'] |= kClassNewline;
    stage1.resize(kNumBlocks);
    std::map<std::vector<uint8_t>, uint16_t> seen;
    for (uint32_t b = 0; b < kNumBlocks; ++b) {
      std::vector<uint8_t> block(full.begin() + b * kBlockSize, full.begin() + (b + 1) * kBlockSize);
      auto [it, inserted] = seen.emplace(std::move(block), static_cast<uint16_t>(seen.size()));
      if (inserted) stage2.insert(stage2.end(), it->first.begin(), it->first.end());
      stage1[b] = it->second;
    }
  }
};

const ClassTable& class_table() {
  static const ClassTable table;
  return table;
}

}  // namespace

uint8_t char_class(uint32_t cp) {
  if (cp >= 0x110000) return 0;
  const ClassTable& t = class_table();
  return t.stage2[(static_cast<size_t>(t.stage1[cp >> kBlockBits]) << kBlockBits) | (cp & (kBlockSize - 1))];
}

namespace {

// Length of the valid UTF-8 sequence at s[i], 0 when invalid or truncated; sets
// `truncated` when the bytes so far are a valid start cut off by the end.
size_t valid_sequence(std::string_view s, size_t i, bool& truncated) {
  truncated = false;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  const unsigned c = p[i];
  if (c < 0x80) return 1;
  size_t len;
  unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) len = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else return 0;
  for (size_t k = 1; k < len; ++k) {
    if (i + k >= n) { truncated = true; return 0; }
    const unsigned b = p[i + k];
    if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return 0;
  }
  return len;
}

}  // namespace

size_t find_invalid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) { ++i; continue; }
    bool truncated;
    const size_t len = valid_sequence(s, i, truncated);
    if (len == 0) return i;
    i += len;
  }
  return std::string_view::npos;
}

size_t complete_utf8_prefix(std::string_view s) {
  // Only the last 3 bytes can start an incomplete character.
  const size_t from = s.size() > 3 ? s.size() - 3 : 0;
  for (size_t i = from; i < s.size(); ++i) {
    const unsigned c = static_cast<unsigned char>(s[i]);
    if (c < 0x80 || (c & 0xC0) == 0x80) continue;
    bool truncated;
    if (valid_sequence(s, i, truncated) == 0 && truncated) return i;
  }
  return s.size();
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string utf8_lossy(std::string_view s) {
  if (find_invalid_utf8(s) == std::string_view::npos) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  size_t i = 0;
  while (i < s.size()) {
    bool truncated;
    const size_t len = valid_sequence(s, i, truncated);
    if (len > 0) {
      out.append(s.data() + i, len);
      i += len;
      continue;
    }
    // Like from_utf8_lossy: one U+FFFD per maximal invalid prefix of a sequence.
    size_t skip = 1;
    const unsigned c = static_cast<unsigned char>(s[i]);
    size_t want = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 1;
    while (skip < want && i + skip < s.size()) {
      bool t2;
      // A continuation byte extends the invalid prefix only while the prefix could still be valid.
      const std::string_view head(s.data() + i, skip + 1);
      if (valid_sequence(head, 0, t2) == 0 && !t2) break;
      ++skip;
    }
    append_utf8(out, 0xFFFD);
    i += skip;
  }
  return out;
}

}  // namespace flexgen::tokenizer_detail
