// Whether a block mask keeps the paraphrases apart: walks it as the kernel does and reports
// the first paraphrase position that may attend to another paraphrase's position. With the
// MyriadLAMA few-shot groups it also checks the few-shot rules: an example's answer line sees no
// other example, an example's question lines see no answer line.
#pragma once

#include <cstdint>
#include <string>

#include "flexgen/block_mask.h"
#include "flexgen/layout.h"
#include "flexgen/mask.h"

namespace flexgen {

// Whether any paraphrase position may attend to another paraphrase's position.
struct IsolationCheck {
  int32_t segments = 0;
  bool isolated = true;
  int64_t query = -1, key = -1;          // the first offending pair when not isolated
  int32_t query_segment = -1, key_segment = -1;  // 0-based paraphrase numbers (-1: a few-shot group)
  int32_t examples = 0;                  // few-shot examples laid out as their own groups
  std::string query_group, key_group;    // the offending pair's groups ("para 2", "fewshot A1", ...)
};

// Walks the block mask as the kernel does (full blocks: every pair; partial: the mask)
// and reports the first paraphrase position that sees another paraphrase's position.
IsolationCheck check_isolation(const SequenceLayout& layout, const AttentionMask& mask, const BlockMask& blocks);

}  // namespace flexgen
