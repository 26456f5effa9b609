#include "flexgen/mask.h"

namespace flexgen {

MaskSpec default_mask_spec(const SequenceLayout& layout) {
  MaskSpec spec;
  spec.num_groups = static_cast<int32_t>(layout.groups.size());
  spec.visible.assign(static_cast<size_t>(spec.num_groups) * spec.num_groups, 0);
  spec.causal = true;
  for (int32_t q = 0; q < spec.num_groups; ++q) {
    const GroupKind qk = layout.groups[q].kind;
    for (int32_t k = 0; k < spec.num_groups; ++k) {
      const GroupKind kk = layout.groups[k].kind;
      bool v = false;
      if (q == k || kk == GroupKind::Bos || qk == GroupKind::Generated) {
        v = true;
      } else if (kk == GroupKind::Context) {
        v = qk == GroupKind::Paraphrase;
      }
      spec.set(q, k, v);
    }
  }
  return spec;
}

AttentionMask make_attention_mask(const SequenceLayout& layout, const MaskSpec& spec) {
  return AttentionMask{layout.group_ids(), spec};
}

}  // namespace flexgen
