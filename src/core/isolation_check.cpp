// The isolation check of a block mask (see isolation_check.h).
#include "flexgen/isolation_check.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace flexgen {

IsolationCheck check_isolation(const SequenceLayout& layout, const AttentionMask& mask, const BlockMask& blocks) {
  IsolationCheck c;
  c.segments = layout.num_paraphrases();
  // Paraphrase number of every position, -1 elsewhere.
  std::vector<int32_t> para(static_cast<size_t>(layout.length()), -1);
  for (const Span& s : layout.spans) {
    const Group& g = layout.groups[s.group];
    if (g.kind == GroupKind::Paraphrase) std::fill(para.begin() + s.start, para.begin() + s.end, g.index);
  }
  const int64_t bs = blocks.block_size, q_len = std::min(blocks.q_len, layout.length());
  for (int64_t q = 0; q < q_len; ++q) {
    if (para[q] < 0) continue;
    const int64_t qb = q / bs;
    // The key blocks of this query block in order, each with whether it is full.
    std::vector<std::pair<int32_t, bool>> kbs;
    for (int32_t i = blocks.full_offsets[qb]; i < blocks.full_offsets[qb + 1]; ++i)
      kbs.emplace_back(blocks.full_indices[i], true);
    for (int32_t i = blocks.partial_offsets[qb]; i < blocks.partial_offsets[qb + 1]; ++i)
      kbs.emplace_back(blocks.partial_indices[i], false);
    std::sort(kbs.begin(), kbs.end());
    for (const auto& [kb, full] : kbs) {
      const int64_t k0 = static_cast<int64_t>(kb) * bs, k1 = std::min(k0 + bs, blocks.kv_len);
      for (int64_t k = k0; k < k1; ++k) {
        if (para[k] < 0 || para[k] == para[q]) continue;
        if (full || mask.allowed(q, k)) {
          c.isolated = false;
          c.query = q;
          c.key = k;
          c.query_segment = para[q];
          c.key_segment = para[k];
          return c;
        }
      }
    }
  }
  return c;
}

}  // namespace flexgen
