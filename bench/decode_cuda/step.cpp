// The whole decode step through DecodeState (step.h).
#include "step.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <memory>
#include <optional>

#include "clock.h"
#include "cuda/cuda_profiler.h"
#include "flexgen/decode_state.h"
#include "flexgen/mask.h"

namespace bench_decode {

int64_t step_cache_length(const StepSetup& s) { return s.context + s.steps + 8; }

namespace {

// The random prompt of every row (s.context tokens) and its positions.
struct Prompt {
  at::Tensor tokens, positions;
};
Prompt random_prompt(const flexgen::LlamaModel& model, const StepSetup& s) {
  at::manual_seed(s.seed);
  const int64_t V = model.config.vocab_size;
  return {at::randint(V, {s.rows, s.context}, at::kLong),
          at::arange(s.context, at::kLong).view({1, s.context}).expand({s.rows, s.context}).contiguous()};
}

// Prefills every row of `state` with `p` under a causal mask; returns the last positions' logits.
at::Tensor prefill_rows(flexgen::DecodeState& state, const Prompt& p, const StepSetup& s) {
  std::vector<std::optional<flexgen::AttentionMask>> masks;
  for (int64_t r = 0; r < s.rows; ++r) masks.emplace_back(flexgen::causal_mask(step_cache_length(s)));
  return state.prefill(0, p.tokens, p.positions, std::move(masks), flexgen::LogitsMode::Last);
}

// A DecodeState of s.rows rows (graphs on or off) over `model`, nothing prefilled.
std::unique_ptr<flexgen::DecodeState> new_state(const flexgen::LlamaModel& model, const StepSetup& s, bool graphs) {
  flexgen::DecodeStateOptions o;
  o.rows = s.rows;
  o.length = step_cache_length(s);
  o.block_size = s.block_size;
  o.graphs = graphs;
  return std::make_unique<flexgen::DecodeState>(model, o);
}

// A DecodeState of s.rows rows (graphs on or off) over `model`, each row prefilled with its own
// random prompt of s.context tokens under a causal mask.
std::unique_ptr<flexgen::DecodeState> prefilled_state(const flexgen::LlamaModel& model, const StepSetup& s,
                                                      bool graphs) {
  auto state = new_state(model, s, graphs);
  wait_for(prefill_rows(*state, random_prompt(model, s), s));
  return state;
}

}  // namespace

PrefillTiming time_prefills(const flexgen::LlamaModel& model, const StepSetup& s, int64_t reps, bool profiled) {
  const std::unique_ptr<flexgen::DecodeState> state = new_state(model, s, true);
  const Prompt p = random_prompt(model, s);
  wait_for(prefill_rows(*state, p, s));
  PrefillTiming t;
  for (int64_t i = 0; i < reps; ++i) {
    const auto start = Clock::now();
    const at::Tensor logits = prefill_rows(*state, p, s);
    t.enqueue_ms.push_back(seconds_since(start) * 1e3);
    wait_for(logits);
    t.ms.push_back(seconds_since(start) * 1e3);
  }
  if (profiled) {
    flexgen::cuda_profiler_start();
    wait_for(prefill_rows(*state, p, s));
    flexgen::cuda_profiler_stop();
  }
  return t;
}

double time_overlapped_steps(const flexgen::LlamaModel& model, const StepSetup& s) {
  const std::unique_ptr<flexgen::DecodeState> state = prefilled_state(model, s, true);
  const int64_t V = model.config.vocab_size;
  const std::vector<int64_t> first(static_cast<size_t>(s.rows), V / 2);
  flexgen::DeviceFeed feed;
  for (int64_t r = 0; r < s.rows; ++r) {
    feed.rows.push_back(r);
    feed.index.push_back(r);
  }
  std::optional<flexgen::HostCopy> unread;  // the previous step's picks
  Clock::time_point start = Clock::now();
  for (int64_t i = 0; i < kWarmupSteps + s.steps; ++i) {
    if (i == kWarmupSteps) {
      if (unread) unread->wait();
      start = Clock::now();
    }
    const std::vector<int64_t> slot(static_cast<size_t>(s.rows), s.context + i);
    const at::Tensor logits = state->step_queued(first, slot, slot, i > 0 ? &feed : nullptr);
    // The engine's greedy pick of one-row streams (weighted_argmax_queued): max, the values and ids
    // side by side, one copy back.
    const auto best = logits.max(1);
    feed.ids = std::get<1>(best);
    const flexgen::HostCopy picks =
        state->copy_to_host(at::stack({std::get<0>(best).to(at::kFloat), feed.ids.to(at::kFloat)}));
    if (unread) unread->wait();
    unread = picks;
  }
  unread->wait();
  return seconds_since(start) * 1e3 / static_cast<double>(s.steps);
}

StepTiming time_decode_steps(const flexgen::LlamaModel& model, const StepSetup& s, bool graphs) {
  const std::unique_ptr<flexgen::DecodeState> owned = prefilled_state(model, s, graphs);
  flexgen::DecodeState& state = *owned;
  const int64_t V = model.config.vocab_size;

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
