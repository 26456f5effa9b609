// How a stream turns its rows' logits into the one distribution it picks from (private to
// generate): the ensemble rules of the methods (weighted mean of logits, max of probabilities),
// the top tokens of a step for traces, and the pick itself.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "flexgen/decode_plan.h"
#include "flexgen/sampler.h"

namespace flexgen {

// A stream's row weights, normalised to sum 1 (uniform when it has none).
std::vector<double> stream_weights(const StreamPlan& s);

// The distribution a stream samples from, as logits, from its rows' logits [rows, V] (fp32, host).
std::vector<float> combine(const StreamPlan& s, const at::Tensor& row_logits);

// The k most likely tokens of a distribution given as logits, with their probabilities.
std::vector<std::pair<int32_t, float>> top_tokens(const std::vector<float>& logits, int64_t k);

// Samples from a stream's combined logits; MaxProb streams may hold -inf for tokens no row allows.
int32_t pick(Sampler& sampler, std::vector<float>& dist);

// Greedy picks of Mean streams where the logits [R, V] are (the device's memory on CUDA): stream
// i's distribution is combine()'s for its rows with weights `weights[i]` (stream_weights: a row
// of weight 1 as it is; else the weighted sum in fp64, in its rows' order, rounded to fp32) and
// its pick the greedy sampler's (the lowest id among the largest); so each id and value is
// bitwise what combine() and pick() give on the host, and does not depend on the other streams.
// One copy back to the host for all streams.
std::vector<std::pair<int32_t, float>> weighted_argmax(const std::vector<std::vector<int64_t>>& rows,
                                                       const std::vector<std::vector<double>>& weights,
                                                       const at::Tensor& logits);

// weighted_argmax's picks queued on the logits' device, not read back: `both` [2, streams] fp32
// (the values, then the ids: exact below 2^24) and `ids` (int64 [streams]: a step's DeviceFeed).
struct QueuedPicks {
  at::Tensor both, ids;
};
QueuedPicks weighted_argmax_queued(const std::vector<std::vector<int64_t>>& rows,
                                   const std::vector<std::vector<double>>& weights, const at::Tensor& logits);
// The (id, value) pairs of such a `both`, wherever it is (copied to the host if need be).
std::vector<std::pair<int32_t, float>> picks_of(const at::Tensor& both);

// Greedy picks of Mean and MaxProb streams where the logits are (a CUDA device for MaxProb):
// weighted_argmax for the Mean streams, max_prob_argmax (flexgen/max_prob_pick.h) for the MaxProb
// ones; results in the streams' order.
std::vector<std::pair<int32_t, float>> greedy_picks(const std::vector<std::vector<int64_t>>& rows,
                                                    const std::vector<std::vector<double>>& weights,
                                                    const std::vector<Combine>& combines, const at::Tensor& logits);

}  // namespace flexgen
