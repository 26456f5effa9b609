// The scheduler of decode_jobs (decoder.h): slots, admission of jobs into free rows (grouped
// prefill of neighbouring slots), continuous batching, and per stream the picks, stop checks and
// traces. The device side (cache, masks, steps) is the model's DecodeState.
#include "flexgen/decoder.h"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <unordered_map>

#include "flexgen/decode_state.h"
#include "kv_store.h"
#include "stream_combine.h"

namespace flexgen {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// The row's mask with `pad` slots that nobody sees and that see nothing inserted before slot `at`
// (at 0: the row shifted right; at > 0: after its reusable prefix).
AttentionMask pad_mask(const AttentionMask& m, int64_t pad, int64_t at) {
  const int32_t g = m.spec.num_groups;
  AttentionMask out;
  out.spec.num_groups = g + 1;
  out.spec.causal = m.spec.causal;
  out.spec.visible.assign(static_cast<size_t>(g + 1) * (g + 1), 0);
  for (int32_t q = 0; q < g; ++q)
    for (int32_t k = 0; k < g; ++k) out.spec.set(q, k, m.spec.sees(q, k));
  out.group_ids.reserve(m.group_ids.size() + static_cast<size_t>(pad));
  out.group_ids.insert(out.group_ids.end(), m.group_ids.begin(), m.group_ids.begin() + at);
  out.group_ids.insert(out.group_ids.end(), static_cast<size_t>(pad), g);
  out.group_ids.insert(out.group_ids.end(), m.group_ids.begin() + at, m.group_ids.end());
  return out;
}

// The longest prefix (at most `limit` positions) over which the row's mask is plain causal: each
// position sees exactly the positions before it and itself. Its K/V then depend on its token and
// position ids alone.
int64_t causal_prefix(const AttentionMask& m, int64_t limit) {
  if (!m.spec.causal) return 0;
  std::vector<int32_t> seen;  // the distinct groups of the positions so far
  for (int64_t q = 0; q < limit; ++q) {
    const int32_t gq = m.group_ids[static_cast<size_t>(q)];
    if (std::find(seen.begin(), seen.end(), gq) == seen.end()) seen.push_back(gq);
    for (int32_t gk : seen)
      if (!m.spec.sees(gq, gk)) return q;
  }
  return limit;
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

// The decode state of one job in flight: its cache rows, masks and streams.
struct ActiveJob {
  size_t job = 0;
  int64_t r0 = 0, nrows = 0;      // cache rows [r0, r0 + nrows)
  int64_t lmax = 0;               // prompt slots (rows padded to this); decode token t at slot lmax + t
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
      : model_(model), tok_(tokenizer), jobs_(jobs), cfg_(config), on_done_(on_done), stats_(stats) {
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
    for (const DecodeJob& j : jobs)
      for (const RowPlan& r : j.rows) block_sparse_ = block_sparse_ || r.block_sparse;
    text_options_.skip_special_tokens = true;
  }

  void run() {
    if (jobs_.empty()) return;
    DecodeStateOptions options;
    options.rows = R_;
    options.length = slots_len_;
    options.block_size = cfg_.block_size;
    options.block_sparse = block_sparse_;
    options.graphs = cfg_.cuda_graphs;
    options.batch_invariant = cfg_.batch_invariant;
    options.prefix_own_pass = cfg_.prefix_own_pass;
    options.pack_prefill = cfg_.pack_prefill;
    state_ = std::make_unique<DecodeState>(model_, options);
    // The [prefix][padding][rest] layout wherever a prefix's K/V are reusable bit for bit, whether
    // the store is on or not (so the records do not depend on it); block-sparse rows only. Not
    // with batch invariance off on CUDA (--fast-batching: its grouped prefill left-pads rows of any
    // length to one common layout, and it keeps no store).
    prefix_layout_ = state_->prefix_reuse_is_exact() && block_sparse_ &&
                     (!state_->prefix_needs_own_pass() || cfg_.batch_invariant);
    if (prefix_layout_ && cfg_.kv_reuse) store_ = std::make_unique<KVStore>(cfg_.kv_store_bytes);
    overlap_ = cfg_.overlap_steps && greedy_without_traces() && cfg_.batch_invariant && mean_streams_only() &&
               (state_->logits_on_device() || cfg_.overlap_on_host);
    slot_job_.assign(static_cast<size_t>(slots_), -1);
    active_.resize(static_cast<size_t>(slots_));
    size_t next_job = 0;
    int64_t running = 0;
    while (true) {
      if (cfg_.should_stop && cfg_.should_stop()) {  // in-flight jobs are dropped
        drop_pending();
        return;
      }
      // Fill free slots; a job may finish at its first token (then its slot is free again).
      while (next_job < jobs_.size()) {
        std::vector<std::pair<int64_t, size_t>> admits;
        for (int64_t s = 0; s < slots_ && next_job < jobs_.size(); ++s)
          if (slot_job_[s] < 0) admits.emplace_back(s, next_job++);
        if (admits.empty()) break;
        if (cfg_.batch_invariant) {
          // Neighbouring slots share a prefill pass only while their prompts' lengths are close
          // (admit_all): the jobs of one admission take the free slots in order of prompt length
          // (stable), for fewer, larger passes. No record changes: a job's bits do not depend on
          // its slot or on what shares its pass.
          std::vector<size_t> order;
          for (const auto& ad : admits) order.push_back(ad.second);
          std::stable_sort(order.begin(), order.end(),
                           [&](size_t x, size_t y) { return prompt_len(jobs_[x]) < prompt_len(jobs_[y]); });
          for (size_t i = 0; i < admits.size(); ++i) admits[i].second = order[i];
        }
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
      if (overlap_) {
        step_overlapped();
      } else {
        step();
      }
      for (int64_t s = 0; s < slots_; ++s) {
        if (slot_job_[s] >= 0 && finished(active_[s])) {
          finish(s);
          --running;
        }
      }
    }
    drop_pending();
  }

 private:
  bool finished(const ActiveJob& a) const {
    return a.step >= cfg_.max_new_tokens || std::all_of(a.done.begin(), a.done.end(), [](bool d) { return d; });
  }

  void finish(int64_t s) {
    ActiveJob& a = active_[s];
    const size_t job = a.job;
    std::vector<StreamResult> results = std::move(a.results);
    state_->release(a.r0, a.nrows);
    a = ActiveJob();
    slot_job_[s] = -1;
    on_done_(job, std::move(results));
  }

  // Runs f; a failure inside it is job a's (a JobError naming the job).
  template <class F>
  void as_job(const ActiveJob& a, F&& f) {
    try {
      f();
    } catch (const JobError&) {
      throw;
    } catch (const std::exception& e) {
      throw JobError(a.job, e.what());
    }
  }

  // Samples one token for every live stream of the job from its rows' logits [nrows, V] (CPU).
  void sample(ActiveJob& a, const at::Tensor& row_logits) {
    as_job(a, [&] { sample_streams(a, row_logits); });
  }

  void sample_streams(ActiveJob& a, const at::Tensor& row_logits) {
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

  // Greedy decoding without traces, logits in device memory: each stream's combined distribution
  // and its argmax are computed there (greedy_picks; the first tokens after a prefill too); only
  // the ids come back.
  bool greedy_on_device() const { return state_->logits_on_device() && greedy_without_traces(); }
  bool greedy_without_traces() const { return cfg_.sampling.greedy() && cfg_.trace_top == 0; }

  // A stream's rows (at r0 + its row indices), normalised weights and rule, for greedy_picks.
  static void add_stream(const StreamPlan& st, int64_t r0, std::vector<std::vector<int64_t>>& rows,
                         std::vector<std::vector<double>>& weights, std::vector<Combine>& combines) {
    rows.emplace_back();
    for (int32_t r : st.rows) rows.back().push_back(r0 + r);
    weights.push_back(stream_weights(st));
    combines.push_back(st.combine);
  }

  // Stream s of job a takes a device pick (its id and logit; a non-finite logit is the job's error).
  void accept_device_pick(ActiveJob& a, size_t s, const std::pair<int32_t, float>& best) {
    if (!std::isfinite(best.second)) throw JobError(a.job, "the model's logits are not finite (NaN or infinite)");
    accept(a, s, best.first, StepTrace());
  }

  // Every live stream of the live slots, in slot order: where it is and what greedy_picks needs.
  struct LiveStreams {
    std::vector<std::tuple<int64_t, size_t, size_t>> at;  // (slot, job, stream)
    std::vector<std::vector<int64_t>> rows;               // each stream's rows in the batch
    std::vector<std::vector<double>> weights;             // and their normalised weights
    std::vector<Combine> combines;
  };
  LiveStreams live_streams() const {
    LiveStreams l;
    for (int64_t s = 0; s < slots_; ++s) {
      if (slot_job_[s] < 0) continue;
      const ActiveJob& a = active_[s];
      const auto& streams = jobs_[a.job].streams;
      for (size_t k = 0; k < streams.size(); ++k) {
        if (a.done[k]) continue;
        add_stream(streams[k], a.r0, l.rows, l.weights, l.combines);
        l.at.emplace_back(s, a.job, k);
      }
    }
    return l;
  }

  // A step's inputs for every row: live slots' rows feed their last token at the slot it goes to
  // (`ahead` steps further than the host has seen), idle rows padding at slot 0.
  struct RowInputs {
    std::vector<int64_t> tokens, positions, slots;
    std::vector<std::pair<int64_t, int64_t>> spans;  // live jobs' rows, in slot order
  };
  RowInputs row_inputs(int64_t ahead) const {
    RowInputs in;
    in.tokens.assign(static_cast<size_t>(R_), cfg_.pad_id);
    in.positions.assign(static_cast<size_t>(R_), 0);
    in.slots.assign(static_cast<size_t>(R_), 0);
    for (int64_t s = 0; s < slots_; ++s) {
      if (slot_job_[s] < 0) continue;
      const ActiveJob& a = active_[s];
      const int64_t slot = a.lmax + a.step + ahead - 1;  // where the last sampled token goes
      for (int64_t i = 0; i < a.nrows; ++i) {
        in.tokens[a.r0 + i] = a.next[i];
        in.positions[a.r0 + i] = a.positions[i][slot];
        in.slots[a.r0 + i] = slot;
      }
      in.spans.emplace_back(a.r0, a.nrows);
    }
    return in;
  }

  void pick_on_device(const at::Tensor& logits) {
    const LiveStreams l = live_streams();
    const std::vector<std::pair<int32_t, float>> best = greedy_picks(l.rows, l.weights, l.combines, logits);
    for (size_t i = 0; i < l.at.size(); ++i)
      accept_device_pick(active_[std::get<0>(l.at[i])], std::get<2>(l.at[i]), best[i]);
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
  // position's logits share one prefill forward pass of the group's longest prompt's slots, up to
  // the backend's tokens per pass (rows x the slots the pass computes: from the shortest reusable
  // prefix on where prefixes come first); the others are prefilled alone.
  void admit_all(const std::vector<std::pair<int64_t, size_t>>& admits) {
    const int64_t most_tokens = state_->prefill_tokens_per_pass();
    size_t i = 0;
    while (i < admits.size()) {
      size_t k = i + 1;
      int64_t shortest = prompt_len(jobs_[admits[i].second]), longest = shortest;
      int64_t from = pass_start(jobs_[admits[i].second]);
      // Grouping is only for speed: where it would change a sample's bits, batch invariance says no.
      const bool group = !cfg_.batch_invariant || state_->grouped_prefill_is_invariant();
      if (group && last_position_only(jobs_[admits[i].second])) {
        while (k < admits.size() && admits[k].first == admits[k - 1].first + 1 &&
               last_position_only(jobs_[admits[k].second])) {
          const int64_t l = prompt_len(jobs_[admits[k].second]);
          const int64_t lo = std::min(shortest, l), hi = std::max(longest, l);
          // With the [prefix][padding][rest] layout every job keeps its own (its layout alone) and
          // a shorter job's rows are right-padded into the slots of its first decode tokens: only
          // as far as its mask reaches (its prompt + max_new_tokens).
          if (prefix_layout_ && hi > lo + cfg_.max_new_tokens) break;
          const int64_t f = std::min(from, pass_start(jobs_[admits[k].second]));
          if (static_cast<int64_t>(k - i + 1) * rows_per_slot_ * (hi - f) > most_tokens) break;
          shortest = lo;
          longest = hi;
          from = f;
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

  // Whether every row's reusable prefix comes into its cache before its prefill pass (from the
  // store or a pass of its own), so that the pass starts at the shortest one.
  bool prefixes_first() const { return prefix_layout_ && (store_ || state_->prefix_needs_own_pass()); }

  // The first slot a prefill pass of this job alone computes.
  int64_t pass_start(const DecodeJob& j) const {
    if (!prefixes_first() || j.rows.empty()) return 0;
    int64_t p = std::numeric_limits<int64_t>::max();
    for (const RowPlan& r : j.rows) p = std::min(p, row_prefix(r));
    return p;
  }

  // A row's reusable prefix: RowPlan::shared_prefix as far as the mask is plain causal, leaving
  // the row's last token and first-logit positions to the prefill. 0 where prefixes are not
  // reusable. A property of the row alone, so its layout does not depend on what shares its batch.
  int64_t row_prefix(const RowPlan& row) const {
    if (!prefix_layout_) return 0;
    int64_t limit = std::min<int64_t>(row.shared_prefix, static_cast<int64_t>(row.tokens.size()) - 1);
    for (int64_t f : row.first_logit_positions) limit = std::min(limit, f);
    return causal_prefix(row.mask, std::max<int64_t>(limit, 0));
  }

  // Row b of a pass (laid out [its first P tokens][pad slots of padding][the rest]): the K/V copies
  // of its RowPlan::copies that lie past its prefix, added to `copies` as slot pairs, and the slots
  // they fill, ascending, to `filled`. Copies inside the prefix are computed (so the prefix's K/V
  // are the same from the store, from a pass of its own or from this pass).
  static void add_copies(const RowPlan& row, int64_t b, int64_t P, int64_t pad, KvSlotCopies& copies,
                         std::vector<int64_t>& filled) {
    if (row.copies.empty()) return;
    if (!span_copies_are_exact(row.tokens, row.position_ids, row.mask, row.copies))
      throw std::logic_error("decode: a row's span copies are not exact");
    for (const SpanCopy& c : row.copies) {
      for (int64_t f : row.first_logit_positions)
        if (f >= c.dst && f < c.dst + c.length) throw std::logic_error("decode: first logits inside a span copy");
      if (c.dst < P) continue;
      for (int64_t j = 0; j < c.length; ++j) {
        const int64_t src = c.src + j < P ? c.src + j : pad + c.src + j;
        copies.rows.push_back(b);
        copies.src.push_back(src);
        copies.dst.push_back(pad + c.dst + j);
        filled.push_back(pad + c.dst + j);
      }
    }
    std::sort(filled.begin(), filled.end());
  }

  // The prefixes of rows [first_row, first_row + B) of one pass, each found in the store or
  // computed in a pass of its own (one row, the prefix alone) into the row's cache and kept (in the
  // store, and for the other rows of this call when the store is on). `tokens`/`positions` [B, L]:
  // the pass's, each row's prefix at slots [0, P). Each row's cache slots [0, P) get its prefix's
  // K/V. Returns per row whether its prefix was computed for it here.
  std::vector<bool> prefix_passes(int64_t first_row, const std::vector<const RowPlan*>& plans,
                                  const std::vector<int64_t>& prefix, const at::Tensor& tokens,
                                  const at::Tensor& positions,
                                  const std::vector<std::optional<AttentionMask>>& masks) {
    std::vector<bool> computed(plans.size(), false);
    std::unordered_map<std::string, KVStore::Entry> here;  // prefixes computed in this call
    // Consecutive rows of one found prefix are written with one copy (a run of rows, flushed when
    // the next row is not its continuation, and before a pass or the end).
    struct Run {
      std::string key;
      KVStore::Entry entry;
      int64_t first = 0, count = 0;
    } run;
    auto flush = [&] {
      if (run.count > 0) state_->write_prefix(run.first, run.entry.k, run.entry.v, run.count);
      run.count = 0;
    };
    for (size_t b = 0; b < plans.size(); ++b) {
      if (!plans[b] || prefix[b] == 0) continue;
      const RowPlan& row = *plans[b];
      const int64_t P = prefix[b], r = first_row + static_cast<int64_t>(b);
      std::string key = KVStore::key(row, P, cfg_.block_size);
      if (run.count > 0 && r == run.first + run.count && key == run.key) {
        ++run.count;
        continue;
      }
      const KVStore::Entry* e = store_ ? store_->find(key) : nullptr;
      if (!e && store_) {
        const auto it = here.find(key);
        if (it != here.end()) e = &it->second;
      }
      if (e) {
        flush();
        run = Run{std::move(key), *e, r, 1};
        continue;
      }
      flush();
      const int64_t bi = static_cast<int64_t>(b);
      std::vector<std::optional<AttentionMask>> one{masks[b]};
      state_->prefill(r, tokens.narrow(0, bi, 1).narrow(1, 0, P).contiguous(),
                      positions.narrow(0, bi, 1).narrow(1, 0, P).contiguous(), std::move(one), LogitsMode::Last, 0);
      if (stats_) ++stats_->prefill_passes;
      computed[b] = true;
      if (!store_) continue;
      auto [k, v] = state_->read_prefix(r, P);
      KVStore::Entry entry{std::move(k), std::move(v)};
      if (store_->insert(key, entry) && stats_) ++stats_->kv_store_entries;
      here.emplace(key, std::move(entry));
    }
    flush();
    return computed;
  }

  // Prefills the jobs of consecutive slots in one forward pass over slots [0, L) (L: the longest
  // job's prompt slots) and samples their first tokens. Rows of a slot beyond its job's rows are
  // fed one padding token under the idle mask. Each row's cache slots: [its first P tokens]
  // [padding][the rest of its prompt] with P its reusable prefix (0: the row left-padded), padded
  // to its job's lmax: its longest row's prompt with the [prefix][padding][rest] layout (the
  // layout it has alone; slots [lmax, L) then hold padding at the positions of its first decode
  // tokens, whose K/V each decode step writes before anything reads them), else L. Each row's
  // first logits are those of its slot lmax - 1. With the KV store on (or prefix_own_pass) every
  // row's prefix K/V are copied in (from the store, or from a pass of its own) and the forward pass
  // runs on slots [min P, L) only.
  void admit_group(const std::vector<std::pair<int64_t, size_t>>& group) {
    const auto t0 = Clock::now();
    int64_t L = 0;
    for (const auto& g : group) L = std::max(L, prompt_len(jobs_[g.second]));
    const bool single = group.size() == 1;
    const int64_t first_row = group.front().first * rows_per_slot_;
    const int64_t B = single ? static_cast<int64_t>(jobs_[group[0].second].rows.size())
                             : static_cast<int64_t>(group.size()) * rows_per_slot_;
    std::vector<std::optional<AttentionMask>> masks(static_cast<size_t>(B));
    at::Tensor tokens = at::full({B, L}, cfg_.pad_id, at::kLong);
    at::Tensor positions = at::zeros({B, L}, at::kLong);
    std::vector<int64_t> pads(static_cast<size_t>(B), L - 1);
    std::vector<int64_t> last(static_cast<size_t>(B), L - 1);  // each row's last prompt slot
    std::vector<const RowPlan*> plans(static_cast<size_t>(B), nullptr);
    std::vector<int64_t> prefix(static_cast<size_t>(B), 0);
    std::vector<std::vector<int64_t>> copied(static_cast<size_t>(B));  // per row: slots its copies fill
    KvSlotCopies copies;
    auto tok = tokens.accessor<int64_t, 2>();
    auto pos = positions.accessor<int64_t, 2>();
    for (const auto& [slot, job] : group) {
      const DecodeJob& j = jobs_[job];
      ActiveJob& a = active_[slot];
      a = ActiveJob();
      a.job = job;
      a.nrows = static_cast<int64_t>(j.rows.size());
      a.r0 = slot * rows_per_slot_;
      a.lmax = prefix_layout_ ? prompt_len(j) : L;
      if (L > a.lmax + cfg_.max_new_tokens)
        throw std::logic_error("decode: a prefill pass beyond a job's mask");  // admit_all's rule
      for (int64_t r = 0; r < a.nrows; ++r) {
        const RowPlan& row = j.rows[r];
        const int64_t b = a.r0 - first_row + r;  // row within this forward pass
        const int64_t len = static_cast<int64_t>(row.tokens.size()), pad = a.lmax - len;
        const int64_t P = row_prefix(row);
        pads[b] = pad;
        last[b] = a.lmax - 1;
        plans[b] = &row;
        prefix[b] = P;
        masks[b] = pad_mask(row.mask, pad, P);
        std::vector<int64_t> ids(static_cast<size_t>(a.lmax + cfg_.max_new_tokens), 0);
        for (int64_t i = 0; i < len + cfg_.max_new_tokens; ++i) ids[i < P ? i : pad + i] = row.position_ids[i];
        for (int64_t i = 0; i < len; ++i) {
          const int64_t at = i < P ? i : pad + i;
          tok[b][at] = row.tokens[i];
          pos[b][at] = ids[at];
        }
        for (int64_t at = a.lmax; at < L; ++at) pos[b][at] = ids[at];  // right padding (tokens: pad_id)
        a.positions.push_back(std::move(ids));
        add_copies(row, b, P, pad, copies, copied[b]);
      }
    }
    // Reusable prefixes. With the store on (or prefix_own_pass), every row's prefix comes from the
    // store or from a pass of its own (each distinct prefix once, then stored), and this pass starts
    // at the shortest, so a group's rows never recompute a prefix. Otherwise (or where a row has
    // none) every row is computed from slot 0 here, and the store keeps the prefixes computed so.
    std::vector<bool> computed(static_cast<size_t>(B), false);  // prefix computed in this call for the row
    int64_t start = std::numeric_limits<int64_t>::max();  // the shortest prefix
    for (int64_t b = 0; b < B; ++b)
      if (plans[b]) start = std::min(start, prefix[b]);
    if (start == std::numeric_limits<int64_t>::max()) start = 0;
    if (!prefixes_first()) start = 0;
    if (start > 0) computed = prefix_passes(first_row, plans, prefix, tokens, positions, masks);
    const bool all_last = single ? last_position_only(jobs_[group[0].second]) : true;
    for (int64_t& c : last) c -= start;  // columns of the pass
    // The pass's columns that hold tokens: each row's [start, P) (a prefix longer than the pass's
    // start) and [P + pad, lmax) (the rest of its prompt); not the padding between them nor the
    // right padding past its job's prompt. Ascending (rows in order, columns in order).
    std::vector<int64_t> real;
    const int64_t W = L - start;
    for (int64_t b = 0; b < B; ++b) {
      if (!plans[b]) {  // an idle row: its last column (its logits are not used)
        real.push_back(b * W + W - 1);
        continue;
      }
      const int64_t P = prefix[b], lmax = last[b] + start + 1;  // its job's prompt slots
      const std::vector<int64_t>& skip = copied[b];  // ascending
      auto next = skip.begin();
      for (int64_t slot = start; slot < L; ++slot) {
        while (next != skip.end() && *next < slot) ++next;
        if (next != skip.end() && *next == slot) continue;  // its K/V come from a copy
        if (slot < P || (slot >= P + pads[b] && slot < lmax)) real.push_back(b * W + slot - start);
      }
    }
    const auto t_forward = Clock::now();
    at::Tensor logits = state_->prefill(first_row, tokens.narrow(1, start, L - start).contiguous(),
                                        positions.narrow(1, start, L - start).contiguous(), std::move(masks),
                                        all_last ? LogitsMode::Last : LogitsMode::All, start, last, real, copies);
    if (stats_) ++stats_->prefill_passes;
    const auto t_queued = Clock::now();
    if (store_ && start == 0 && !state_->prefix_needs_own_pass())
      for (int64_t b = 0; b < B; ++b) {
        if (!plans[b] || prefix[b] == 0) continue;
        std::string key = KVStore::key(*plans[b], prefix[b], cfg_.block_size);
        if (store_->find(key)) continue;
        auto [k, v] = state_->read_prefix(first_row + b, prefix[b]);
        if (store_->insert(key, KVStore::Entry{std::move(k), std::move(v)}) && stats_) ++stats_->kv_store_entries;
      }
    at::Tensor row_logits;
    if (all_last) {
      row_logits = logits.select(1, logits.size(1) - 1);
    } else {
      const DecodeJob& j = jobs_[group[0].second];
      std::vector<at::Tensor> picked;
      for (int64_t r = 0; r < B; ++r) {
        std::vector<int64_t> at_pos = j.rows[r].first_logit_positions;
        if (at_pos.empty()) at_pos.push_back(static_cast<int64_t>(j.rows[r].tokens.size()) - 1);
        for (int64_t& p : at_pos) p = (p < prefix[r] ? p : p + pads[r]) - start;
        const at::Tensor idx = at::tensor(at_pos, at::kLong).to(logits.device());
        picked.push_back(logits[r].index_select(0, idx).mean(0));
      }
      row_logits = at::stack(picked);
    }
    const bool first_on_device = greedy_on_device();
    if (!first_on_device) row_logits = row_logits.to(at::kCPU).contiguous();
    if (stats_) {
      stats_->prefill_seconds += seconds_since(t0);
      for (const auto& [slot, job] : group) {
        const std::vector<RowPlan>& rows = jobs_[job].rows;
        for (size_t r = 0; r < rows.size(); ++r) {
          const size_t b = static_cast<size_t>(slot * rows_per_slot_ - first_row) + r;  // row of the pass
          stats_->prefill_tokens += static_cast<int64_t>(rows[r].tokens.size());
          stats_->prefill_tokens_reused += computed[b] ? 0 : start;
          stats_->prefill_tokens_copied += static_cast<int64_t>(copied[b].size());
        }
      }
      if (store_) stats_->kv_store_peak_bytes = std::max(stats_->kv_store_peak_bytes, store_->peak_bytes());
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
      if (!first_on_device) sample(a, row_logits.narrow(0, a.r0 - first_row, a.nrows));
      slot_job_[slot] = static_cast<int64_t>(job);
    }
    if (first_on_device) {
      // One argmax launch and one copy back for the group's streams (rows of the pass).
      std::vector<std::pair<int64_t, size_t>> picks;
      std::vector<std::vector<int64_t>> rows;
      std::vector<std::vector<double>> weights;
      std::vector<Combine> combines;
      for (const auto& [slot, job] : group)
        for (size_t k = 0; k < jobs_[job].streams.size(); ++k) {
          picks.emplace_back(slot, k);
          add_stream(jobs_[job].streams[k], active_[slot].r0 - first_row, rows, weights, combines);
        }
      const std::vector<std::pair<int32_t, float>> best = greedy_picks(rows, weights, combines, row_logits);
      for (size_t i = 0; i < picks.size(); ++i) {
        ActiveJob& a = active_[picks[i].first];
        as_job(a, [&] { accept_device_pick(a, picks[i].second, best[i]); });  // as sample()
      }
      for (const auto& entry : group) ++active_[entry.first].step;
    }
    if (stats_) stats_->decode_seconds += seconds_since(t1);
    // Host time before the forward pass, the forward call (on CUDA: queueing it, and any wait for
    // the device inside), then the first tokens (on CUDA: waiting for the pass's end).
    spdlog::debug("prefill pass: {} job(s), {} rows x slots [{}, {}), {} computed; {:.1f} ms before the forward, "
                  "{:.1f} ms in it, {:.1f} ms to the first tokens; {} rows read a shared prefix",
                  group.size(), B, start, L, real.size(), 1e3 * std::chrono::duration<double>(t_forward - t0).count(),
                  1e3 * std::chrono::duration<double>(t_queued - t_forward).count(), 1e3 * seconds_since(t_queued),
                  state_->rows_reading_shared_prefix());
  }

  // Overlapped steps (DecodeConfig::overlap_steps): the step after is queued before the host reads
  // a step's picks, its tokens fed from those picks on the device, so the device does not wait for
  // the host between steps. Each row is fed and computes what the step-by-step schedule gives it
  // (the kernels are row-invariant), so the records are the same.
  struct Pending {
    std::vector<std::pair<int64_t, size_t>> jobs;            // (slot, job) of the step's live slots
    std::vector<std::tuple<int64_t, size_t, size_t>> picks;  // (slot, job, stream) of its picks
    QueuedPicks queued;
    HostCopy copy;
    Clock::time_point at;  // when the step was queued
  };

  // Greedy Mean picks only (weighted_argmax_queued): the rules of every stream of the run.
  bool mean_streams_only() const {
    for (const DecodeJob& j : jobs_)
      for (const StreamPlan& st : j.streams)
        if (st.combine != Combine::Mean) return false;
    return true;
  }

  // Queues a step of every live row and its picks; `from`: the step before, still unread, whose
  // picks feed the rows of its streams (then every live slot is one step further than the host has
  // seen).
  Pending queue_step(const Pending* from) {
    const RowInputs in = row_inputs(from ? 1 : 0);
    LiveStreams live = live_streams();
    Pending p;
    for (int64_t s = 0; s < slots_; ++s)
      if (slot_job_[s] >= 0) p.jobs.emplace_back(s, active_[s].job);
    p.picks = std::move(live.at);
    DeviceFeed feed;
    if (from) {
      feed.ids = from->queued.ids;
      for (size_t i = 0; i < from->picks.size(); ++i) {
        const auto& [s, job, k] = from->picks[i];
        // A stream that stopped at the step before `from` feeds its last token (a.next), as it would
        // step by step; so does every row of a slot whose job has left.
        if (slot_job_[s] != static_cast<int64_t>(job) || active_[s].done[k]) continue;
        for (int32_t r : jobs_[job].streams[k].rows) {
          feed.rows.push_back(active_[s].r0 + r);
          feed.index.push_back(static_cast<int64_t>(i));
        }
      }
    }
    p.at = Clock::now();
    const at::Tensor logits = state_->step_queued(in.tokens, in.positions, in.slots, from ? &feed : nullptr);
    if (stats_) {
      ++stats_->decode_steps;
      if (from) ++stats_->steps_ahead;
    }
    p.queued = weighted_argmax_queued(live.rows, live.weights, logits);
    p.copy = state_->copy_to_host(p.queued.both);
    return p;
  }

  // Whether the step after `p` may be queued before p's picks are read: every live slot is p's (no
  // admission since), some job needs a step after p whatever its picks are, and no stop can
  // leave the step with nothing to compute (stops can end a job early; with one job it would be
  // a step for nothing, with more the others use it).
  bool may_run_ahead(const Pending& p) const {
    int64_t live = 0;
    bool needed = false;
    for (int64_t s = 0; s < slots_; ++s) {
      if (slot_job_[s] < 0) continue;
      ++live;
      const auto it = std::find(p.jobs.begin(), p.jobs.end(), std::make_pair(s, static_cast<size_t>(slot_job_[s])));
      if (it == p.jobs.end()) return false;
      needed = needed || active_[s].step + 1 < cfg_.max_new_tokens;
    }
    return needed && (!cfg_.stops.can_stop() || live > 1);
  }

  // Reads p's picks and gives them to their streams; slots that changed job since p was queued,
  // and streams that stopped, ignore theirs.
  void resolve(const Pending& p) {
    const std::vector<std::pair<int32_t, float>> best = picks_of(p.copy.wait());
    const auto now = Clock::now();
    if (stats_) stats_->step_forward_seconds += std::chrono::duration<double>(now - std::max(p.at, last_read_)).count();
    last_read_ = now;
    for (size_t i = 0; i < p.picks.size(); ++i) {
      const auto& [s, job, k] = p.picks[i];
      if (slot_job_[s] != static_cast<int64_t>(job) || active_[s].done[k]) continue;
      accept_device_pick(active_[s], k, best[i]);
    }
    for (const auto& [s, job] : p.jobs)
      if (slot_job_[s] == static_cast<int64_t>(job)) ++active_[s].step;
  }

  void step_overlapped() {
    const auto t0 = Clock::now();
    if (!pending_) pending_ = queue_step(nullptr);
    std::optional<Pending> next;
    if (may_run_ahead(*pending_)) next = queue_step(&*pending_);
    const Pending now = std::move(*pending_);
    pending_ = std::move(next);
    resolve(now);
    if (stats_) stats_->decode_seconds += seconds_since(t0);
  }

  // A step queued ahead whose picks nobody reads (the run ends or is stopped): waited for, so the
  // device is idle when the run returns.
  void drop_pending() {
    if (pending_) pending_->copy.wait();
    pending_.reset();
  }

  // One decode step of every row; rows of a live job feed their last token.
  void step() {
    const auto t0 = Clock::now();
    const RowInputs in = row_inputs(0);
    const std::vector<std::pair<int64_t, int64_t>>& spans = in.spans;
    const auto f0 = Clock::now();
    const at::Tensor logits = state_->step(in.tokens, in.positions, in.slots);
    if (stats_) {
      ++stats_->decode_steps;
      stats_->step_forward_seconds += seconds_since(f0);
    }
    if (greedy_on_device()) {
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

  const LlamaModel& model_;
  const Tokenizer& tok_;
  const std::vector<DecodeJob>& jobs_;
  const DecodeConfig& cfg_;
  const std::function<void(size_t, std::vector<StreamResult>)>& on_done_;
  DecodeStats* stats_;
  bool block_sparse_ = false;
  int64_t slots_ = 0, rows_per_slot_ = 1, R_ = 0, slots_len_ = 0;
  DecodeOptions text_options_;
  std::unique_ptr<DecodeState> state_;
  bool prefix_layout_ = false;     // rows laid out [prefix][padding][rest] (row_prefix)
  std::unique_ptr<KVStore> store_;  // the run-level KV store (null: off)
  std::vector<int64_t> slot_job_;
  std::vector<ActiveJob> active_;
  bool overlap_ = false;         // step_overlapped() (decided once per run)
  std::optional<Pending> pending_;  // a step queued, its picks not read yet
  Clock::time_point last_read_;     // when the last overlapped step's picks were read
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

void warm_up_decoding(const LlamaModel& model) {
  if (!model.device.is_cuda()) return;
  const int64_t V = model.config.vocab_size;
  const at::Tensor logits = at::zeros({2, V}, at::TensorOptions().dtype(at::kFloat).device(model.device));
  // Streams of one row in order, a mean of two rows, the most probable of two.
  (void)greedy_picks({{0}, {1}}, {{1.0}, {1.0}}, {Combine::Mean, Combine::Mean}, logits);
  (void)greedy_picks({{0, 1}}, {{0.5, 0.5}}, {Combine::Mean}, logits);
  (void)greedy_picks({{0, 1}}, {{0.5, 0.5}}, {Combine::MaxProb}, logits);
}

}  // namespace flexgen
