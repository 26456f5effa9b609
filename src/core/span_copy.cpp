#include "flexgen/span_copy.h"

namespace flexgen {

namespace {

bool inside(int64_t k, int64_t start, int64_t length) { return k >= start && k < start + length; }

bool copy_is_exact(const std::vector<int32_t>& tokens, const std::vector<int64_t>& positions,
                   const AttentionMask& mask, const SpanCopy& c) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (c.length < 1 || c.src < 0 || c.src + c.length > c.dst || c.dst + c.length > n - 1) return false;
  if (static_cast<int64_t>(positions.size()) < n || mask.length() < n) return false;
  for (int64_t j = 0; j < c.length; ++j) {
    const int64_t s = c.src + j, d = c.dst + j;
    if (tokens[s] != tokens[d] || positions[s] != positions[d]) return false;
    for (int64_t k = 0; k < mask.length(); ++k) {
      bool same;
      if (inside(k, c.dst, c.length))
        same = mask.allowed(d, k) == mask.allowed(s, c.src + (k - c.dst)) && !mask.allowed(s, k);
      else if (inside(k, c.src, c.length))
        same = !mask.allowed(d, k);
      else
        same = mask.allowed(d, k) == mask.allowed(s, k);
      if (!same) return false;
    }
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
