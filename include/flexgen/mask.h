// Attention mask described as data: a group id per position, a group
// visibility matrix and causality. allowed(q,k) = (!causal || k <= q) && visible[g(q)][g(k)].
#pragma once

#include <cstdint>
#include <vector>

#include "flexgen/layout.h"

namespace flexgen {

// Which group may attend to which, plus causality.
struct MaskSpec {
  int32_t num_groups = 0;
  std::vector<uint8_t> visible;  // row-major: visible[q_group * num_groups + k_group]
  bool causal = true;

  bool sees(int32_t q_group, int32_t k_group) const {
    return visible[static_cast<size_t>(q_group) * num_groups + k_group] != 0;
  }
  void set(int32_t q_group, int32_t k_group, bool v) {
    visible[static_cast<size_t>(q_group) * num_groups + k_group] = v ? 1 : 0;
  }
};

// The spec's default: BOS is visible to every group; the shared context to
// every paraphrase and the generated tokens; a paraphrase sees BOS, the
// context and itself; a separator run sees BOS and itself; generated tokens
// see everything. Every group sees itself, so no row is fully masked.
// MyriadLAMA few-shot groups: example questions see the instruction and all
// example questions; an answer sees the instruction and its own example's
// questions; paraphrases also see every few-shot group.
MaskSpec default_mask_spec(const SequenceLayout& layout);

// Mask of a concrete sequence: the per-position group ids plus the spec.
struct AttentionMask {
  std::vector<int32_t> group_ids;  // one per position
  MaskSpec spec;

  int64_t length() const { return static_cast<int64_t>(group_ids.size()); }
  bool allowed(int64_t q, int64_t k) const {
    if (spec.causal && k > q) return false;
    return spec.sees(group_ids[q], group_ids[k]);
  }
};

AttentionMask make_attention_mask(const SequenceLayout& layout, const MaskSpec& spec);

// A plain causal mask of one group over `length` positions.
AttentionMask causal_mask(int64_t length);

}  // namespace flexgen
