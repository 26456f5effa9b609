// The isolation check of a block mask (see isolation_check.h).
#include "flexgen/isolation_check.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace flexgen {

namespace {

bool checked_kind(GroupKind k) {
  return k == GroupKind::Paraphrase || k == GroupKind::FewShotQuestion || k == GroupKind::FewShotAnswer;
}

// Whether a query of group q must not see a key of group k (both checked kinds, q != k).
bool forbidden(const Group& q, const Group& k) {
  switch (q.kind) {
    case GroupKind::Paraphrase: return k.kind == GroupKind::Paraphrase;
    case GroupKind::FewShotAnswer: return k.kind != GroupKind::Paraphrase && k.index != q.index;
    case GroupKind::FewShotQuestion: return k.kind == GroupKind::FewShotAnswer;
    default: return false;
  }
}

std::string group_label(const Group& g) {
  const std::string n = std::to_string(g.index + 1);
  switch (g.kind) {
    case GroupKind::Paraphrase: return "para " + n;
    case GroupKind::FewShotQuestion: return "fewshot Q" + n;
    case GroupKind::FewShotAnswer: return "fewshot A" + n;
    default: return to_string(g.kind);
  }
}

}  // namespace

IsolationCheck check_isolation(const SequenceLayout& layout, const AttentionMask& mask, const BlockMask& blocks) {
  IsolationCheck c;
  c.segments = layout.num_paraphrases();
  // Group id of every position whose group is checked, -1 elsewhere.
  std::vector<int32_t> para(static_cast<size_t>(layout.length()), -1);
  for (const Span& s : layout.spans) {
    const Group& g = layout.groups[s.group];
    if (checked_kind(g.kind)) std::fill(para.begin() + s.start, para.begin() + s.end, s.group);
  }
  for (const Group& g : layout.groups)
    if (g.kind == GroupKind::FewShotAnswer) ++c.examples;
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
        const Group& qg = layout.groups[para[q]];
        const Group& kg = layout.groups[para[k]];
        if (!forbidden(qg, kg)) continue;
        if (full || mask.allowed(q, k)) {
          c.isolated = false;
          c.query = q;
          c.key = k;
          c.query_segment = qg.kind == GroupKind::Paraphrase ? qg.index : -1;
          c.key_segment = kg.kind == GroupKind::Paraphrase ? kg.index : -1;
          c.query_group = group_label(qg);
          c.key_group = group_label(kg);
          return c;
        }
      }
    }
  }
  return c;
}

}  // namespace flexgen
