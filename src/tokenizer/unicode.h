// UTF-8 decoding and the Unicode character classes of the pre-tokenizer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace flexgen::tokenizer_detail {

// Class bits of a code point.
enum : uint8_t { kClassLetter = 1, kClassNumber = 2, kClassSpace = 4, kClassNewline = 8 /* \r or \n */ };

// Class bits of code point `cp` (0 for anything else, e.g. punctuation or symbols).
uint8_t char_class(uint32_t cp);

// Decodes the code point at s[i] (s valid UTF-8); sets `len` to its byte length.
inline uint32_t decode_utf8(const unsigned char* s, size_t& len) {
  const unsigned c = s[0];
  if (c < 0x80) { len = 1; return c; }
  if (c < 0xE0) { len = 2; return ((c & 0x1Fu) << 6) | (s[1] & 0x3Fu); }
  if (c < 0xF0) { len = 3; return ((c & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu); }
  len = 4;
  return ((c & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) | (s[3] & 0x3Fu);
}

// Byte offset of the first invalid UTF-8 sequence in `s`, or npos when valid.
size_t find_invalid_utf8(std::string_view s);

// Length of the complete UTF-8 prefix of `s`: an incomplete (but so far valid)
// character at the end is left out.
size_t complete_utf8_prefix(std::string_view s);

// `s` with every invalid sequence replaced by U+FFFD (like Rust's from_utf8_lossy).
std::string utf8_lossy(std::string_view s);

// Appends code point `cp` as UTF-8.
void append_utf8(std::string& out, uint32_t cp);

}  // namespace flexgen::tokenizer_detail
