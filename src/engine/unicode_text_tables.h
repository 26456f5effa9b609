// Generated Unicode tables for lowercasing and word/space classes (internal header).
#pragma once

#include <cstddef>
#include <cstdint>

namespace flexgen::unicode_tables {

// Code points first, first+stride, ..., last lowercase to cp + delta.
struct LowerRange {
  uint32_t first, last;
  int32_t delta;
  int32_t stride;
};

// Inclusive code point range.
struct CodeRange {
  uint32_t first, last;
};

extern const LowerRange kLower[];  // sorted by first, disjoint
extern const size_t kLowerCount;
extern const CodeRange kWord[];  // letters, numbers, marks, '_'
extern const size_t kWordCount;
extern const CodeRange kSpace[];  // Python's str.isspace()
extern const size_t kSpaceCount;
extern const CodeRange kCased[];  // Lu, Ll, Lt (final-sigma rule)
extern const size_t kCasedCount;
extern const CodeRange kCaseIgnorable[];  // Mn, Me, Cf, Lm, Sk, MidLetter (final-sigma rule)
extern const size_t kCaseIgnorableCount;

}  // namespace flexgen::unicode_tables
