#include "flexgen/mask.h"

namespace flexgen {

namespace {

// Whether a query of group `q` may see a key of group `k` (q != k, k not BOS, q not generated).
// The MyriadLAMA few-shot-sharing rules of the reference: the instruction (Context) is
// visible to every later prompt group; an example's question lines see the other examples'
// question lines; an example's answer sees its own example's question lines; the main
// paraphrases see the instruction and every few-shot group. Separators see only BOS and themselves.
bool visible_between(const Group& q, const Group& k) {
  switch (q.kind) {
    case GroupKind::Paraphrase:
      return k.kind == GroupKind::Context || k.kind == GroupKind::FewShotQuestion ||
             k.kind == GroupKind::FewShotAnswer;
    case GroupKind::FewShotQuestion:
      return k.kind == GroupKind::Context || k.kind == GroupKind::FewShotQuestion;
    case GroupKind::FewShotAnswer:
      return k.kind == GroupKind::Context || (k.kind == GroupKind::FewShotQuestion && k.index == q.index);
    case GroupKind::Bos:
    case GroupKind::Context:
    case GroupKind::Separator:
    case GroupKind::Generated:
      return false;
  }
  return false;
}

}  // namespace

MaskSpec default_mask_spec(const SequenceLayout& layout) {
  MaskSpec spec;
  spec.num_groups = static_cast<int32_t>(layout.groups.size());
  spec.visible.assign(static_cast<size_t>(spec.num_groups) * spec.num_groups, 0);
  spec.causal = true;
  for (int32_t q = 0; q < spec.num_groups; ++q) {
    const Group& qg = layout.groups[q];
    for (int32_t k = 0; k < spec.num_groups; ++k) {
      const Group& kg = layout.groups[k];
      const bool v = q == k || kg.kind == GroupKind::Bos || qg.kind == GroupKind::Generated || visible_between(qg, kg);
      spec.set(q, k, v);
    }
  }
  return spec;
}

AttentionMask make_attention_mask(const SequenceLayout& layout, const MaskSpec& spec) {
  return AttentionMask{layout.group_ids(), spec};
}

AttentionMask causal_mask(int64_t length) {
  AttentionMask m;
  m.group_ids.assign(static_cast<size_t>(length), 0);
  m.spec.num_groups = 1;
  m.spec.visible = {1};
  m.spec.causal = true;
  return m;
}

}  // namespace flexgen
