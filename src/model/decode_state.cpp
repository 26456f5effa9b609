// DecodeState (decode_state.h): prefill and decode steps of a fixed set of cache rows, on the
// model's backend. The CUDA step keeps its inputs in static device buffers and the rows' masks
// and positions in a device table, so one captured CUDA graph serves every step over the same
// rows (a step computes the rows up to the last one in use: one graph per such count).
#include "flexgen/decode_state.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <map>
#include <stdexcept>
#include <utility>

#include "cuda/block_sparse_attention_cuda.h"
#include "cuda/cuda_event.h"
#include "cuda/cuda_graph.h"

namespace flexgen {

struct DecodeState::Cuda {
  explicit Cuda(const at::Device& device) : staged(device) {}
  // int64 [5, rows] on the device: tokens | positions | slots | fed rows | their ids' indices
  // (DeviceFeed; the first m entries)
  at::Tensor static_in;
  at::Tensor staging;  // the same in pinned host memory
  CudaEvent staged;    // after the last upload from staging (the host rewrites it after that)
  DeviceMaskTable table;
  // A step over rows [0, n): its inputs (views of static_in), its mask table (a prefix of
  // table's), and its graph with the logits it leaves; the first steps of a size run eagerly (the
  // graph's warm-up: kernels loaded, workspaces allocated), the graph is captured at the next.
  struct Step {
    StepInputs in;
    DeviceMaskTable table;
    int eager_runs = 0;
    std::unique_ptr<CudaGraph> graph;
    at::Tensor graph_out;
  };
  static constexpr int kEagerStepsBeforeGraph = 1;
  std::map<int64_t, Step> steps;
};

DecodeState::DecodeState(const LlamaModel& model, const DecodeStateOptions& options)
    : model_(model), options_(options) {
  if (options.rows < 1 || options.length < 1 || options.block_size < 1)
    throw std::invalid_argument("decode state: rows, length and block size must be at least 1");
  const bool cuda = model.device.is_cuda();
  block_size_ = options.block_sparse || cuda ? options.block_size : 0;
  const int64_t shared = cuda && options.rows >= kSharedPrefixMinRows && shared_prefix_reads() ? kSharedPrefixRows : 0;
  const KVCache all = make_kv_cache(model, options.rows + shared, options.length);
  cache_ = kv_cache_rows(all, 0, options.rows);
  if (shared > 0) shared_cache_ = kv_cache_rows(all, options.rows, shared);
  shared_.resize(static_cast<size_t>(shared));
  row_shared_.assign(static_cast<size_t>(options.rows), -1);
  // Rows without a sample attend under a one-group causal mask at slot 0 (results unused).
  idle_ = row_mask(causal_mask(options.length));
  masks_.assign(static_cast<size_t>(options.rows), idle_);
  if (cuda) {
    cuda_ = std::make_unique<Cuda>(model.device);
    cuda_->table = make_device_mask_table(options.rows, options.block_size, model.device, shared);
  }
}

DecodeState::~DecodeState() = default;

RowMask DecodeState::row_mask(AttentionMask mask) const {
  return make_row_mask(std::move(mask), block_size_, model_.device);
}

bool DecodeState::logits_on_device() const { return cuda_ != nullptr; }

bool DecodeState::grouped_prefill_is_invariant() const { return cuda_ == nullptr || options_.batch_invariant; }

int64_t DecodeState::prefill_tokens_per_pass() const {
  constexpr int64_t kMost = 16384;
  if (cuda_) return kMost;
  const ModelConfig& c = model_.config;
  const int64_t width = std::max({c.intermediate_size, c.hidden_size, c.q_dim(), c.kv_dim(), int64_t{1}});
  const int64_t bytes = static_cast<int64_t>(c10::elementSize(model_.dtype)) * width;
  return std::clamp<int64_t>((int64_t{32} << 20) / bytes, 1, kMost);
}

at::Tensor DecodeState::prefill(int64_t first, const at::Tensor& tokens, const at::Tensor& positions,
                                std::vector<std::optional<AttentionMask>> masks, LogitsMode mode, int64_t start,
                                const std::vector<int64_t>& last, const std::vector<int64_t>& real,
                                const KvSlotCopies& copies) {
  const int64_t n = static_cast<int64_t>(masks.size());
  if (first < 0 || n < 1 || first + n > options_.rows || tokens.dim() != 2 || tokens.size(0) != n)
    throw std::invalid_argument("decode state: prefill of rows [" + std::to_string(first) + ", " +
                                std::to_string(first + n) + ") of " + std::to_string(options_.rows));
  if (start < 0 || start + tokens.size(1) > options_.length)
    throw std::invalid_argument("decode state: a prefill chunk at slot " + std::to_string(start) + " does not fit");
  // A row whose prefix slots this pass writes (or that goes idle) reads its own copy from now on.
  for (int64_t b = 0; b < n; ++b) {
    const int64_t j = row_shared_[static_cast<size_t>(first + b)];
    if (j >= 0 && (!masks[b] || start < shared_[static_cast<size_t>(j)].k.size(2))) detach_shared_prefix(first + b);
  }
  std::vector<RowMask> rows(static_cast<size_t>(n));
  for (int64_t b = 0; b < n; ++b) rows[b] = masks[b] ? row_mask(std::move(*masks[b])) : idle_;
  KVCache part = kv_cache_rows(cache_, first, n);
  part.length = start;
  if (!last.empty() && static_cast<int64_t>(last.size()) != n)
    throw std::invalid_argument("decode state: a prefill of " + std::to_string(n) + " rows with " +
                                std::to_string(last.size()) + " last columns");
  BatchMask mask = BatchMask::rows(rows);
  mask.with_batch_invariance(options_.batch_invariant);
  const at::Tensor cols = last.empty() ? at::Tensor() : at::tensor(last, at::kLong);
  // Packed where a token's bits do not depend on the pass (the CPU; CUDA's row-invariant prefill).
  const bool pack = options_.pack_prefill && grouped_prefill_is_invariant() && !real.empty() &&
                    static_cast<int64_t>(real.size()) < tokens.numel();
  at::Tensor logits =
      llama_forward(model_, part, tokens, positions, mask, mode, cols, pack ? at::tensor(real, at::kLong) : at::Tensor(),
                    copies);
  for (int64_t b = 0; b < n; ++b)
    if (masks[b]) masks_[first + b] = std::move(rows[b]);
  return logits;
}

bool DecodeState::prefix_reuse_is_exact() const {
  return cuda_ == nullptr || options_.batch_invariant || options_.prefix_own_pass;
}

bool DecodeState::prefix_needs_own_pass() const { return options_.prefix_own_pass; }

std::pair<at::Tensor, at::Tensor> DecodeState::read_prefix(int64_t row, int64_t length) const {
  if (row < 0 || row >= options_.rows || length < 1 || length > options_.length)
    throw std::invalid_argument("decode state: no prefix of " + std::to_string(length) + " slots in row " +
                                std::to_string(row));
  return {cache_.k.select(1, row).narrow(2, 0, length).clone(), cache_.v.select(1, row).narrow(2, 0, length).clone()};
}

void DecodeState::write_prefix(int64_t row, const at::Tensor& k, const at::Tensor& v, int64_t count) {
  if (row < 0 || count < 1 || row + count > options_.rows || k.dim() != 4 || k.sizes() != v.sizes() ||
      k.size(2) > options_.length)
    throw std::invalid_argument("decode state: a prefix that does not fit rows [" + std::to_string(row) + ", " +
                                std::to_string(row + count) + ")");
  // Cache [layers, rows, kv_heads, slots, head_dim]: the rows' slots [0, P) from k broadcast over rows.
  auto rows = [&](const at::Tensor& cache, const at::Tensor& x) {
    const at::Tensor each = x.unsqueeze(1).expand({x.size(0), count, x.size(1), x.size(2), x.size(3)});
    cache.narrow(1, row, count).narrow(3, 0, x.size(2)).copy_(each);
  };
  rows(cache_.k, k);
  rows(cache_.v, v);
  for (int64_t r = row; r < row + count; ++r) detach_shared_prefix(r);
  // The shared row holding this very tensor, else a free one (filled now: queued after the steps
  // that read it before); none free: the rows read their own copies.
  int64_t j = -1;
  for (size_t i = 0; i < shared_.size() && j < 0; ++i)
    if (shared_[i].k.defined() && shared_[i].k.is_same(k)) j = static_cast<int64_t>(i);
  for (size_t i = 0; i < shared_.size() && j < 0; ++i)
    if (shared_[i].users == 0) {
      j = static_cast<int64_t>(i);
      shared_cache_.k.select(1, j).narrow(2, 0, k.size(2)).copy_(k);
      shared_cache_.v.select(1, j).narrow(2, 0, v.size(2)).copy_(v);
      shared_[i] = SharedPrefix{k, 0};
    }
  if (j < 0) return;
  for (int64_t r = row; r < row + count; ++r) row_shared_[static_cast<size_t>(r)] = j;
  shared_[static_cast<size_t>(j)].users += count;
}

void DecodeState::detach_shared_prefix(int64_t r) {
  int64_t& j = row_shared_.at(static_cast<size_t>(r));
  if (j >= 0) --shared_[static_cast<size_t>(j)].users;
  j = -1;
}

int64_t DecodeState::rows_reading_shared_prefix() const {
  return static_cast<int64_t>(std::count_if(row_shared_.begin(), row_shared_.end(), [](int64_t j) { return j >= 0; }));
}

void DecodeState::release(int64_t first, int64_t count) {
  for (int64_t r = first; r < first + count; ++r) {
    masks_.at(static_cast<size_t>(r)) = idle_;
    detach_shared_prefix(r);
  }
}

int64_t DecodeState::step_rows() const {
  // A row is in use while it holds a mask of its own (prefill gives one; release puts idle_ back).
  int64_t n = options_.rows;
  while (n > 1 && masks_[n - 1].groups == idle_.groups) --n;
  if (cuda_ && options_.graphs) n = std::min(options_.rows, (n + kStepRowBucket - 1) / kStepRowBucket * kStepRowBucket);
  return n;
}

namespace {

// The step inputs of rows [0, n) from an int64 table [3, >= n] (tokens | positions | slots), as
// views of it, on its device.
StepInputs step_inputs(const at::Tensor& table, int64_t n, bool batch_invariant) {
  StepInputs in;
  in.tokens = table[0].narrow(0, 0, n).view({n, 1});
  in.positions = table[1].narrow(0, 0, n).view({n, 1});
  in.slots = table[2].narrow(0, 0, n);
  in.rows = at::arange(n, table.options());
  in.batch_invariant = batch_invariant;
  return in;
}

}  // namespace

at::Tensor DecodeState::step(const std::vector<int64_t>& tokens, const std::vector<int64_t>& positions,
                             const std::vector<int64_t>& slots) {
  at::Tensor logits = step_queued(tokens, positions, slots);
  if (cuda_) (void)logits.reshape({-1}).narrow(0, 0, 1).cpu();  // waits for the step's work on the device
  return logits;
}

at::Tensor HostCopy::wait() const {
  if (ready_) ready_();
  return host_;
}

HostCopy DecodeState::copy_to_host(const at::Tensor& values) const {
  HostCopy out;
  if (!cuda_ || !values.is_cuda()) {
    out.host_ = values.to(at::kCPU).contiguous();
    return out;
  }
  out.host_ = at::empty(values.sizes(), values.options().device(at::kCPU).pinned_memory(true));
  out.host_.copy_(values, /*non_blocking=*/true);
  auto done = std::make_shared<CudaEvent>(values.device());
  done->record();
  out.ready_ = [done] { done->wait(); };
  return out;
}

at::Tensor DecodeState::step_queued(const std::vector<int64_t>& tokens, const std::vector<int64_t>& positions,
                                    const std::vector<int64_t>& slots, const DeviceFeed* feed) {
  const int64_t R = options_.rows;
  if (static_cast<int64_t>(tokens.size()) != R || static_cast<int64_t>(positions.size()) != R ||
      static_cast<int64_t>(slots.size()) != R)
    throw std::invalid_argument("decode state: a step needs a token, position and slot for each of the " +
                                std::to_string(R) + " rows");
  if (feed) {
    const int64_t m = static_cast<int64_t>(feed->rows.size());
    if (static_cast<int64_t>(feed->index.size()) != m || m > R || !feed->ids.defined() ||
        feed->ids.scalar_type() != at::kLong || feed->ids.device() != model_.device || feed->ids.dim() != 1)
      throw std::invalid_argument("decode state: a device feed needs int64 ids on the model's device and an index per fed row");
    for (int64_t i = 0; i < m; ++i)
      if (feed->rows[i] < 0 || feed->rows[i] >= R || feed->index[i] < 0 || feed->index[i] >= feed->ids.size(0))
        throw std::invalid_argument("decode state: a device feed names a row or id out of range");
  }
  const int64_t n = step_rows();
  if (!cuda_) {
    std::vector<int64_t> host(tokens);
    if (feed) {  // the model's memory is the host's: the ids are read here
      const at::Tensor ids = feed->ids.contiguous();
      const int64_t* v = ids.data_ptr<int64_t>();
      for (size_t i = 0; i < feed->rows.size(); ++i) host[static_cast<size_t>(feed->rows[i])] = v[feed->index[i]];
    }
    host.insert(host.end(), positions.begin(), positions.end());
    host.insert(host.end(), slots.begin(), slots.end());
    const StepInputs in = step_inputs(at::tensor(host, at::kLong).view({3, R}), n, options_.batch_invariant);
    KVCache part = kv_cache_rows(cache_, 0, n);
    return llama_step(model_, part, in,
                      BatchMask::decode(std::vector<RowMask>(masks_.begin(), masks_.begin() + n),
                                        std::vector<int64_t>(slots.begin(), slots.begin() + n)));
  }
  Cuda& c = *cuda_;
  if (!c.static_in.defined()) {
    c.static_in = at::zeros({5, R}, at::TensorOptions().dtype(at::kLong).device(model_.device));
    c.staging = at::empty({5, R}, at::TensorOptions().dtype(at::kLong).pinned_memory(true));
  }
  Cuda::Step& st = c.steps[n];
  if (!st.in.tokens.defined()) {
    st.in = step_inputs(c.static_in.narrow(0, 0, 3), n, options_.batch_invariant);
    st.table = device_mask_table_rows(c.table, n);
  }
  const int64_t m = feed ? static_cast<int64_t>(feed->rows.size()) : 0;
  bool in_place = true;  // row i feeds ids[i] for i < m
  for (int64_t i = 0; i < m; ++i) in_place = in_place && feed->rows[i] == i && feed->index[i] == i;
  c.staged.wait();  // the previous step's upload has left the staging buffer
  int64_t* staged = c.staging.data_ptr<int64_t>();
  std::copy(tokens.begin(), tokens.end(), staged);
  std::copy(positions.begin(), positions.end(), staged + R);
  std::copy(slots.begin(), slots.end(), staged + 2 * R);
  if (m > 0 && !in_place) {
    std::copy(feed->rows.begin(), feed->rows.end(), staged + 3 * R);
    std::copy(feed->index.begin(), feed->index.end(), staged + 4 * R);
  }
  const int64_t parts = m > 0 && !in_place ? 5 : 3;
  c.static_in.narrow(0, 0, parts).copy_(c.staging.narrow(0, 0, parts), /*non_blocking=*/true);
  c.staged.record();
  if (m > 0) {
    at::Tensor fed = c.static_in[0];
    if (in_place) {
      fed.narrow(0, 0, m).copy_(feed->ids.narrow(0, 0, m), /*non_blocking=*/true);
    } else {
      fed.index_copy_(0, c.static_in[3].narrow(0, 0, m), feed->ids.index_select(0, c.static_in[4].narrow(0, 0, m)));
    }
  }
  std::vector<DeviceMaskRef> refs(static_cast<size_t>(R));
  for (int64_t r = 0; r < R; ++r) {
    refs[r] = DeviceMaskRef{masks_[r].device.get(), slots[r], 0};
    if (const int64_t j = row_shared_[static_cast<size_t>(r)]; j >= 0)
      refs[r].shared_row = R + j, refs[r].shared_len = shared_[static_cast<size_t>(j)].k.size(2);
  }
  update_device_mask_table(c.table, refs);
  BatchMask mask = BatchMask::decode_table(st.table);
  mask.with_batch_invariance(options_.batch_invariant);
  // The cache views of rows [0, n) are only needed where the step is run or captured.
  auto run = [&] {
    KVCache part = kv_cache_rows(cache_, 0, n);
    return llama_step(model_, part, st.in, mask);
  };
  at::Tensor logits;
  if (!options_.graphs || (!st.graph && st.eager_runs < Cuda::kEagerStepsBeforeGraph)) {
    ++st.eager_runs;
    logits = run();
  } else {
    // Warmed up by the eager steps: captured without warm-up runs of its own (each would be a
    // whole step of device work more).
    if (!st.graph) st.graph = std::make_unique<CudaGraph>(model_.device, [&] { st.graph_out = run(); }, 0);
    st.graph->replay();
    logits = st.graph_out;
  }
  return logits;
}

}  // namespace flexgen
