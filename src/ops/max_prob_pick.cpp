// The max-of-probabilities pick's checks and its CUDA kernel (flexgen/max_prob_pick.h).
#include "flexgen/max_prob_pick.h"

#include <stdexcept>
#include <string>

#include "cuda/max_prob_pick_cuda.h"

namespace flexgen {

std::vector<std::pair<int32_t, float>> max_prob_argmax(const at::Tensor& logits,
                                                       const std::vector<std::vector<int64_t>>& rows,
                                                       const std::vector<std::vector<double>>& weights) {
  auto bad = [](const std::string& what) { throw std::invalid_argument("max_prob_argmax: " + what); };
  if (!logits.defined() || logits.dim() != 2 || logits.scalar_type() != at::kFloat) bad("logits must be [rows, vocab] fp32");
  if (!logits.is_cuda()) bad("logits must be on a CUDA device");
  if (logits.size(1) < 1 || logits.size(1) >= (int64_t{1} << 31)) bad("vocabulary of " + std::to_string(logits.size(1)));
  if (weights.size() != rows.size()) bad("one weight list per stream");
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].empty() || weights[i].size() != rows[i].size()) bad("stream " + std::to_string(i) + ": rows and weights");
    for (int64_t r : rows[i])
      if (r < 0 || r >= logits.size(0)) bad("stream " + std::to_string(i) + ": row " + std::to_string(r) + " of " + std::to_string(logits.size(0)));
  }
  return max_prob_argmax_cuda(logits.contiguous(), rows, weights);
}

}  // namespace flexgen
