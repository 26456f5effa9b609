// Stream combination rules and picks (stream_combine.h).
#include "stream_combine.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "flexgen/max_prob_pick.h"

namespace flexgen {

// A stream's row weights, normalised to sum 1 (uniform when it has none).
std::vector<double> stream_weights(const StreamPlan& s) {
  const size_t n = s.rows.size();
  std::vector<double> w(n, 1.0 / static_cast<double>(n));
  if (!s.weights.empty()) {
    double total = 0;
    for (double x : s.weights) total += x;
    for (size_t i = 0; i < n; ++i) w[i] = s.weights[i] / total;
  }
  return w;
}

// The distribution a stream samples from, as logits, from its rows' logits [B, V].
std::vector<float> combine(const StreamPlan& s, const at::Tensor& row_logits) {
  const int64_t vocab = row_logits.size(1);
  const size_t n = s.rows.size();
  const std::vector<double> w = stream_weights(s);
  std::vector<float> out(static_cast<size_t>(vocab));
  if (n == 1 && s.combine == Combine::Mean) {
    const float* src = row_logits[s.rows[0]].data_ptr<float>();
    std::copy(src, src + vocab, out.begin());
    return out;
  }
  if (s.combine == Combine::Mean) {
    std::vector<double> acc(static_cast<size_t>(vocab), 0.0);
    for (size_t i = 0; i < n; ++i) {
      const float* src = row_logits[s.rows[i]].data_ptr<float>();
      for (int64_t v = 0; v < vocab; ++v) acc[v] += w[i] * src[v];
    }
    for (int64_t v = 0; v < vocab; ++v) out[v] = static_cast<float>(acc[v]);
    return out;
  }
  // MaxProb: log of the element-wise max over rows of weight x softmax.
  std::vector<double> best(static_cast<size_t>(vocab), 0.0);
  for (size_t i = 0; i < n; ++i) {
    const float* src = row_logits[s.rows[i]].data_ptr<float>();
    const float mx = *std::max_element(src, src + vocab);
    double z = 0;
    for (int64_t v = 0; v < vocab; ++v) z += std::exp(static_cast<double>(src[v]) - mx);
    for (int64_t v = 0; v < vocab; ++v) best[v] = std::max(best[v], w[i] * std::exp(static_cast<double>(src[v]) - mx) / z);
  }
  for (int64_t v = 0; v < vocab; ++v)
    out[v] = best[v] > 0 ? static_cast<float>(std::log(best[v])) : -std::numeric_limits<float>::infinity();
  return out;
}

std::vector<std::pair<int32_t, float>> top_tokens(const std::vector<float>& logits, int64_t k) {
  const float mx = *std::max_element(logits.begin(), logits.end());
  double z = 0;
  for (float x : logits) z += std::exp(static_cast<double>(x) - mx);
  std::vector<int32_t> ids(logits.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
  k = std::min<int64_t>(k, static_cast<int64_t>(ids.size()));
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(),
                    [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  std::vector<std::pair<int32_t, float>> top;
  for (int64_t i = 0; i < k; ++i)
    top.emplace_back(ids[i], static_cast<float>(std::exp(static_cast<double>(logits[ids[i]]) - mx) / z));
  return top;
}

// Sampler over a stream's combined logits; MaxProb streams may hold -inf for tokens no row allows.
int32_t pick(Sampler& sampler, std::vector<float>& dist) {
  const float floor = -1e30f;
  for (float& x : dist)
    if (std::isinf(x) && x < 0) x = floor;
  return sampler.sample(dist.data(), static_cast<int64_t>(dist.size()));
}

namespace {
// A small host tensor on `device`, without waiting for the device's queued work (a GPU: through
// pinned memory, copied in queue order).
at::Tensor upload(const at::Tensor& host, const at::Device& device) {
  if (!device.is_cuda()) return host.to(device);
  return host.pin_memory().to(device, /*non_blocking=*/true);
}
}  // namespace

QueuedPicks weighted_argmax_queued(const std::vector<std::vector<int64_t>>& rows,
                                   const std::vector<std::vector<double>>& weights, const at::Tensor& logits) {
  // The ids come back as fp32 beside the values (one copy): exact below 2^24.
  if (logits.size(1) > (int64_t{1} << 24)) throw std::invalid_argument("weighted_argmax: vocabulary above 2^24 ids");
  const int64_t n = static_cast<int64_t>(rows.size());
  size_t most = 1;
  bool single = true;  // every stream one row (flex, restart, origin, ...)
  for (size_t i = 0; i < rows.size(); ++i) {
    most = std::max(most, rows[i].size());
    single = single && rows[i].size() == 1;
  }
  at::Tensor mixed;
  if (single) {
    // combine() takes a stream's one row as it is: no weights, no sum (the rows themselves when
    // the streams are rows 0 .. n - 1 in order).
    std::vector<int64_t> idx(static_cast<size_t>(n));
    bool in_order = n == logits.size(0);
    for (int64_t i = 0; i < n; ++i) {
      idx[i] = rows[i][0];
      in_order = in_order && idx[i] == i;
    }
    mixed = in_order ? logits : logits.index_select(0, upload(at::tensor(idx, at::kLong), logits.device()));
  } else {
    // combine()'s arithmetic, step j over every stream's j-th row: acc = 0; acc += w_j * x_j
    // (fp64, each product and each sum rounded on its own: separate elementwise kernels), then
    // rounded to fp32. Streams with fewer rows than j + 1 keep their sum at step j (0 x a
    // non-finite logit would not be 0); streams of one row take that row as it is.
    const int64_t m = static_cast<int64_t>(most);
    std::vector<int64_t> idx(static_cast<size_t>(m * n));
    std::vector<double> w(static_cast<size_t>(m * n), 0.0);
    std::vector<uint8_t> live(static_cast<size_t>(m * n), 0), one(static_cast<size_t>(n), 0);
    for (int64_t i = 0; i < n; ++i) {
      const size_t k = rows[i].size();
      one[i] = k == 1 ? 1 : 0;
      for (int64_t j = 0; j < m; ++j) {
        const bool has = static_cast<size_t>(j) < k && k > 1;
        idx[j * n + i] = has ? rows[i][j] : rows[i][0];
        w[j * n + i] = has ? weights[i][j] : 0.0;
        live[j * n + i] = has ? 1 : 0;
      }
    }
    const auto dev = logits.device();
    const at::Tensor index = upload(at::tensor(idx, at::kLong), dev);
    const at::Tensor wt = upload(at::tensor(w, at::kDouble), dev).view({m, n, 1});
    const at::Tensor keep = upload(at::tensor(live, at::kByte), dev).to(at::kBool).view({m, n, 1});
    at::Tensor acc = at::zeros({n, logits.size(1)}, logits.options().dtype(at::kDouble));
    for (int64_t j = 0; j < m; ++j) {
      const at::Tensor x = logits.index_select(0, index.narrow(0, j * n, n)).to(at::kDouble);
      acc = at::where(keep[j], acc + x * wt[j], acc);
    }
    mixed = acc.to(at::kFloat);
    if (std::find(one.begin(), one.end(), 1) != one.end())
      mixed = at::where(upload(at::tensor(one, at::kByte), dev).to(at::kBool).view({n, 1}),
                        logits.index_select(0, index.narrow(0, 0, n)), mixed);
  }
  const auto best = mixed.max(1);
  QueuedPicks q;
  q.ids = std::get<1>(best);
  // One copy back: the values and the ids side by side.
  q.both = at::stack({std::get<0>(best).to(at::kFloat), q.ids.to(at::kFloat)});
  return q;
}

std::vector<std::pair<int32_t, float>> picks_of(const at::Tensor& both) {
  const at::Tensor host = both.to(at::kCPU).contiguous();
  const int64_t n = host.size(1);
  const float* v = host.data_ptr<float>();
  std::vector<std::pair<int32_t, float>> out;
  out.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out.emplace_back(static_cast<int32_t>(v[n + i]), v[i]);
  return out;
}

std::vector<std::pair<int32_t, float>> weighted_argmax(const std::vector<std::vector<int64_t>>& rows,
                                                       const std::vector<std::vector<double>>& weights,
                                                       const at::Tensor& logits) {
  return picks_of(weighted_argmax_queued(rows, weights, logits).both);
}

std::vector<std::pair<int32_t, float>> greedy_picks(const std::vector<std::vector<int64_t>>& rows,
                                                    const std::vector<std::vector<double>>& weights,
                                                    const std::vector<Combine>& combines, const at::Tensor& logits) {
  std::vector<std::vector<int64_t>> rows_of[2];
  std::vector<std::vector<double>> weights_of[2];
  std::vector<size_t> at[2];  // stream indices of each kind
  for (size_t i = 0; i < rows.size(); ++i) {
    const int k = combines[i] == Combine::MaxProb ? 1 : 0;
    rows_of[k].push_back(rows[i]);
    weights_of[k].push_back(weights[i]);
    at[k].push_back(i);
  }
  std::vector<std::pair<int32_t, float>> out(rows.size());
  for (int k = 0; k < 2; ++k) {
    if (at[k].empty()) continue;
    const auto got = k == 0 ? weighted_argmax(rows_of[k], weights_of[k], logits)
                            : max_prob_argmax(logits, rows_of[k], weights_of[k]);
    for (size_t j = 0; j < got.size(); ++j) out[at[k][j]] = got[j];
  }
  return out;
}

}  // namespace flexgen
