// Spans of a sequence whose keys and values are those of an earlier span of the same sequence
// (paraphrase prompts that start with the same instruction + few-shot block under restart
// position ids): a prefill computes the source once and copies its K/V. Pure C++.
#pragma once

#include <cstdint>
#include <vector>

#include "flexgen/mask.h"

namespace flexgen {

// Positions [dst, dst + length) take the keys and values of [src, src + length).
struct SpanCopy {
  int64_t src = 0;
  int64_t dst = 0;
  int64_t length = 0;
};

// True when every copy is exact: the two spans hold the same token ids and position ids, the
// source ends before the copy starts, each copy position sees outside the two spans exactly what
// its source position sees and inside its own span the positions its source sees of the source
// span (neither sees the other span), the copies do not overlap each other or any source, and the
// last prompt token (index tokens.size() - 1) is in no copy. By induction over the layers the
// copy's keys and values then equal the source's in exact arithmetic, whatever the kernels do.
// O(copied positions x mask length).
bool span_copies_are_exact(const std::vector<int32_t>& tokens, const std::vector<int64_t>& positions,
                           const AttentionMask& mask, const std::vector<SpanCopy>& copies);

}  // namespace flexgen
