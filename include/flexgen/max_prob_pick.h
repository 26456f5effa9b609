// The greedy pick of max-of-probabilities streams (methods max and weighted_max) where the logits
// are, on a CUDA device: no copy of the logits back to the host.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace flexgen {

// logits [R, V] fp32 on a CUDA device; stream i combines rows rows[i] with normalised weights
// weights[i] by combine()'s MaxProb rule, log(max over its rows of w x softmax(row)) (fp64, rounded
// to fp32), and takes the largest (the lowest id on ties): its id and value. The softmax sums run
// in a fixed order of the row alone, so each stream's result depends on its rows' logits only (not
// on the other rows or streams of the call); they can differ from the host's combine() in the
// last bits. A value is NaN when one of the stream's rows holds a non-finite logit. One copy back.
// Throws std::invalid_argument for logits off CUDA or of another dtype, std::runtime_error on
// CUDA errors or in builds without CUDA.
std::vector<std::pair<int32_t, float>> max_prob_argmax(const at::Tensor& logits,
                                                       const std::vector<std::vector<int64_t>>& rows,
                                                       const std::vector<std::vector<double>>& weights);

}  // namespace flexgen
