#include "flexgen/decoder.h"

#include "flexgen/block_mask.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>

namespace flexgen {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// The row's mask shifted right by `pad` slots that nobody sees and that see nothing.
AttentionMask pad_mask(const AttentionMask& m, int64_t pad) {
  const int32_t g = m.spec.num_groups;
  AttentionMask out;
  out.spec.num_groups = g + 1;
  out.spec.causal = m.spec.causal;
  out.spec.visible.assign(static_cast<size_t>(g + 1) * (g + 1), 0);
  for (int32_t q = 0; q < g; ++q)
    for (int32_t k = 0; k < g; ++k) out.spec.set(q, k, m.spec.sees(q, k));
  out.group_ids.assign(static_cast<size_t>(pad), g);
  out.group_ids.insert(out.group_ids.end(), m.group_ids.begin(), m.group_ids.end());
  return out;
}

void validate(const std::vector<RowPlan>& rows, const std::vector<StreamPlan>& streams, const DecodeConfig& config) {
  if (rows.empty()) throw std::invalid_argument("decode: no rows");
  if (config.max_new_tokens < 1) throw std::invalid_argument("--max-new-tokens: must be at least 1");
  for (size_t r = 0; r < rows.size(); ++r) {
    const RowPlan& row = rows[r];
    const int64_t len = static_cast<int64_t>(row.tokens.size());
    const int64_t total = len + config.max_new_tokens;
    const std::string where = "decode: row " + std::to_string(r);
    if (len == 0) throw std::invalid_argument(where + " has no prompt tokens");
    if (row.mask.length() != total || static_cast<int64_t>(row.position_ids.size()) != total)
      throw std::invalid_argument(where + ": mask and position ids must cover prompt + max_new_tokens (" +
                                  std::to_string(total) + ") positions");
    for (int64_t p : row.first_logit_positions)
      if (p < 0 || p >= len) throw std::invalid_argument(where + ": first-logit position outside the prompt");
  }
  std::vector<int> owner(rows.size(), 0);
  for (const StreamPlan& s : streams) {
    if (s.rows.empty()) throw std::invalid_argument("decode: a stream has no rows");
    if (!s.weights.empty() && s.weights.size() != s.rows.size())
      throw std::invalid_argument("decode: a stream's weights do not match its rows");
    double total = 0;
    for (double w : s.weights) {
      if (!(w >= 0) || !std::isfinite(w)) throw std::invalid_argument("decode: weights must be finite and >= 0");
      total += w;
    }
    if (!s.weights.empty() && total <= 0) throw std::invalid_argument("decode: weights sum to zero");
    for (int32_t r : s.rows) {
      if (r < 0 || r >= static_cast<int32_t>(rows.size())) throw std::invalid_argument("decode: bad row index");
      ++owner[r];
    }
  }
  for (int n : owner)
    if (n != 1) throw std::invalid_argument("decode: every row must belong to exactly one stream");
}

// The distribution a stream samples from, as logits, from its rows' logits [B, V].
std::vector<float> combine(const StreamPlan& s, const at::Tensor& row_logits) {
  const int64_t vocab = row_logits.size(1);
  const size_t n = s.rows.size();
  std::vector<double> w(n, 1.0 / static_cast<double>(n));
  if (!s.weights.empty()) {
    double total = 0;
    for (double x : s.weights) total += x;
    for (size_t i = 0; i < n; ++i) w[i] = s.weights[i] / total;
  }
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

}  // namespace

AttentionMask causal_mask(int64_t length) {
  AttentionMask m;
  m.group_ids.assign(static_cast<size_t>(length), 0);
  m.spec.num_groups = 1;
  m.spec.visible = {1};
  m.spec.causal = true;
  return m;
}

std::vector<StreamResult> decode_streams(const LlamaModel& model, const Tokenizer& tokenizer,
                                         const std::vector<RowPlan>& rows, const std::vector<StreamPlan>& streams,
                                         const DecodeConfig& config, DecodeStats* stats) {
  validate(rows, streams, config);
  const int64_t B = static_cast<int64_t>(rows.size());
  int64_t lmax = 0;
  for (const RowPlan& r : rows) lmax = std::max<int64_t>(lmax, static_cast<int64_t>(r.tokens.size()));
  const int64_t total = lmax + config.max_new_tokens;
  if (model.config.max_position_embeddings > 0) {
    for (const RowPlan& r : rows) {
      const int64_t top = *std::max_element(r.position_ids.begin(), r.position_ids.end());
      if (top >= model.config.max_position_embeddings)
        throw std::invalid_argument("the prompt needs position " + std::to_string(top) + "; the model's context is " +
                                    std::to_string(model.config.max_position_embeddings));
    }
  }

  // Left-pad every row to lmax prompt slots.
  std::vector<AttentionMask> masks;
  masks.reserve(rows.size());
  at::Tensor tokens = at::full({B, lmax}, config.pad_id, at::kLong);
  at::Tensor positions = at::zeros({B, total}, at::kLong);
  std::vector<int64_t> pads(rows.size());
  bool all_last = true;
  for (int64_t r = 0; r < B; ++r) {
    const RowPlan& row = rows[r];
    const int64_t len = static_cast<int64_t>(row.tokens.size()), pad = lmax - len;
    pads[r] = pad;
    masks.push_back(pad_mask(row.mask, pad));
    auto tok = tokens.accessor<int64_t, 2>();
    auto pos = positions.accessor<int64_t, 2>();
    for (int64_t i = 0; i < len; ++i) tok[r][pad + i] = row.tokens[i];
    for (int64_t i = 0; i < len + config.max_new_tokens; ++i) pos[r][pad + i] = row.position_ids[i];
    if (!row.first_logit_positions.empty() &&
        !(row.first_logit_positions.size() == 1 && row.first_logit_positions[0] == len - 1))
      all_last = false;
  }
  // Rows that ask for it run through the block-sparse kernel (all rows of one
  // forward call share a kernel, so one such row puts the whole batch on it).
  std::vector<BlockMask> blocks;
  if (std::any_of(rows.begin(), rows.end(), [](const RowPlan& r) { return r.block_sparse; })) {
    blocks.reserve(masks.size());
    for (const AttentionMask& m : masks) blocks.push_back(build_block_mask(m, config.block_size));
  }
  const AttentionMaskRef mask_ref =
      blocks.empty() ? AttentionMaskRef::from_groups(masks) : AttentionMaskRef::from_groups(masks, blocks);
  KVCache cache = make_kv_cache(model, B, total);

  // Prefill.
  auto t0 = Clock::now();
  at::Tensor logits = llama_forward(model, cache, tokens, positions.narrow(1, 0, lmax), mask_ref,
                                    all_last ? LogitsMode::Last : LogitsMode::All);
  at::Tensor row_logits;
  if (all_last) {
    row_logits = logits.select(1, logits.size(1) - 1).contiguous();
  } else {
    std::vector<at::Tensor> picked;
    for (int64_t r = 0; r < B; ++r) {
      std::vector<int64_t> at_pos = rows[r].first_logit_positions;
      if (at_pos.empty()) at_pos.push_back(static_cast<int64_t>(rows[r].tokens.size()) - 1);
      for (int64_t& p : at_pos) p += pads[r];
      const at::Tensor idx = at::tensor(at_pos, at::kLong);
      picked.push_back(logits[r].index_select(0, idx).mean(0));
    }
    row_logits = at::stack(picked).contiguous();
  }
  if (stats) {
    stats->prefill_seconds += seconds_since(t0);
    for (const RowPlan& r : rows) stats->prefill_tokens += static_cast<int64_t>(r.tokens.size());
  }

  // Decode.
  t0 = Clock::now();
  std::vector<StreamResult> results(streams.size());
  std::vector<Sampler> samplers;
  for (const StreamPlan& s : streams) {
    SamplingOptions o = config.sampling;
    o.seed = s.seed;
    samplers.emplace_back(o);
  }
  std::vector<bool> done(streams.size(), false);
  std::vector<int64_t> next(static_cast<size_t>(B), config.pad_id);
  DecodeOptions text_options;
  text_options.skip_special_tokens = true;
  for (int64_t step = 0; step < config.max_new_tokens; ++step) {
    for (size_t s = 0; s < streams.size(); ++s) {
      if (done[s]) continue;
      std::vector<float> dist = combine(streams[s], row_logits);
      StreamResult& res = results[s];
      StepTrace trace;
      if (config.trace_top > 0) trace.top = top_tokens(dist, config.trace_top);
      const int32_t token = pick(samplers[s], dist);
      res.ids.push_back(token);
      res.text = tokenizer.decode(res.ids, text_options);
      if (config.trace_top > 0) {
        trace.position = lmax + step;
        trace.chosen = token;
        trace.text = res.text;
        res.trace.push_back(std::move(trace));
      }
      for (int32_t r : streams[s].rows) next[r] = token;
      const StopCriteria::Reason reason = config.stops.check(token, res.text);
      if (reason != StopCriteria::Reason::None) {
        res.stop = reason;
        done[s] = true;
      }
      if (stats) ++stats->decode_tokens;
    }
    if (std::all_of(done.begin(), done.end(), [](bool d) { return d; })) break;
    if (step + 1 == config.max_new_tokens) break;
    const at::Tensor step_tokens = at::tensor(next, at::kLong).view({B, 1});
    logits = llama_forward(model, cache, step_tokens, positions.narrow(1, lmax + step, 1).contiguous(), mask_ref,
                           LogitsMode::Last);
    row_logits = logits.select(1, 0).contiguous();
  }
  if (stats) stats->decode_seconds += seconds_since(t0);
  return results;
}

}  // namespace flexgen
