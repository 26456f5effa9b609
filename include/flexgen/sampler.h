// Picks the next token from logits: greedy (temperature 0) or sampling with
// temperature, top-k and top-p, reproducible from a seed. Pure C++.
#pragma once

#include <cstdint>
#include <random>

namespace flexgen {

struct SamplingOptions {
  double temperature = 0.0;  // 0 = greedy (argmax; the lowest id wins ties)
  int64_t top_k = 0;         // 0 = no limit
  double top_p = 1.0;        // nucleus mass in (0, 1]
  uint64_t seed = 0;

  bool greedy() const { return temperature <= 0.0; }
  // Throws std::invalid_argument naming the flag on out-of-range values.
  void validate() const;
};

class Sampler {
 public:
  explicit Sampler(const SamplingOptions& options);
  // Next token from `vocab` logits (fp32, contiguous). Non-finite logits are an error.
  int32_t sample(const float* logits, int64_t vocab);

 private:
  SamplingOptions options_;
  std::mt19937_64 rng_;
};

// Index of the largest value; the first one on ties.
int32_t argmax(const float* values, int64_t n);

}  // namespace flexgen
