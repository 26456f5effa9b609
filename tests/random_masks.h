// Random sequence layouts and visibility specs for the property tests of the block mask and
// the attention kernels (one generator, so every suite draws its cases the same way).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "flexgen/layout.h"
#include "flexgen/mask.h"

namespace flexgen::testing {

struct RandomLayoutShape {
  int max_segments = 6;    // 1 .. max_segments paraphrase segments
  int short_segment = 2;   // about a quarter of them 1 .. short_segment tokens long
  int max_segment = 60;    // the others 1 .. max_segment tokens
  int max_context = 30;    // shared context: none a third of the time, else 0 .. max_context - 1
  int max_generated = 20;  // generated positions: 0 .. max_generated - 1
};

// BOS or not, 0-3 separator tokens.
inline SequenceLayout random_layout(std::mt19937& rng, const RandomLayoutShape& s) {
  const int n = 1 + static_cast<int>(rng() % s.max_segments);
  std::vector<int64_t> lengths;
  for (int i = 0; i < n; ++i) lengths.push_back(1 + rng() % (rng() % 4 == 0 ? s.short_segment : s.max_segment));
  return layout_from_lengths(lengths, rng() % 2, rng() % 3 == 0 ? 0 : rng() % s.max_context, rng() % 4,
                             rng() % s.max_generated);
}

// The default visibility with random changes between groups; with allow_empty_rows the diagonal
// may be switched off too (rows with nothing to attend to).
inline MaskSpec random_spec(const SequenceLayout& l, std::mt19937& rng, bool allow_empty_rows = false) {
  MaskSpec spec = default_mask_spec(l);
  for (int32_t q = 0; q < spec.num_groups; ++q)
    for (int32_t k = 0; k < spec.num_groups; ++k)
      if ((q != k || allow_empty_rows) && rng() % 3 == 0) spec.set(q, k, rng() % 2);
  spec.causal = rng() % 5 != 0;
  return spec;
}

}  // namespace flexgen::testing
