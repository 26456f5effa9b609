#include "flexgen/decoder.h"

#include "flexgen/block_mask.h"
#include "flexgen/block_sparse_attention_cuda.h"
#include "flexgen/cuda_graph.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
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

}  // namespace

AttentionMask causal_mask(int64_t length) {
  AttentionMask m;
  m.group_ids.assign(static_cast<size_t>(length), 0);
  m.spec.num_groups = 1;
  m.spec.visible = {1};
  m.spec.causal = true;
  return m;
}

namespace {

// Waits for the work queued on t's device (a no-op copy of one element back to the host).
void cuda_synchronize(const at::Tensor& t) { (void)t.reshape({-1}).narrow(0, 0, 1).cpu(); }

// The decode state of one job in flight: its cache rows, masks and streams.
struct ActiveJob {
  size_t job = 0;
  int64_t r0 = 0, nrows = 0;      // cache rows [r0, r0 + nrows)
  int64_t lmax = 0;               // prompt slots (rows left-padded to this)
  int64_t step = 0;               // tokens sampled so far by every stream of the job
  std::vector<std::vector<int64_t>> positions;  // per row: RoPE ids of slots 0 .. lmax + max_new
  std::vector<StreamResult> results;
  std::vector<Sampler> samplers;
  std::vector<bool> done;
  std::vector<int64_t> next;      // per row: the token fed at the next step
};

class Scheduler {
 public:
  Scheduler(const LlamaModel& model, const Tokenizer& tokenizer, const std::vector<DecodeJob>& jobs,
            const DecodeConfig& config, int64_t in_flight,
            const std::function<void(size_t, std::vector<StreamResult>)>& on_done, DecodeStats* stats)
      : model_(model), tok_(tokenizer), jobs_(jobs), cfg_(config), on_done_(on_done), stats_(stats),
        cuda_(model.device.is_cuda()) {
    int64_t rows_per_job = 1;
    for (const DecodeJob& j : jobs) {
      validate(j.rows, j.streams, config);
      rows_per_job = std::max<int64_t>(rows_per_job, static_cast<int64_t>(j.rows.size()));
      slots_len_ = std::max(slots_len_, prompt_len(j) + config.max_new_tokens);
      if (model.config.max_position_embeddings > 0) {
        for (const RowPlan& r : j.rows) {
          const int64_t top = *std::max_element(r.position_ids.begin(), r.position_ids.end());
          if (top >= model.config.max_position_embeddings)
            throw std::invalid_argument("the prompt needs position " + std::to_string(top) +
                                        "; the model's context is " +
                                        std::to_string(model.config.max_position_embeddings));
        }
      }
    }
    if (in_flight < 1) throw std::invalid_argument("decode: at least one job in flight");
    slots_ = std::min<int64_t>(in_flight, static_cast<int64_t>(jobs.size()));
    rows_per_slot_ = rows_per_job;
    R_ = slots_ * rows_per_slot_;
    block_sparse_ = cuda_;
    for (const DecodeJob& j : jobs)
      for (const RowPlan& r : j.rows) block_sparse_ = block_sparse_ || r.block_sparse;
    text_options_.skip_special_tokens = true;
  }

  void run() {
    if (jobs_.empty()) return;
    cache_ = make_kv_cache(model_, R_, slots_len_);
    // Rows without a job attend under a one-group causal mask at slot 0 (results unused).
    idle_mask_ = causal_mask(slots_len_);
    row_masks_.assign(static_cast<size_t>(R_), idle_mask_);
    if (block_sparse_) {
      idle_block_ = build_block_mask(idle_mask_, cfg_.block_size);
      row_blocks_.assign(static_cast<size_t>(R_), idle_block_);
    }
    if (cuda_) {
      idle_dev_ = upload_block_mask(idle_block_, idle_mask_, model_.device);
      row_dev_.assign(static_cast<size_t>(R_), idle_dev_);
      table_ = make_device_mask_table(R_, cfg_.block_size, model_.device);
    }
    slot_job_.assign(static_cast<size_t>(slots_), -1);
    active_.resize(static_cast<size_t>(slots_));
    size_t next_job = 0;
    int64_t running = 0;
    while (true) {
      // Fill free slots; a job may finish at its first token (then its slot is free again).
      while (next_job < jobs_.size()) {
        std::vector<std::pair<int64_t, size_t>> admits;
        for (int64_t s = 0; s < slots_ && next_job < jobs_.size(); ++s)
          if (slot_job_[s] < 0) admits.emplace_back(s, next_job++);
        if (admits.empty()) break;
        admit_all(admits);
        for (const auto& ad : admits) {
          if (finished(active_[ad.first])) {
            finish(ad.first);
          } else {
            ++running;
          }
        }
      }
      if (running == 0) break;
      step();
      for (int64_t s = 0; s < slots_; ++s) {
        if (slot_job_[s] >= 0 && finished(active_[s])) {
          finish(s);
          --running;
        }
      }
    }
  }

 private:
  bool finished(const ActiveJob& a) const {
    return a.step >= cfg_.max_new_tokens || std::all_of(a.done.begin(), a.done.end(), [](bool d) { return d; });
  }

  void finish(int64_t s) {
    ActiveJob& a = active_[s];
    const size_t job = a.job;
    std::vector<StreamResult> results = std::move(a.results);
    for (int64_t i = 0; i < a.nrows; ++i) {
      const size_t r = static_cast<size_t>(a.r0 + i);
      row_masks_[r] = idle_mask_;
      if (block_sparse_) row_blocks_[r] = idle_block_;
      if (cuda_) row_dev_[r] = idle_dev_;
    }
    a = ActiveJob();
    slot_job_[s] = -1;
    on_done_(job, std::move(results));
  }

  // Samples one token for every live stream of the job from its rows' logits [nrows, V] (CPU).
  void sample(ActiveJob& a, const at::Tensor& row_logits) {
    const DecodeJob& j = jobs_[a.job];
    for (size_t s = 0; s < j.streams.size(); ++s) {
      if (a.done[s]) continue;
      std::vector<float> dist = combine(j.streams[s], row_logits);
      StepTrace trace;
      if (cfg_.trace_top > 0) trace.top = top_tokens(dist, cfg_.trace_top);
      accept(a, s, pick(a.samplers[s], dist), std::move(trace));
    }
    ++a.step;
  }

  // Stream s of the job takes `token`.
  void accept(ActiveJob& a, size_t s, int32_t token, StepTrace trace) {
    const DecodeJob& j = jobs_[a.job];
    StreamResult& res = a.results[s];
    res.ids.push_back(token);
    res.text = tok_.decode(res.ids, text_options_);
    if (cfg_.trace_top > 0) {
      trace.position = a.lmax + a.step;
      trace.chosen = token;
      trace.text = res.text;
      res.trace.push_back(std::move(trace));
    }
    for (int32_t r : j.streams[s].rows) a.next[r] = token;
    const StopCriteria::Reason reason = cfg_.stops.check(token, res.text);
    if (reason != StopCriteria::Reason::None) {
      res.stop = reason;
      a.done[s] = true;
    }
    if (stats_) ++stats_->decode_tokens;
  }

  // Greedy decoding on CUDA without traces, all streams Mean: each stream's weighted mean of its
  // rows' logits and its argmax are computed on the device; only the chosen ids come back.
  bool device_pick() const {
    if (!cuda_ || !cfg_.sampling.greedy() || cfg_.trace_top > 0) return false;
    for (int64_t s = 0; s < slots_; ++s) {
      if (slot_job_[s] < 0) continue;
      for (const StreamPlan& st : jobs_[active_[s].job].streams)
        if (st.combine != Combine::Mean) return false;
    }
    return true;
  }

  void pick_on_device(const at::Tensor& logits) {
    std::vector<std::pair<int64_t, size_t>> picks;  // (slot, stream) of every live stream
    std::vector<float> w;
    for (int64_t s = 0; s < slots_; ++s) {
      if (slot_job_[s] < 0) continue;
      const ActiveJob& a = active_[s];
      const auto& streams = jobs_[a.job].streams;
      for (size_t k = 0; k < streams.size(); ++k) {
        if (a.done[k]) continue;
        const StreamPlan& st = streams[k];
        const std::vector<double> row_w = stream_weights(st);
        const size_t at = w.size();
        w.resize(at + static_cast<size_t>(R_), 0.f);
        for (size_t i = 0; i < st.rows.size(); ++i)
          w[at + static_cast<size_t>(a.r0 + st.rows[i])] += static_cast<float>(row_w[i]);
        picks.emplace_back(s, k);
      }
    }
    const int64_t n = static_cast<int64_t>(picks.size());
    const at::Tensor weights = at::from_blob(w.data(), {n, R_}, at::kFloat).to(logits.device());
    const auto best = at::matmul(weights, logits).max(1);
    const at::Tensor values = std::get<0>(best).cpu(), ids = std::get<1>(best).cpu();
    for (int64_t i = 0; i < n; ++i) {
      if (!std::isfinite(values[i].item<float>()))
        throw std::runtime_error("sampler: the logits of a stream are not finite");
      accept(active_[picks[i].first], picks[i].second, static_cast<int32_t>(ids[i].item<int64_t>()), StepTrace());
    }
    for (int64_t s = 0; s < slots_; ++s)
      if (slot_job_[s] >= 0) ++active_[s].step;
  }

  // Whether the job's first token comes from each row's last prompt position (then jobs of
  // neighbouring slots can be prefilled in one forward pass).
  static bool last_position_only(const DecodeJob& j) {
    for (const RowPlan& row : j.rows) {
      const int64_t len = static_cast<int64_t>(row.tokens.size());
      if (!row.first_logit_positions.empty() &&
          !(row.first_logit_positions.size() == 1 && row.first_logit_positions[0] == len - 1))
        return false;
    }
    return true;
  }

  // Admits jobs into free slots (ascending): neighbouring slots whose jobs need only the last
  // position's logits share one prefill forward pass (rows left-padded to one length), up to
  // kPrefillTokens tokens; the others are prefilled alone.
  void admit_all(const std::vector<std::pair<int64_t, size_t>>& admits) {
    constexpr int64_t kPrefillTokens = 16384;
    size_t i = 0;
    while (i < admits.size()) {
      size_t k = i + 1;
      int64_t lmax = prompt_len(jobs_[admits[i].second]);
      if (last_position_only(jobs_[admits[i].second])) {
        while (k < admits.size() && admits[k].first == admits[k - 1].first + 1 &&
               last_position_only(jobs_[admits[k].second])) {
          const int64_t l = std::max(lmax, prompt_len(jobs_[admits[k].second]));
          if (static_cast<int64_t>(k - i + 1) * rows_per_slot_ * l > kPrefillTokens) break;
          lmax = l;
          ++k;
        }
      }
      admit_group(std::vector<std::pair<int64_t, size_t>>(admits.begin() + static_cast<std::ptrdiff_t>(i),
                                                          admits.begin() + static_cast<std::ptrdiff_t>(k)));
      i = k;
    }
  }

  static int64_t prompt_len(const DecodeJob& j) {
    int64_t lmax = 0;
    for (const RowPlan& r : j.rows) lmax = std::max<int64_t>(lmax, static_cast<int64_t>(r.tokens.size()));
    return lmax;
  }

  // Prefills the jobs of consecutive slots in one forward pass and samples their first tokens.
  // Rows of a slot beyond its job's rows are fed one padding token under the idle mask.
  void admit_group(const std::vector<std::pair<int64_t, size_t>>& group) {
    const auto t0 = Clock::now();
    int64_t lmax = 0;
    for (const auto& g : group) lmax = std::max(lmax, prompt_len(jobs_[g.second]));
    const bool single = group.size() == 1;
    const int64_t first_row = group.front().first * rows_per_slot_;
    const int64_t B = single ? static_cast<int64_t>(jobs_[group[0].second].rows.size())
                             : static_cast<int64_t>(group.size()) * rows_per_slot_;
    std::vector<AttentionMask> masks(static_cast<size_t>(B));
    at::Tensor tokens = at::full({B, lmax}, cfg_.pad_id, at::kLong);
    at::Tensor positions = at::zeros({B, lmax}, at::kLong);
    std::vector<int64_t> pads(static_cast<size_t>(B), lmax - 1);
    std::vector<bool> real(static_cast<size_t>(B), false);
    auto tok = tokens.accessor<int64_t, 2>();
    auto pos = positions.accessor<int64_t, 2>();
    for (const auto& [slot, job] : group) {
      const DecodeJob& j = jobs_[job];
      ActiveJob& a = active_[slot];
      a = ActiveJob();
      a.job = job;
      a.nrows = static_cast<int64_t>(j.rows.size());
      a.r0 = slot * rows_per_slot_;
      a.lmax = lmax;
      for (int64_t r = 0; r < a.nrows; ++r) {
        const RowPlan& row = j.rows[r];
        const int64_t b = a.r0 - first_row + r;  // row within this forward pass
        const int64_t len = static_cast<int64_t>(row.tokens.size()), pad = lmax - len;
        pads[b] = pad;
        real[b] = true;
        masks[b] = pad_mask(row.mask, pad);
        std::vector<int64_t> ids(static_cast<size_t>(lmax + cfg_.max_new_tokens), 0);
        for (int64_t i = 0; i < len + cfg_.max_new_tokens; ++i) ids[pad + i] = row.position_ids[i];
        for (int64_t i = 0; i < len; ++i) {
          tok[b][pad + i] = row.tokens[i];
          pos[b][pad + i] = ids[pad + i];
        }
        a.positions.push_back(std::move(ids));
      }
    }
    for (int64_t b = 0; b < B; ++b)
      if (!real[b]) masks[b] = idle_mask_;
    std::vector<BlockMask> blocks;
    std::vector<DeviceBlockMask> dev;
    if (block_sparse_)
      for (int64_t b = 0; b < B; ++b) blocks.push_back(real[b] ? build_block_mask(masks[b], cfg_.block_size) : idle_block_);
    AttentionMaskRef ref = block_sparse_ ? AttentionMaskRef::from_groups(masks, blocks) : AttentionMaskRef::from_groups(masks);
    if (cuda_) {
      for (int64_t b = 0; b < B; ++b)
        dev.push_back(real[b] ? upload_block_mask(blocks[b], masks[b], model_.device) : idle_dev_);
      ref.device_blocks = &dev;
    }
    KVCache rows = kv_cache_rows(cache_, first_row, B);
    const bool all_last = single ? last_position_only(jobs_[group[0].second]) : true;
    at::Tensor logits = llama_forward(model_, rows, tokens, positions, ref, all_last ? LogitsMode::Last : LogitsMode::All);
    at::Tensor row_logits;
    if (all_last) {
      row_logits = logits.select(1, logits.size(1) - 1);
    } else {
      const DecodeJob& j = jobs_[group[0].second];
      std::vector<at::Tensor> picked;
      for (int64_t r = 0; r < B; ++r) {
        std::vector<int64_t> at_pos = j.rows[r].first_logit_positions;
        if (at_pos.empty()) at_pos.push_back(static_cast<int64_t>(j.rows[r].tokens.size()) - 1);
        for (int64_t& p : at_pos) p += pads[r];
        const at::Tensor idx = at::tensor(at_pos, at::kLong).to(logits.device());
        picked.push_back(logits[r].index_select(0, idx).mean(0));
      }
      row_logits = at::stack(picked);
    }
    row_logits = row_logits.to(at::kCPU).contiguous();
    for (int64_t b = 0; b < B; ++b) {
      if (!real[b]) continue;
      row_masks_[first_row + b] = std::move(masks[b]);
      if (block_sparse_) row_blocks_[first_row + b] = std::move(blocks[b]);
      if (cuda_) row_dev_[first_row + b] = std::move(dev[b]);
    }
    if (stats_) {
      stats_->prefill_seconds += seconds_since(t0);
      for (const auto& g : group)
        for (const RowPlan& r : jobs_[g.second].rows) stats_->prefill_tokens += static_cast<int64_t>(r.tokens.size());
    }
    const auto t1 = Clock::now();
    for (const auto& [slot, job] : group) {
      const DecodeJob& j = jobs_[job];
      ActiveJob& a = active_[slot];
      a.results.resize(j.streams.size());
      for (const StreamPlan& st : j.streams) {
        SamplingOptions o = cfg_.sampling;
        o.seed = st.seed;
        a.samplers.emplace_back(o);
      }
      a.done.assign(j.streams.size(), false);
      a.next.assign(static_cast<size_t>(a.nrows), cfg_.pad_id);
      sample(a, row_logits.narrow(0, a.r0 - first_row, a.nrows));
      slot_job_[slot] = static_cast<int64_t>(job);
    }
    if (stats_) stats_->decode_seconds += seconds_since(t1);
  }

  // One decode step of every row; rows of a live job feed their last token.
  void step() {
    const auto t0 = Clock::now();
    std::vector<int64_t> host(static_cast<size_t>(3 * R_), 0);  // tokens | positions | slots
    int64_t* tokens = host.data();
    int64_t* positions = tokens + R_;
    int64_t* slots = positions + R_;
    std::fill(tokens, tokens + R_, cfg_.pad_id);
    std::vector<std::pair<int64_t, int64_t>> spans;  // live jobs' rows, in slot order
    for (int64_t s = 0; s < slots_; ++s) {
      if (slot_job_[s] < 0) continue;
      ActiveJob& a = active_[s];
      const int64_t slot = a.lmax + a.step - 1;  // where the last sampled token goes
      for (int64_t i = 0; i < a.nrows; ++i) {
        tokens[a.r0 + i] = a.next[i];
        positions[a.r0 + i] = a.positions[i][slot];
        slots[a.r0 + i] = slot;
      }
      spans.emplace_back(a.r0, a.nrows);
    }
    const auto f0 = Clock::now();
    at::Tensor logits = cuda_ ? step_cuda(host) : step_cpu(host);
    if (cuda_) cuda_synchronize(logits);
    if (stats_) {
      ++stats_->decode_steps;
      stats_->step_forward_seconds += seconds_since(f0);
    }
    if (device_pick()) {
      pick_on_device(logits);
      if (stats_) stats_->decode_seconds += seconds_since(t0);
      return;
    }
    // Logits of the live rows only, gathered on the device, then one copy to the host.
    int64_t live = 0;
    for (const auto& sp : spans) live += sp.second;
    at::Tensor picked = logits;
    if (live != R_) {
      std::vector<int64_t> idx;
      for (const auto& sp : spans)
        for (int64_t i = 0; i < sp.second; ++i) idx.push_back(sp.first + i);
      picked = logits.index_select(0, at::tensor(idx, at::kLong).to(logits.device()));
    }
    const at::Tensor cpu = picked.to(at::kCPU).contiguous();
    int64_t at_row = 0;
    for (int64_t s = 0; s < slots_; ++s) {
      if (slot_job_[s] < 0) continue;
      ActiveJob& a = active_[s];
      sample(a, cpu.narrow(0, at_row, a.nrows));
      at_row += a.nrows;
    }
    if (stats_) stats_->decode_seconds += seconds_since(t0);
  }

  at::Tensor step_cpu(const std::vector<int64_t>& host) {
    const at::Tensor all = at::tensor(host, at::kLong).view({3, R_});
    StepInputs in;
    in.tokens = all[0].view({R_, 1});
    in.positions = all[1].view({R_, 1});
    in.slots = all[2];
    in.rows = at::arange(R_, at::kLong);
    const std::vector<int64_t> q_pos(host.begin() + 2 * R_, host.end());
    AttentionMaskRef ref =
        block_sparse_ ? AttentionMaskRef::from_groups(row_masks_, row_blocks_) : AttentionMaskRef::from_groups(row_masks_);
    ref.row_q_offsets = &q_pos;
    return llama_step(model_, cache_, in, ref);
  }

  at::Tensor step_cuda(const std::vector<int64_t>& host) {
    if (!static_in_.defined()) {
      static_in_ = at::zeros({3, R_}, at::TensorOptions().dtype(at::kLong).device(model_.device));
      staging_ = at::empty({3, R_}, at::TensorOptions().dtype(at::kLong).pinned_memory(true));
      step_in_.tokens = static_in_[0].view({R_, 1});
      step_in_.positions = static_in_[1].view({R_, 1});
      step_in_.slots = static_in_[2];
      step_in_.rows = at::arange(R_, at::TensorOptions().dtype(at::kLong).device(model_.device));
    }
    // The previous step's copy finished: its logits were read on the host since.
    std::copy(host.begin(), host.end(), staging_.data_ptr<int64_t>());
    static_in_.copy_(staging_, /*non_blocking=*/true);
    std::vector<DeviceMaskRef> refs(static_cast<size_t>(R_));
    for (int64_t r = 0; r < R_; ++r) refs[r] = DeviceMaskRef{&row_dev_[r], host[2 * R_ + r], 0};
    update_device_mask_table(table_, refs);
    AttentionMaskRef ref = AttentionMaskRef::from_groups(row_masks_);
    ref.device_table = &table_;
    if (!cfg_.cuda_graphs) return llama_step(model_, cache_, step_in_, ref);
    if (!graph_) graph_ = std::make_unique<CudaGraph>([&] { graph_out_ = llama_step(model_, cache_, step_in_, ref); });
    graph_->replay();
    return graph_out_;
  }

  const LlamaModel& model_;
  const Tokenizer& tok_;
  const std::vector<DecodeJob>& jobs_;
  const DecodeConfig& cfg_;
  const std::function<void(size_t, std::vector<StreamResult>)>& on_done_;
  DecodeStats* stats_;
  bool cuda_;
  bool block_sparse_ = false;
  int64_t slots_ = 0, rows_per_slot_ = 1, R_ = 0, slots_len_ = 0;
  DecodeOptions text_options_;
  KVCache cache_;
  AttentionMask idle_mask_;
  BlockMask idle_block_;
  DeviceBlockMask idle_dev_;
  std::vector<AttentionMask> row_masks_;
  std::vector<BlockMask> row_blocks_;
  std::vector<DeviceBlockMask> row_dev_;
  DeviceMaskTable table_;
  std::vector<int64_t> slot_job_;
  std::vector<ActiveJob> active_;
  at::Tensor static_in_, staging_, graph_out_;
  StepInputs step_in_;
  std::unique_ptr<CudaGraph> graph_;
};

}  // namespace

void decode_jobs(const LlamaModel& model, const Tokenizer& tokenizer, const std::vector<DecodeJob>& jobs,
                 const DecodeConfig& config, int64_t in_flight,
                 const std::function<void(size_t, std::vector<StreamResult>)>& on_done, DecodeStats* stats) {
  Scheduler(model, tokenizer, jobs, config, in_flight, on_done, stats).run();
}

std::vector<StreamResult> decode_streams(const LlamaModel& model, const Tokenizer& tokenizer,
                                         const std::vector<RowPlan>& rows, const std::vector<StreamPlan>& streams,
                                         const DecodeConfig& config, DecodeStats* stats) {
  std::vector<DecodeJob> jobs(1);
  jobs[0].rows = rows;
  jobs[0].streams = streams;
  std::vector<StreamResult> out;
  decode_jobs(model, tokenizer, jobs, config, 1, [&](size_t, std::vector<StreamResult> r) { out = std::move(r); },
              stats);
  return out;
}

}  // namespace flexgen
