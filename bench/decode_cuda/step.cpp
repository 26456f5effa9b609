// The whole decode step through DecodeState (step.h).
#include "step.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <optional>

#include "clock.h"
#include "flexgen/decode_state.h"
#include "flexgen/mask.h"

namespace bench_decode {

int64_t step_cache_length(const StepSetup& s) { return s.context + s.steps + 8; }

StepTiming time_decode_steps(const flexgen::LlamaModel& model, const StepSetup& s, bool graphs) {
  flexgen::DecodeStateOptions o;
  o.rows = s.rows;
  o.length = step_cache_length(s);
  o.block_size = s.block_size;
  o.graphs = graphs;
  flexgen::DecodeState state(model, o);

  at::manual_seed(s.seed);
  const int64_t V = model.config.vocab_size;
  const at::Tensor prompt = at::randint(V, {s.rows, s.context}, at::kLong);
  const at::Tensor positions = at::arange(s.context, at::kLong).view({1, s.context}).expand({s.rows, s.context}).contiguous();
  std::vector<std::optional<flexgen::AttentionMask>> masks;
  for (int64_t r = 0; r < s.rows; ++r) masks.emplace_back(flexgen::causal_mask(o.length));
  wait_for(state.prefill(0, prompt, positions, std::move(masks), flexgen::LogitsMode::Last));

  const at::Tensor fed_ids = at::randint(V, {(kWarmupSteps + s.steps) * s.rows}, at::kLong);
  const std::vector<int64_t> fed(fed_ids.data_ptr<int64_t>(), fed_ids.data_ptr<int64_t>() + fed_ids.numel());
  StepTiming t;
  t.graphs = graphs;
  for (int64_t i = 0; i < kWarmupSteps + s.steps; ++i) {
    const int64_t slot = s.context + i;
    const auto start = Clock::now();
    const auto first = fed.begin() + static_cast<std::ptrdiff_t>(i * s.rows);
    const std::vector<int64_t> tokens(first, first + static_cast<std::ptrdiff_t>(s.rows));
    const std::vector<int64_t> same(static_cast<size_t>(s.rows), slot);
    const bool stamp = graphs && s.timeline && i + 1 == kWarmupSteps + s.steps;
    if (stamp) flexgen::cuda_timeline::clear();
    state.step(tokens, same, same);
    if (stamp) t.stamps = flexgen::cuda_timeline::read();
    const double ms = seconds_since(start) * 1e3;
    if (i >= kWarmupSteps) t.ms.push_back(ms);
  }
  t.median_ms = median(t.ms);
  t.min_ms = *std::min_element(t.ms.begin(), t.ms.end());
  t.max_ms = *std::max_element(t.ms.begin(), t.ms.end());
  return t;
}

}  // namespace bench_decode
