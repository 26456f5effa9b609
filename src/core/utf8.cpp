// UTF-8 (see utf8.h).
#include "flexgen/utf8.h"

namespace flexgen::utf8 {

size_t sequence_length(std::string_view s, size_t i, bool& truncated) {
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

size_t find_invalid(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) { ++i; continue; }
    bool truncated;
    const size_t len = sequence_length(s, i, truncated);
    if (len == 0) return i;
    i += len;
  }
  return std::string_view::npos;
}

size_t complete_prefix(std::string_view s) {
  // Only the last 3 bytes can start an incomplete character.
  const size_t from = s.size() > 3 ? s.size() - 3 : 0;
  for (size_t i = from; i < s.size(); ++i) {
    const unsigned c = static_cast<unsigned char>(s[i]);
    if (c < 0x80 || (c & 0xC0) == 0x80) continue;
    bool truncated;
    if (sequence_length(s, i, truncated) == 0 && truncated) return i;
  }
  return s.size();
}

std::string lossy(std::string_view s) {
  if (find_invalid(s) == std::string_view::npos) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  size_t i = 0;
  while (i < s.size()) {
    bool truncated;
    const size_t len = sequence_length(s, i, truncated);
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
      if (sequence_length(head, 0, t2) == 0 && !t2) break;
      ++skip;
    }
    append(out, 0xFFFD);
    i += skip;
  }
  return out;
}

std::vector<uint32_t> decode(std::string_view text) {
  std::vector<uint32_t> out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  size_t i = 0;
  while (i < text.size()) {
    if (s[i] < 0x80) {
      out.push_back(s[i++]);
      continue;
    }
    const size_t len = sequence_length(text, i);
    if (len == 0) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    size_t used;
    out.push_back(decode_valid(s + i, used));
    i += len;
  }
  return out;
}

void append(std::string& out, uint32_t cp) {
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

std::string encode(const std::vector<uint32_t>& cps) {
  std::string out;
  out.reserve(cps.size());
  for (uint32_t cp : cps) append(out, cp);
  return out;
}

size_t count_chars(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += !is_continuation(c);
  return n;
}

size_t prefix_bytes(std::string_view s, size_t n) {
  size_t chars = 0, i = 0;
  for (; i < s.size(); ++i) {
    if (!is_continuation(static_cast<unsigned char>(s[i]))) {
      if (chars == n) break;
      ++chars;
    }
  }
  return i;
}

}  // namespace flexgen::utf8
