// bench_decode_cuda --timeline: the per-CTA stamps of one graph-replayed decode step
// (cuda/step_timeline.h, FLEXGEN_CUDA_TIMELINE builds) grouped by launch, and each kernel kind's
// share of the step.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "cuda/step_timeline.h"

namespace bench_decode {

// Launches in the order they passed their waits. For each kind (and N): launches, and the means
// of span (this launch's last CTA end minus the previous launch's: its share of the step), post
// (its end minus its first CTA's return from the wait) and release (that return minus the previous
// launch's end), in us.
nlohmann::ordered_json timeline_summary(const std::vector<flexgen::cuda_timeline::Stamp>& stamps);

// One line a stamp: kind n id cta sm start waited end (ns).
void write_stamps(const std::string& path, const std::vector<flexgen::cuda_timeline::Stamp>& stamps);

}  // namespace bench_decode
