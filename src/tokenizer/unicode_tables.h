// Code-point ranges of the Unicode classes the pre-tokenizer needs (generated tables).
#pragma once

#include <cstddef>
#include <cstdint>

namespace flexgen::tokenizer_detail {

struct CodepointRange {
  uint32_t first, last;  // inclusive
};

extern const CodepointRange kLetterRanges[];  // \p{L}
extern const size_t kLetterRanges_size;
extern const CodepointRange kNumberRanges[];  // \p{N}
extern const size_t kNumberRanges_size;
extern const CodepointRange kWhiteSpaceRanges[];  // \s (White_Space)
extern const size_t kWhiteSpaceRanges_size;

}  // namespace flexgen::tokenizer_detail
