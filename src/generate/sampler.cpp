#include "flexgen/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "flexgen/setting_error.h"

namespace flexgen {

void SamplingOptions::validate() const {
  if (!(temperature >= 0.0) || !std::isfinite(temperature))
    throw InvalidSetting(Setting::Temperature, "", "must be a finite number >= 0");
  if (top_k < 0) throw InvalidSetting(Setting::TopK, "", "must be >= 0");
  if (!(top_p > 0.0 && top_p <= 1.0)) throw InvalidSetting(Setting::TopP, "", "must be in (0, 1]");
}

Sampler::Sampler(const SamplingOptions& options) : options_(options), rng_(options.seed) {
  options_.validate();
}

int32_t argmax(const float* values, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i) {
    if (values[i] > values[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

int32_t Sampler::sample(const float* logits, int64_t vocab) {
  if (vocab <= 0) throw std::invalid_argument("sampler: empty logits");
  for (int64_t i = 0; i < vocab; ++i) {
    if (!std::isfinite(logits[i]))
      throw std::runtime_error("the model's logits are not finite (NaN or infinite; token " + std::to_string(i) + ")");
  }
  if (options_.greedy()) return argmax(logits, vocab);

  // Candidates sorted by logit (descending, ties by id), cut by top-k.
  std::vector<int32_t> ids(static_cast<size_t>(vocab));
  std::iota(ids.begin(), ids.end(), 0);
  const int64_t k = options_.top_k > 0 ? std::min<int64_t>(options_.top_k, vocab) : vocab;
  auto by_logit = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), by_logit);
  ids.resize(static_cast<size_t>(k));

  // Softmax at the temperature, in double.
  const double max_logit = logits[ids[0]];
  std::vector<double> probs(ids.size());
  double total = 0.0;
  for (size_t i = 0; i < ids.size(); ++i) {
    probs[i] = std::exp((logits[ids[i]] - max_logit) / options_.temperature);
    total += probs[i];
  }
  for (double& p : probs) p /= total;

  // Nucleus: the smallest prefix whose mass reaches top_p.
  size_t keep = probs.size();
  if (options_.top_p < 1.0) {
    double mass = 0.0;
    for (size_t i = 0; i < probs.size(); ++i) {
      mass += probs[i];
      if (mass >= options_.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  double kept = 0.0;
  for (size_t i = 0; i < keep; ++i) kept += probs[i];
  // One uniform draw in [0, kept) from 53 random bits: identical on every platform.
  const double u = static_cast<double>(rng_() >> 11) * (1.0 / 9007199254740992.0) * kept;
  double acc = 0.0;
  for (size_t i = 0; i < keep; ++i) {
    acc += probs[i];
    if (u < acc) return ids[i];
  }
  return ids[keep - 1];
}

}  // namespace flexgen
