#include "flexgen/block_mask.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace flexgen {

namespace {

void check_sizes(int64_t q_len, int64_t kv_len, int64_t block_size) {
  if (block_size <= 0)
    throw std::invalid_argument("block size must be positive, got " + std::to_string(block_size));
  if (q_len < 0 || kv_len < 0) throw std::invalid_argument("negative sequence length");
  if (q_len > kMaxSequenceLength || kv_len > kMaxSequenceLength)
    throw std::invalid_argument("sequence length over " + std::to_string(kMaxSequenceLength));
}

BlockMask empty_block_mask(int64_t q_len, int64_t kv_len, int64_t block_size) {
  BlockMask m;
  m.q_len = q_len;
  m.kv_len = kv_len;
  m.block_size = block_size;
  m.num_q_blocks = (q_len + block_size - 1) / block_size;
  m.num_kv_blocks = (kv_len + block_size - 1) / block_size;
  m.full_offsets.reserve(m.num_q_blocks + 1);
  m.partial_offsets.reserve(m.num_q_blocks + 1);
  m.full_offsets.push_back(0);
  m.partial_offsets.push_back(0);
  return m;
}

// Number of pairs (q, k), q in [qa, qb), k in [ka, kb), with k <= q.
int64_t causal_pairs_in(int64_t qa, int64_t qb, int64_t ka, int64_t kb) {
  if (qb <= qa || kb <= ka) return 0;
  const int64_t width = kb - ka;
  int64_t sum = 0;
  // Ramp: q in [ka, kb-1) sees q+1-ka keys of the range.
  const int64_t ra = std::max(qa, ka), rb = std::min(qb, kb - 1);
  if (rb > ra) sum += (rb - ra) * ((ra + 1 - ka) + (rb - ka)) / 2;
  // Flat: q >= kb-1 sees the whole range.
  const int64_t fa = std::max(qa, kb - 1);
  if (qb > fa) sum += (qb - fa) * width;
  return sum;
}

// First span index overlapping each block, plus a sentinel.
std::vector<int32_t> first_span_of_blocks(const std::vector<Span>& spans, int64_t num_blocks,
                                          int64_t block_size) {
  std::vector<int32_t> first(static_cast<size_t>(num_blocks + 1));
  int32_t s = 0;
  const int32_t n = static_cast<int32_t>(spans.size());
  for (int64_t b = 0; b < num_blocks; ++b) {
    const int64_t start = b * block_size;
    while (s < n && spans[s].end <= start) ++s;
    first[b] = s;
  }
  first[num_blocks] = n;
  return first;
}

}  // namespace

BlockClass BlockMask::classify(int64_t q_block, int64_t kv_block) const {
  auto contains = [&](const std::vector<int32_t>& offsets, const std::vector<int32_t>& indices) {
    auto begin = indices.begin() + offsets[q_block], end = indices.begin() + offsets[q_block + 1];
    return std::binary_search(begin, end, static_cast<int32_t>(kv_block));
  };
  if (contains(full_offsets, full_indices)) return BlockClass::Full;
  if (contains(partial_offsets, partial_indices)) return BlockClass::Partial;
  return BlockClass::Empty;
}

namespace {

// The analytic builder over contiguous runs of one group each, covering [0, len).
// Only query blocks overlapping [q_begin, q_end) get their lists.
BlockMask build_from_runs(const std::vector<Span>& spans, int64_t len, const MaskSpec& spec, int64_t block_size,
                          int64_t q_begin, int64_t q_end) {
  check_sizes(len, len, block_size);
  for (const Span& s : spans) {
    if (s.group < 0 || s.group >= spec.num_groups)
      throw std::invalid_argument("mask spec does not cover group " + std::to_string(s.group));
  }
  BlockMask m = empty_block_mask(len, len, block_size);
  const std::vector<int32_t> first = first_span_of_blocks(spans, m.num_q_blocks, block_size);
  const int32_t num_spans = static_cast<int32_t>(spans.size());

  std::vector<std::pair<int64_t, int64_t>> candidates;  // [first, last] kv block ranges, ascending
  for (int64_t qb = 0; qb < m.num_q_blocks; ++qb) {
    const int64_t qs = qb * block_size, qe = std::min(len, qs + block_size);
    const bool in_range = qe > q_begin && qs < q_end;
    const int64_t kv_blocks = !in_range ? 0 : spec.causal ? std::min(m.num_kv_blocks, qb + 1) : m.num_kv_blocks;
    // Only kv blocks that hold a key span visible from a query span of this block can have
    // allowed pairs: collect their ranges first (O(spans)), then classify just those blocks.
    candidates.clear();
    const int64_t key_end = std::min(len, kv_blocks * block_size);
    for (int32_t j = 0; j < num_spans && spans[j].start < key_end; ++j) {
      bool visible = false;
      for (int32_t i = first[qb]; i < num_spans && spans[i].start < qe && !visible; ++i)
        visible = spans[i].end > qs && spec.sees(spans[i].group, spans[j].group);
      if (!visible) continue;
      const int64_t b0 = spans[j].start / block_size;
      const int64_t b1 = (std::min(spans[j].end, key_end) - 1) / block_size;
      if (!candidates.empty() && b0 <= candidates.back().second + 1)
        candidates.back().second = std::max(candidates.back().second, b1);
      else
        candidates.emplace_back(b0, b1);
    }
    for (const auto& range : candidates) {
      for (int64_t kb = range.first; kb <= range.second; ++kb) {
        const int64_t ks = kb * block_size, ke = std::min(len, ks + block_size);
        int64_t allowed = 0;
        for (int32_t i = first[qb]; i < num_spans && spans[i].start < qe; ++i) {
          const int64_t qa = std::max(qs, spans[i].start), qz = std::min(qe, spans[i].end);
          if (qz <= qa) continue;
          for (int32_t j = first[kb]; j < num_spans && spans[j].start < ke; ++j) {
            if (!spec.sees(spans[i].group, spans[j].group)) continue;
            const int64_t ka = std::max(ks, spans[j].start), kz = std::min(ke, spans[j].end);
            if (kz <= ka) continue;
            allowed += spec.causal ? causal_pairs_in(qa, qz, ka, kz) : (qz - qa) * (kz - ka);
          }
        }
        if (allowed == 0) continue;
        m.allowed_pairs += allowed;
        (allowed == (qe - qs) * (ke - ks) ? m.full_indices : m.partial_indices).push_back(static_cast<int32_t>(kb));
      }
    }
    m.full_offsets.push_back(static_cast<int32_t>(m.full_indices.size()));
    m.partial_offsets.push_back(static_cast<int32_t>(m.partial_indices.size()));
  }
  return m;
}

void check_spec(const MaskSpec& spec) {
  if (spec.num_groups < 0 || spec.visible.size() != static_cast<size_t>(spec.num_groups) * spec.num_groups)
    throw std::invalid_argument("mask spec: the visibility matrix is not num_groups x num_groups");
}

}  // namespace

BlockMask build_block_mask(const SequenceLayout& layout, const MaskSpec& spec, int64_t block_size) {
  check_spec(spec);
  if (spec.num_groups != static_cast<int32_t>(layout.groups.size()))
    throw std::invalid_argument("mask spec does not match the layout's groups");
  return build_from_runs(layout.spans, layout.length(), spec, block_size, 0, layout.length());
}

BlockMask build_block_mask(const AttentionMask& mask, int64_t block_size) {
  return build_block_mask_rows(mask, block_size, 0, mask.length());
}

BlockMask build_block_mask_rows(const AttentionMask& mask, int64_t block_size, int64_t q_begin, int64_t q_end) {
  check_spec(mask.spec);
  std::vector<Span> runs;
  const int64_t len = mask.length();
  for (int64_t i = 0; i < len;) {
    int64_t j = i + 1;
    while (j < len && mask.group_ids[j] == mask.group_ids[i]) ++j;
    runs.push_back(Span{mask.group_ids[i], i, j});
    i = j;
  }
  return build_from_runs(runs, len, mask.spec, block_size, q_begin, q_end);
}

BlockMask build_block_mask_generic(int64_t q_len, int64_t kv_len, int64_t block_size,
                                   const std::function<bool(int64_t, int64_t)>& allowed_fn) {
  check_sizes(q_len, kv_len, block_size);
  BlockMask m = empty_block_mask(q_len, kv_len, block_size);
  for (int64_t qb = 0; qb < m.num_q_blocks; ++qb) {
    const int64_t qs = qb * block_size, qe = std::min(q_len, qs + block_size);
    for (int64_t kb = 0; kb < m.num_kv_blocks; ++kb) {
      const int64_t ks = kb * block_size, ke = std::min(kv_len, ks + block_size);
      int64_t allowed = 0;
      for (int64_t q = qs; q < qe; ++q)
        for (int64_t k = ks; k < ke; ++k) allowed += allowed_fn(q, k) ? 1 : 0;
      if (allowed == 0) continue;
      m.allowed_pairs += allowed;
      (allowed == (qe - qs) * (ke - ks) ? m.full_indices : m.partial_indices)
          .push_back(static_cast<int32_t>(kb));
    }
    m.full_offsets.push_back(static_cast<int32_t>(m.full_indices.size()));
    m.partial_offsets.push_back(static_cast<int32_t>(m.partial_indices.size()));
  }
  return m;
}

double BlockMaskStats::density() const {
  return total_pairs == 0 ? 0.0 : static_cast<double>(allowed_pairs) / static_cast<double>(total_pairs);
}

double BlockMaskStats::causal_fraction() const {
  return causal_pairs == 0 ? 0.0 : static_cast<double>(allowed_pairs) / static_cast<double>(causal_pairs);
}

BlockMaskStats block_mask_stats(const BlockMask& mask) {
  BlockMaskStats s;
  s.full = static_cast<int64_t>(mask.full_indices.size());
  s.partial = static_cast<int64_t>(mask.partial_indices.size());
  s.empty = mask.num_q_blocks * mask.num_kv_blocks - s.full - s.partial;
  s.allowed_pairs = mask.allowed_pairs;
  s.total_pairs = mask.q_len * mask.kv_len;
  s.causal_pairs = causal_pairs_in(0, mask.q_len, 0, mask.kv_len);
  return s;
}

}  // namespace flexgen
