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

}  // namespace flexgen::utf8
