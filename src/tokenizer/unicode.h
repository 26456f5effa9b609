// The Unicode character classes of the pre-tokenizer (UTF-8 itself: flexgen/utf8.h).
#pragma once

#include <cstddef>
#include <cstdint>

namespace flexgen::tokenizer_detail {

// Class bits of a code point.
enum : uint8_t { kClassLetter = 1, kClassNumber = 2, kClassSpace = 4, kClassNewline = 8 /* \r or \n */ };

// Class bits of code point `cp` (0 for anything else, e.g. punctuation or symbols).
uint8_t char_class(uint32_t cp);

}  // namespace flexgen::tokenizer_detail
