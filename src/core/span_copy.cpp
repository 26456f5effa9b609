#include "flexgen/span_copy.h"

#include <algorithm>

namespace flexgen {

namespace {

bool inside(int64_t k, int64_t start, int64_t length) { return k >= start && k < start + length; }

// Position k's mask row relations that copy_is_exact compares, for copy position d and its
// source s (the definition; copy_is_exact evaluates it once per piece of keys on which it is
// constant).
bool same_row_at(const AttentionMask& mask, const SpanCopy& c, int64_t s, int64_t d, int64_t k) {
  if (inside(k, c.dst, c.length)) return mask.allowed(d, k) == mask.allowed(s, c.src + (k - c.dst)) && !mask.allowed(s, k);
  if (inside(k, c.src, c.length)) return !mask.allowed(d, k);
  return mask.allowed(d, k) == mask.allowed(s, k);
}

bool copy_is_exact(const std::vector<int32_t>& tokens, const std::vector<int64_t>& positions,
                   const AttentionMask& mask, const SpanCopy& c) {
  const int64_t n = static_cast<int64_t>(tokens.size()), L = mask.length();
  if (c.length < 1 || c.src < 0 || c.src + c.length > c.dst || c.dst + c.length > n - 1) return false;
  if (static_cast<int64_t>(positions.size()) < n || L < n) return false;
  // same_row_at(k) depends on k only through which span holds k, gid[k] and, for k in the copy,
  // the gid of its source key (k - dst + src); causality adds no breakpoint: past d (in the copy
  // or after it) and past s (in the source span or after it) both sides are false or unused, so a
  // piece's first key shows any difference the piece holds. So it is checked at these keys only:
  // the spans' ends and the starts of runs of equal group ids (also shifted from the source span
  // onto the copy).
  std::vector<int64_t> cuts = {0, c.src, c.src + c.length, c.dst, c.dst + c.length};
  for (int64_t k = 1; k < L; ++k) {
    if (mask.group_ids[k] == mask.group_ids[k - 1]) continue;
    cuts.push_back(k);
    if (inside(k, c.src, c.length)) cuts.push_back(k - c.src + c.dst);
  }
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  for (int64_t j = 0; j < c.length; ++j) {
    const int64_t s = c.src + j, d = c.dst + j;
    if (tokens[s] != tokens[d] || positions[s] != positions[d]) return false;
    for (int64_t k : cuts)
      if (!same_row_at(mask, c, s, d, k)) return false;
  }
  return true;
}

}  // namespace

bool span_copies_are_exact(const std::vector<int32_t>& tokens, const std::vector<int64_t>& positions,
                           const AttentionMask& mask, const std::vector<SpanCopy>& copies) {
  for (size_t a = 0; a < copies.size(); ++a) {
    if (!copy_is_exact(tokens, positions, mask, copies[a])) return false;
    for (size_t b = 0; b < copies.size(); ++b) {
      const SpanCopy &x = copies[a], &y = copies[b];
      const bool over_dst = x.dst < y.dst + y.length && y.dst < x.dst + x.length;
      const bool over_src = x.dst < y.src + y.length && y.src < x.dst + x.length;
      if ((a != b && over_dst) || over_src) return false;
    }
  }
  return true;
}

}  // namespace flexgen
