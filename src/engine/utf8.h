// UTF-8 decoding and encoding shared by the engine's text code (internal header).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace flexgen::utf8 {

// Appends the UTF-8 encoding of code point `cp` (must be <= 0x10FFFF) to `out`.
void append(std::string& out, uint32_t cp);

// Decodes `text`; an invalid byte sequence decodes to U+FFFD per bad byte (never throws).
std::vector<uint32_t> decode(const std::string& text);

// Encodes a code point sequence.
std::string encode(const std::vector<uint32_t>& cps);

// Value of a hexadecimal digit (for \xHH and \uXXXX escapes), -1 for any other character.
inline int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace flexgen::utf8
