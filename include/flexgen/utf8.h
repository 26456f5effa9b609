// UTF-8, once for every layer: strict decoding, validation, repair, encoding and code-point
// counting (engine text, tokenizer, debug rendering). Pure C++.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace flexgen::utf8 {

// Whether byte `b` continues a multi-byte sequence (10xxxxxx).
inline bool is_continuation(unsigned char b) { return (b & 0xC0) == 0x80; }

// Decodes the code point at s[0] of text known to be valid UTF-8 (the tokenizer's hot path);
// sets `len` to its byte length.
inline uint32_t decode_valid(const unsigned char* s, size_t& len) {
  const unsigned c = s[0];
  if (c < 0x80) { len = 1; return c; }
  if (c < 0xE0) { len = 2; return ((c & 0x1Fu) << 6) | (s[1] & 0x3Fu); }
  if (c < 0xF0) { len = 3; return ((c & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu); }
  len = 4;
  return ((c & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) | (s[3] & 0x3Fu);
}

// Byte length of the valid UTF-8 sequence at s[i] (no overlongs, surrogates or code points
// over U+10FFFF), 0 when the bytes there are not one; `truncated` is set when they are a valid
// start cut off by the end of `s`.
size_t sequence_length(std::string_view s, size_t i, bool& truncated);
inline size_t sequence_length(std::string_view s, size_t i) {
  bool truncated;
  return sequence_length(s, i, truncated);
}

// Byte offset of the first invalid sequence in `s`, or npos when it is valid UTF-8.
size_t find_invalid(std::string_view s);

// Length of the complete prefix of `s`: an incomplete (but so far valid) character at the end
// is left out.
size_t complete_prefix(std::string_view s);

// `s` with each maximal invalid prefix of a sequence replaced by one U+FFFD (like Rust's
// from_utf8_lossy and Hugging Face's decoders).
std::string lossy(std::string_view s);

// Decodes `text` to code points; every byte that does not start a valid sequence decodes to
// U+FFFD on its own (never throws).
std::vector<uint32_t> decode(std::string_view text);

// Appends the encoding of code point `cp` (<= 0x10FFFF) to `out`.
void append(std::string& out, uint32_t cp);

// Encodes a code point sequence.
std::string encode(const std::vector<uint32_t>& cps);

// Characters of `s` as a terminal counts them: bytes that are not continuation bytes.
size_t count_chars(std::string_view s);

// Byte length of the first `n` characters of `s` (count_chars' way; all of `s` when shorter).
size_t prefix_bytes(std::string_view s, size_t n);

}  // namespace flexgen::utf8
