// Backslash escapes in flag values such as --separator: "\n\n[SEP]\n\n" -> real newlines.
#pragma once

#include <string>

namespace flexgen {

// Resolves \n \t \r \0 \\ \" \' \xHH \uXXXX \UXXXXXXXX (code points written as UTF-8);
// any other escape, a trailing backslash, a surrogate or a code point over U+10FFFF
// throws std::invalid_argument naming the position.
std::string unescape_text(const std::string& text);

// The inverse for display: \n \t \r \\ and other control bytes as escapes, the rest unchanged.
std::string escape_text(const std::string& text);

}  // namespace flexgen
