// Backslash escapes in flag values such as --separator ("\n\n[SEP]\n\n" -> real newlines), and
// text made printable for a terminal.
#pragma once

#include <cstddef>
#include <string>

namespace flexgen {

// Resolves \n \t \r \0 \\ \" \' \xHH \uXXXX \UXXXXXXXX (code points written as UTF-8);
// any other escape, a trailing backslash, a surrogate or a code point over U+10FFFF
// throws std::invalid_argument naming the position.
std::string unescape_text(const std::string& text);

// The inverse for display: \n \t \r \\ and other control bytes as escapes, the rest unchanged.
std::string escape_text(const std::string& text);

// Text for a terminal: escape_text(), then bytes that are not valid UTF-8 (half a character
// from one byte-level token) as \xHH.
std::string printable_text(const std::string& text);

// printable_text() of at most `columns` code points (columns > 5); a longer one keeps its head
// and its tail around " ... ".
std::string preview_text(const std::string& text, size_t columns);

// Value of a hexadecimal digit (for \xHH and \uXXXX escapes), -1 for any other character.
inline int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace flexgen
