// Overlapped decode steps against step by step (DecodeConfig::overlap_steps), shared by the CPU
// (overlap_on_host) and CUDA suites.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tiny_fixture.h"

namespace flexgen::testing {

// Decodes `jobs` on `model` overlapped (`overlap(cfg, true)`) and step by step (`overlap(cfg,
// false)`), without stops and with stops that end streams early (newline and common letters), with
// 1, 3 and 8 jobs in flight: every stream's ids and stop reason are the same; steps are queued
// ahead (with stops: only beside other jobs) and none is wasted at one job without stops.
inline void expect_overlap_changes_no_record(const LlamaModel& model, const Tokenizer& tokenizer,
                                             const std::vector<DecodeJob>& jobs, int64_t max_new_tokens,
                                             const std::function<void(DecodeConfig&, bool)>& overlap) {
  for (const bool stops : {false, true}) {
    DecodeConfig cfg;
    cfg.max_new_tokens = max_new_tokens;
    cfg.stops.eos = false;
    cfg.stops.newline = stops;
    if (stops) cfg.stops.strings = {"e", "t", "o", "a", "i", "n", "s"};
    for (const int64_t in_flight : {int64_t{1}, int64_t{3}, int64_t{8}}) {
      DecodeStats ahead, by_step;
      overlap(cfg, true);
      const auto a = decode_all(model, tokenizer, jobs, cfg, in_flight, &ahead);
      overlap(cfg, false);
      const auto b = decode_all(model, tokenizer, jobs, cfg, in_flight, &by_step);
      const std::string where = std::string(stops ? "stops" : "no stops") + ", " + std::to_string(in_flight) + " in flight";
      EXPECT_EQ(by_step.steps_ahead, 0);
      if (!stops || in_flight > 1) EXPECT_GT(ahead.steps_ahead, 0) << where;
      if (!stops && in_flight == 1) EXPECT_EQ(ahead.decode_steps, by_step.decode_steps) << where;
      EXPECT_EQ(ahead.decode_tokens, by_step.decode_tokens) << where;
      int stopped = 0;
      for (size_t j = 0; j < jobs.size(); ++j) {
        ASSERT_EQ(a[j].size(), b[j].size());
        for (size_t s = 0; s < a[j].size(); ++s) {
          EXPECT_EQ(a[j][s].ids, b[j][s].ids) << "job " << j << " stream " << s << ", " << where;
          EXPECT_EQ(a[j][s].stop, b[j][s].stop) << "job " << j << " stream " << s << ", " << where;
          stopped += a[j][s].stop != StopCriteria::Reason::MaxTokens;
        }
      }
      if (stops) EXPECT_GE(stopped, 2) << where;  // the stops do end streams early
    }
  }
}

}  // namespace flexgen::testing
