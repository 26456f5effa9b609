// Times the analytic block-mask builder (and the generic one on small sizes)
// for 5 isolated paraphrase segments; prints JSON on stdout.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <vector>

#include "flexgen/block_mask.h"
#include "flexgen/layout.h"
#include "flexgen/mask.h"

namespace {

using Clock = std::chrono::steady_clock;

flexgen::SequenceLayout five_segments(int64_t total, bool with_context) {
  const int64_t ctx = with_context ? total / 5 : 0;
  const int64_t rest = total - 1 - ctx;
  std::vector<int64_t> lengths(5, rest / 5);
  lengths.back() += rest - 5 * (rest / 5);
  return flexgen::layout_from_lengths(lengths, /*bos=*/true, ctx, /*separator_tokens=*/0, /*generated=*/0);
}

// Median wall time in microseconds of `fn` over enough repetitions.
template <class Fn>
double median_us(Fn&& fn, int reps) {
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto a = Clock::now();
    fn();
    t.push_back(std::chrono::duration<double, std::micro>(Clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main() {
  nlohmann::json results = nlohmann::json::array();
  for (bool ctx : {false, true}) {
    for (int64_t len : {1024, 4096, 16384, 65536}) {
      for (int64_t block : {64, 128}) {
        const flexgen::SequenceLayout layout = five_segments(len, ctx);
        const flexgen::MaskSpec spec = flexgen::default_mask_spec(layout);
        flexgen::BlockMask bm;
        const double us = median_us([&] { bm = flexgen::build_block_mask(layout, spec, block); }, 101);
        const flexgen::BlockMaskStats st = flexgen::block_mask_stats(bm);
        nlohmann::json row = {{"builder", "analytic"},  {"length", len},
                              {"block_size", block},    {"shared_context", ctx},
                              {"median_us", us},        {"full_blocks", st.full},
                              {"partial_blocks", st.partial}, {"empty_blocks", st.empty},
                              {"density", st.density()}, {"fraction_of_causal", st.causal_fraction()}};
        if (len <= 4096) {
          const flexgen::AttentionMask mask = flexgen::make_attention_mask(layout, spec);
          const double gen_us = median_us(
              [&] {
                flexgen::build_block_mask_generic(len, len, block,
                                                  [&](int64_t q, int64_t k) { return mask.allowed(q, k); });
              },
              3);
          row["generic_median_us"] = gen_us;
          row["generic_over_analytic"] = gen_us / us;
        }
        results.push_back(row);
      }
    }
  }
  nlohmann::json out = {{"benchmark", "block_mask_build"},
                        {"segments", 5},
                        {"note", "one core; analytic = O(block pairs x spans per block); generic = L*L predicate calls"},
                        {"results", results}};
  std::cout << out.dump(2) << std::endl;
  return 0;
}
