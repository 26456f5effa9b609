// Parameters of the CUDA max-of-probabilities pick (max_prob_pick_kernel.cu). Plain C++ (no torch,
// no CUDA types) so that the .cu file compiles without libtorch headers.
#pragma once

#include <cstdint>

namespace flexgen {
namespace cuda_pick {

constexpr int kRowThreads = 1024;  // threads of a row's statistics: fixed, so its sums never depend on the launch
constexpr int kPickThreads = 256;
constexpr int kPickChunk = 8192;   // vocabulary ids a CTA of the pick covers

struct MaxProbParams {
  const float* logits;  // [R, V], row stride ld
  int64_t ld, V;
  int32_t nrows;        // distinct rows the streams use
  const int64_t* rows;  // [nrows]: their rows of `logits`
  double* row_max;      // [nrows] out: max of the row's logits (fp32 value)
  double* row_sum;      // [nrows] out: sum of exp(x - max) in fp64; NaN when a logit is not finite
  int32_t streams, most;  // streams and their most rows
  const int32_t* srow;    // [streams, most]: index into rows[] of each stream's row
  const double* sw;       // [streams, most]: its normalised weight (0 past the stream's rows)
  const int32_t* scount;  // [streams]: rows of each stream
  int32_t chunks;         // ceil(V / kPickChunk)
  float* part_val;        // [streams, chunks] out: the chunk's largest combined logit
  int32_t* part_id;       // [streams, chunks] out: its lowest id
};

// Launches the statistics kernel (one CTA a row) and the pick kernel (one CTA per stream and
// chunk) on `stream` (a cudaStream_t). Returns a cudaError_t value (0 = success).
int launch_max_prob_pick(const MaxProbParams& p, void* stream);

}  // namespace cuda_pick
}  // namespace flexgen
