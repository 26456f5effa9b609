// The LLaMA forward pass (llama.h), written once over the layer operations of the model's
// backend (layer_ops.h): the model's device picks the backend here, once per call.
#include "flexgen/llama.h"

#include <ATen/ATen.h>
#include <ATen/TensorIndexing.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

#include "layer_ops.h"
#include "shape_text.h"

namespace flexgen {
namespace {

// Packed tokens: the listed columns of a [B, L, ...] tensor as [1, T, ...] and back (zeros at the
// columns not listed).
at::Tensor pack_columns(const at::Tensor& x, const at::Tensor& real) {
  return x.reshape({x.size(0) * x.size(1), x.size(2)}).index_select(0, real).unsqueeze(0);
}
// `into`: [B * L, width], zeros where nothing is listed; allocated on first use, then reused (only
// listed rows are ever written, so its padding stays zero).
at::Tensor unpack_columns(const at::Tensor& x, const at::Tensor& real, int64_t B, int64_t L, at::Tensor& into) {
  if (!into.defined()) into = at::zeros({B * L, x.size(2)}, x.options());
  return into.index_copy_(0, real, x.select(0, 0)).view({B, L, x.size(2)});
}

}  // namespace

at::Tensor PackedColumns::unpack(const at::Tensor& x, int slot) const {
  at::Tensor& buffer = into.at(static_cast<size_t>(slot));
  if (buffer.defined() && buffer.size(1) != x.size(2)) buffer = at::Tensor();
  return unpack_columns(x, real, B, L, buffer);
}

const at::Tensor& PackedColumns::column_rows() const {
  if (!rows.defined()) {
    const at::TensorOptions o = real.options().dtype(at::kLong);
    rows = at::full({B * L}, -1, o).index_copy_(0, real, at::arange(real.size(0), o));
  }
  return rows;
}

namespace {

// llama_forward's copies as index tensors on the model's device (undefined: none).
struct SlotCopyIndex {
  at::Tensor rows, src, dst;
};

// The decoder layers over hidden states h [B, L, hidden] (updated in place to the residual stream
// before the last layer's MLP output, which is returned as `delta`; undefined when the backend's
// layer_tail added it to h already): each layer's new K/V go to
// the cache as `where` says; attend(q, k_cache, v_cache) returns the attention output [B, H, L, D].
// With `real` (llama_forward) h comes packed [1, T, hidden] and stays so, as does `delta`: only
// the q|k|v projections' outputs and the attention see the [B, L] layout (zeros at the padding).
// copy: llama_forward's copies, applied to each layer's cache before it attends.
template <class Ops, class Attend>
at::Tensor decoder_layers(const LlamaModel& model, KVCache& cache, at::Tensor& h, const at::Tensor& cos,
                          const at::Tensor& sin, const CacheWrite& where, Attend&& attend, int64_t B, int64_t L,
                          const at::Tensor& real = {}, const SlotCopyIndex& copy = {}) {
  const ModelConfig& c = model.config;
  const int64_t H = c.num_heads, D = c.head_dim;
  const double eps = c.rms_norm_eps;
  const PackedColumns packed{real, B, L};
  at::Tensor delta;   // the last layer's MLP output, added to h by the next norm (undefined: h has it)
  at::Tensor q_next;  // layer i's q when layer i - 1's tail computed it
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const LayerWeights& l = model.weights.layers[i];
    at::Tensor kc = cache.k.select(0, i);  // [B, Hkv, T, D]
    at::Tensor vc = cache.v.select(0, i);
    at::Tensor q = std::move(q_next);
    if (!q.defined()) {
      const at::Tensor x = delta.defined() ? Ops::add_norm(h, delta, l.input_norm, eps) : Ops::norm(h, l.input_norm, eps);
      q = Ops::attention_inputs(model, l, x, cos, sin, kc, vc, where, packed);
    }
    if (copy.rows.defined()) {
      using at::indexing::Slice;
      kc.index_put_({copy.rows, Slice(), copy.dst}, kc.index({copy.rows, Slice(), copy.src}));
      vc.index_put_({copy.rows, Slice(), copy.dst}, vc.index({copy.rows, Slice(), copy.src}));
    }
    at::Tensor a = attend(q, kc, vc).transpose(1, 2).reshape({B, L, H * D});
    if (packed.on()) a = pack_columns(a, real);
    if constexpr (Ops::kLayerTail) {
      if (Ops::layer_tail_fits(model, i, where, B * L)) {
        at::Tensor kn, vn;
        if (i + 1 < c.num_layers) kn = cache.k.select(0, i + 1), vn = cache.v.select(0, i + 1);
        q_next = Ops::layer_tail(model, i, a, h, cos, sin, kn, vn, where);
        delta = at::Tensor();
        continue;
      }
    }
    const at::Tensor x = Ops::add_norm(h, Ops::linear(a, l.o_proj, l.o_bias, where), l.post_norm, eps);
    delta = Ops::mlp(l, x, where);
  }
  return delta;
}

// Runs f with the layer operations of the model's backend.
template <class F>
at::Tensor with_backend(const LlamaModel& model, F&& f) {
  if (model.device.is_cuda()) {
    CudaLayerOps::check(model);
    return f(CudaLayerOps{});
  }
  return f(CpuLayerOps{});
}

void check_cache(const LlamaModel& model, const KVCache& cache, int64_t B, const char* who) {
  const ModelConfig& c = model.config;
  if (!cache.k.defined() || cache.batch() != B || cache.k.size(0) != c.num_layers ||
      cache.k.size(2) != c.num_kv_heads || cache.k.size(4) != c.head_dim || cache.k.scalar_type() != model.dtype ||
      cache.k.device() != model.device)
    throw std::invalid_argument(std::string(who) + ": KV cache does not fit this model and batch " + std::to_string(B));
}

}  // namespace

at::Tensor rope_inv_freq(const ModelConfig& c) {
  const int64_t dim = c.head_dim;
  // _compute_default_rope_parameters
  // fp32 exponents and reciprocals as transformers; the power in double, rounded to fp32 (libtorch's
  // vectorised pow depends on the CPU's vector width).
  at::Tensor inv_freq = at::empty({dim / 2}, at::kFloat);
  const float base = static_cast<float>(c.rope_theta);
  float* out = inv_freq.data_ptr<float>();
  for (int64_t i = 0; i < dim / 2; ++i) {
    const float e = static_cast<float>(2 * i) / static_cast<float>(dim);
    out[i] = 1.0f / static_cast<float>(std::pow(static_cast<double>(base), static_cast<double>(e)));
  }
  if (c.rope_type == RopeType::Default) return inv_freq;
  // _compute_llama3_parameters, operation for operation.
  const double factor = c.rope_factor;
  const double low = c.rope_low_freq_factor;
  const double high = c.rope_high_freq_factor;
  const double old_len = static_cast<double>(c.rope_original_max_position_embeddings);
  const double low_freq_wavelen = old_len / low;
  const double high_freq_wavelen = old_len / high;
  at::Tensor wavelen = inv_freq.reciprocal() * (2 * M_PI);
  at::Tensor llama = at::where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq);
  at::Tensor smooth = (wavelen.reciprocal() * old_len - low) / (high - low);
  at::Tensor smoothed = (1 - smooth) * llama / factor + smooth * llama;
  at::Tensor medium = (wavelen < high_freq_wavelen).logical_not() * (wavelen > low_freq_wavelen).logical_not();
  return at::where(medium, smoothed, llama);
}

at::Tensor llama_forward(const LlamaModel& model, KVCache& cache, const at::Tensor& tokens_in,
                         const at::Tensor& positions_in, const BatchMask& mask, LogitsMode logits_mode,
                         const at::Tensor& last_in, const at::Tensor& real_in, const KvSlotCopies& copies) {
  const ModelConfig& c = model.config;
  if (tokens_in.dim() != 2 || tokens_in.scalar_type() != at::kLong)
    throw std::invalid_argument("llama_forward: tokens must be int64 [B, L], got " + shape_str(tokens_in.sizes()));
  if (positions_in.sizes() != tokens_in.sizes() || positions_in.scalar_type() != at::kLong)
    throw std::invalid_argument("llama_forward: positions must be int64 " + shape_str(tokens_in.sizes()) +
                                ", got " + shape_str(positions_in.sizes()));
  const int64_t B = tokens_in.size(0), L = tokens_in.size(1);
  check_cache(model, cache, B, "llama_forward");
  const int64_t start = cache.length;
  if (start + L > cache.max_length())
    throw std::invalid_argument("llama_forward: " + std::to_string(start + L) + " positions exceed the KV cache (" +
                                std::to_string(cache.max_length()) + ")");
  if (L == 0) throw std::invalid_argument("llama_forward: no tokens");
  if (tokens_in.min().item<int64_t>() < 0 || tokens_in.max().item<int64_t>() >= c.vocab_size)
    throw std::invalid_argument("llama_forward: token id outside the vocabulary (" + std::to_string(c.vocab_size) + ")");
  const bool gather = logits_mode == LogitsMode::Last && last_in.defined();
  if (gather) {
    if (last_in.dim() != 1 || last_in.size(0) != B || last_in.scalar_type() != at::kLong)
      throw std::invalid_argument("llama_forward: last must be int64 [" + std::to_string(B) + "], got " +
                                  shape_str(last_in.sizes()));
    if (last_in.min().item<int64_t>() < 0 || last_in.max().item<int64_t>() >= L)
      throw std::invalid_argument("llama_forward: a last column outside the " + std::to_string(L) + " columns");
  }
  // Packed: each row's last column's place in the packed order (Last logits).
  at::Tensor last_packed;
  if (real_in.defined()) {
    const at::Tensor r = real_in.to(at::kCPU);
    if (r.dim() != 1 || r.scalar_type() != at::kLong || r.size(0) < 1 || r.size(0) > B * L ||
        r.min().item<int64_t>() < 0 || r.max().item<int64_t>() >= B * L ||
        (r.size(0) > 1 && (r.narrow(0, 1, r.size(0) - 1) <= r.narrow(0, 0, r.size(0) - 1)).any().item<bool>()))
      throw std::invalid_argument("llama_forward: real must list ascending columns of the " + std::to_string(B * L) +
                                  " of the pass, got " + shape_str(real_in.sizes()));
    // Every column's place in the packed order (-1: not listed).
    const at::Tensor packed_at = at::full({B * L}, -1, at::kLong).index_copy_(0, r, at::arange(r.size(0), at::kLong));
    if (logits_mode == LogitsMode::Last) {
      const at::Tensor cols = gather ? last_in.to(at::kCPU) : at::full({B}, L - 1, at::kLong);
      last_packed = packed_at.index_select(0, at::arange(B, at::kLong) * L + cols);
      if ((last_packed < 0).any().item<bool>())
        throw std::invalid_argument("llama_forward: a last column that real does not list");
    }
  }

  const size_t nc = copies.rows.size();
  if (copies.src.size() != nc || copies.dst.size() != nc)
    throw std::invalid_argument("llama_forward: copies need a row, a source and a destination each");
  for (size_t i = 0; i < nc; ++i)
    if (copies.rows[i] < 0 || copies.rows[i] >= B || copies.dst[i] < start || copies.dst[i] >= start + L ||
        copies.src[i] < 0 || copies.src[i] >= start + L || copies.src[i] == copies.dst[i])
      throw std::invalid_argument("llama_forward: a copy from slot " + std::to_string(copies.src[i]) + " to slot " +
                                  std::to_string(copies.dst[i]) + " of row " + std::to_string(copies.rows[i]) +
                                  " outside the pass's " + std::to_string(B) + " rows and slots [" +
                                  std::to_string(start) + ", " + std::to_string(start + L) + ")");
  {
    std::vector<std::pair<int64_t, int64_t>> dsts;
    for (size_t i = 0; i < nc; ++i) dsts.emplace_back(copies.rows[i], copies.dst[i]);
    std::sort(dsts.begin(), dsts.end());
    for (size_t i = 0; i < nc; ++i)
      if (std::binary_search(dsts.begin(), dsts.end(), std::make_pair(copies.rows[i], copies.src[i])))
        throw std::invalid_argument("llama_forward: copy source slot " + std::to_string(copies.src[i]) + " of row " +
                                    std::to_string(copies.rows[i]) + " is itself a copy's destination");
  }

  c10::NoGradGuard no_grad;
  const at::Tensor tokens = tokens_in.to(model.device), positions = positions_in.to(model.device);
  SlotCopyIndex copy;
  if (nc > 0) {
    copy = {at::tensor(copies.rows, at::kLong).to(model.device), at::tensor(copies.src, at::kLong).to(model.device),
            at::tensor(copies.dst, at::kLong).to(model.device)};
  }
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.head_dim));
  CacheWrite where;
  where.start = start;
  where.first_slot = at::full({B}, start, tokens.options());
  where.rows_apart = mask.batch_invariant();
  at::Tensor logits = with_backend(model, [&](auto ops) {
    using Ops = decltype(ops);
    const auto [cos, sin] = Ops::rope(model, positions);
    const at::Tensor real = real_in.defined() ? real_in.to(model.device) : at::Tensor();
    at::Tensor h = at::embedding(model.weights.embed, real.defined() ? tokens.reshape({1, B * L}).index_select(1, real)
                                                                     : tokens);
    at::Tensor delta = decoder_layers<Ops>(
        model, cache, h, cos, sin, where,
        [&](const at::Tensor& q, const at::Tensor& kc, const at::Tensor& vc) {
          return attention(q, kc.narrow(2, 0, start + L), vc.narrow(2, 0, start + L), mask, scale, start, 0);
        },
        B, L, real, copy);
    if (!gather) {
      if (real.defined()) {
        at::Tensor h_full, delta_full;
        h = unpack_columns(h, real, B, L, h_full);
        delta = unpack_columns(delta, real, B, L, delta_full);
      }
      return Ops::logits(model, h, delta, logits_mode, where);
    }
    // Each row's column picked before the last residual add (exact copies): [B, 1, hidden].
    at::Tensor h_last, d_last;
    if (real.defined()) {
      const at::Tensor at_packed = last_packed.to(model.device);
      h_last = h.select(0, 0).index_select(0, at_packed).unsqueeze(1);
      d_last = delta.select(0, 0).index_select(0, at_packed).unsqueeze(1);
    } else {
      const at::Tensor rows = at::arange(B, tokens.options()), cols = last_in.to(model.device);
      h_last = h.index({rows, cols}).unsqueeze(1);
      d_last = delta.index({rows, cols}).unsqueeze(1);
    }
    return Ops::logits(model, h_last, d_last, LogitsMode::Last, where);
  });
  cache.length = start + L;
  return logits;
}

at::Tensor llama_step(const LlamaModel& model, KVCache& cache, const StepInputs& in, const BatchMask& mask) {
  const int64_t R = in.tokens.size(0);
  if (in.tokens.dim() != 2 || in.tokens.size(1) != 1 || in.positions.sizes() != in.tokens.sizes() ||
      in.slots.dim() != 1 || in.slots.size(0) != R || in.rows.dim() != 1 || in.rows.size(0) != R)
    throw std::invalid_argument("llama_step: tokens/positions [R, 1], slots/rows [R] expected, got tokens " +
                                shape_str(in.tokens.sizes()));
  check_cache(model, cache, R, "llama_step");
  c10::NoGradGuard no_grad;
  const double scale = 1.0 / std::sqrt(static_cast<double>(model.config.head_dim));
  CacheWrite where;
  where.first_slot = in.slots;
  where.rows = in.rows;
  where.rows_apart = in.batch_invariant;
  return with_backend(model, [&](auto ops) {
    using Ops = decltype(ops);
    const auto [cos, sin] = Ops::rope(model, in.positions);
    at::Tensor h = at::embedding(model.weights.embed, in.tokens);
    const at::Tensor delta = decoder_layers<Ops>(
        model, cache, h, cos, sin, where,
        [&](const at::Tensor& q, const at::Tensor& kc, const at::Tensor& vc) { return attention(q, kc, vc, mask, scale, 0, 0); },
        R, 1);
    at::Tensor last = h.select(1, 0);
    return Ops::logits(model, last, delta.defined() ? delta.select(1, 0) : at::Tensor(), LogitsMode::All, where);
  });
}

at::Tensor llama_forward_full(const LlamaModel& model, const at::Tensor& tokens, const at::Tensor& positions,
                              const BatchMask& mask) {
  KVCache cache = make_kv_cache(model, tokens.size(0), tokens.size(1));
  return llama_forward(model, cache, tokens, positions, mask, LogitsMode::All);
}

}  // namespace flexgen
