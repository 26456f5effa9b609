// GPT-2 byte-level alphabet: each byte is written as one printable code point
// in vocabulary strings ("Ġ" for a space, "Ċ" for a newline).
#pragma once

#include <cstdint>

#include <optional>
#include <string>
#include <string_view>

namespace flexgen::tokenizer_detail {

// The code point that stands for byte `b`.
uint32_t byte_to_codepoint(unsigned char b);

// Vocabulary string (UTF-8 of byte-level code points) -> raw bytes; nullopt if a
// code point is not in the byte-level alphabet or the string is not valid UTF-8.
std::optional<std::string> byte_level_decode(std::string_view piece);

// Raw bytes -> vocabulary string.
std::string byte_level_encode(std::string_view bytes);

}  // namespace flexgen::tokenizer_detail
