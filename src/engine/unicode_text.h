// Unicode-aware lowercasing, word/space classes and stripping for scoring (internal header).
#pragma once

#include <cstdint>
#include <string>

namespace flexgen::unicode {

// Simple lowercase mapping of one code point (identity when it has none).
uint32_t to_lower(uint32_t cp);
// Letter, number, mark or '_' (the scoring rule's \w).
bool is_word(uint32_t cp);
// White space as Python's str.isspace() sees it.
bool is_space(uint32_t cp);

// Python's str.lower() on UTF-8 text: simple mappings, U+0130 -> "i\u0307", and the
// final-sigma rule (capital sigma ending a word lowercases to U+03C2).
std::string lowercase(const std::string& text);

// Python's str.strip(): leading and trailing white space removed.
std::string strip(const std::string& text);

}  // namespace flexgen::unicode
