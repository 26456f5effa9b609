// bench_decode_cuda's whole step: the model's own decode path (flexgen::DecodeState, StepSetup::rows rows), a prompt
// of `context` random tokens prefilled under a causal mask, then one-token steps timed on the host.
#pragma once

#include <cstdint>
#include <vector>

#include "cuda/step_timeline.h"
#include "flexgen/llama.h"

namespace bench_decode {

struct StepSetup {
  int64_t context = 600;  // prompt tokens prefilled before the steps
  int64_t steps = 64;     // timed steps
  int64_t block_size = 128;
  uint64_t seed = 0;      // the prompt's and the fed tokens' ids
  int64_t rows = 1;       // rows prefilled and stepped together (each its own random prompt)
  bool timeline = false;  // with graphs: the last step's kernel stamps (FLEXGEN_CUDA_TIMELINE builds)
};

// Steps run before the timed ones: the first captures the CUDA graph (with graphs on), the second is
// its first replay.
constexpr int64_t kWarmupSteps = 2;

// The DecodeState's cache length: context + steps + 8 (room for the warm-up steps).
int64_t step_cache_length(const StepSetup& setup);

struct StepTiming {
  bool graphs = true;
  std::vector<double> ms;  // each timed step: DecodeState::step() (it returns once the logits are computed)
  double median_ms = 0;
  double min_ms = 0;
  double max_ms = 0;
  std::vector<flexgen::cuda_timeline::Stamp> stamps;  // setup.timeline: the last timed step's
};

// A fresh DecodeState (`rows` rows, default options but `graphs`) over `model`: prefill, kWarmupSteps
// untimed steps, then `steps` timed ones, each feeding a random token at the next slot.
StepTiming time_decode_steps(const flexgen::LlamaModel& model, const StepSetup& setup, bool graphs);

struct PrefillTiming {
  std::vector<double> enqueue_ms;  // each timed prefill: until DecodeState::prefill returned
  std::vector<double> ms;          // each timed prefill: until its logits were on the host
};

// A fresh DecodeState (`rows` rows) over `model`: one untimed prefill of `context` random tokens a
// row under a causal mask, then `reps` timed ones of the same prompt; `profiled`: then one more,
// the only work queued while the CUDA profiler collects (cuda_profiler.h).
PrefillTiming time_prefills(const flexgen::LlamaModel& model, const StepSetup& setup, int64_t reps,
                            bool profiled = false);

// Overlapped steps, as the engine runs greedy decoding (DecodeConfig::overlap_steps): each step is
// queued before the previous step's picks are read, its tokens that step's argmax on the device,
// every step's picks copied back. Returns the mean ms a step over `steps` (graphs on; after
// kWarmupSteps).
double time_overlapped_steps(const flexgen::LlamaModel& model, const StepSetup& setup);

}  // namespace bench_decode
