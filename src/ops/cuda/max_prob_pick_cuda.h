// Host side of the CUDA max-of-probabilities pick (flexgen/max_prob_pick.h; kernels in
// max_prob_pick_kernel.cu).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace flexgen {

// max_prob_argmax on checked arguments: logits [R, V] fp32, contiguous, on a CUDA device.
std::vector<std::pair<int32_t, float>> max_prob_argmax_cuda(const at::Tensor& logits,
                                                            const std::vector<std::vector<int64_t>>& rows,
                                                            const std::vector<std::vector<double>>& weights);

}  // namespace flexgen
