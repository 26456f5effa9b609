// Whether a block mask keeps the paraphrases apart: walks it as the kernel does and reports
// the first paraphrase position that may attend to another paraphrase's position.
#pragma once

#include <cstdint>

#include "flexgen/block_mask.h"
#include "flexgen/layout.h"
#include "flexgen/mask.h"

namespace flexgen {

// Whether any paraphrase position may attend to another paraphrase's position.
struct IsolationCheck {
  int32_t segments = 0;
  bool isolated = true;
  int64_t query = -1, key = -1;          // the first offending pair when not isolated
  int32_t query_segment = -1, key_segment = -1;  // 0-based paraphrase numbers
};

// Walks the block mask as the kernel does (full blocks: every pair; partial: the mask)
// and reports the first paraphrase position that sees another paraphrase's position.
IsolationCheck check_isolation(const SequenceLayout& layout, const AttentionMask& mask, const BlockMask& blocks);

}  // namespace flexgen
