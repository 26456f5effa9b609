// Per-CTA stamps of the decode step's kernels, for finding where a step's time goes inside the
// step (kernels overlap there; timed alone they do not). Only builds configured with
// -DFLEXGEN_CUDA_TIMELINE=ON stamp (the kernels of other builds have no stamping code); the
// stamped kernels: the one-row and multi-row decode linears, the RMSNorm kernels, the decode
// attention. Plain C++.
#pragma once

#include <cstdint>
#include <vector>

namespace flexgen {
namespace cuda_timeline {

// One CTA of one launch: %globaltimer (ns) at its start, after its wait for the previous kernel
// and at its end; `id` tells launches apart (the weight or the K cache the launch reads).
struct Stamp {
  uint64_t start = 0, waited = 0, end = 0;
  const void* id = nullptr;
  int32_t kind = 0;  // Kind (+ the linear's epilogue)
  int32_t n = 0;     // the linear's N, the norm's length, the attention's key count
  int32_t cta = 0, sm = 0;
};

enum Kind : int32_t { kAttention = 1, kLinear = 10, kNorm = 20, kAddNorm = 21 };

// Whether this build stamps (FLEXGEN_CUDA_TIMELINE).
bool built();
// Forgets every stamp so far (waits for the device first).
void clear();
// The stamps since clear(), at most 65536 a kernel file (waits for the device first).
std::vector<Stamp> read();

// A kernel file's buffer: registered once by FLEXGEN_TIMELINE_UNIT (step_timeline.cuh).
bool register_unit(void (*clear_unit)(), void (*read_unit)(std::vector<Stamp>&));

}  // namespace cuda_timeline
}  // namespace flexgen
