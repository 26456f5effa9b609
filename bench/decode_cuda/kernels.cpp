// Each kernel of a decode step alone, as a CUDA graph over all layers (kernels.h).
#include "kernels.h"

#include <ATen/ATen.h>

#include <cmath>
#include <functional>
#include <stdexcept>

#include "clock.h"
#include "cuda/fused_ops_cuda.h"
#include "flexgen/attention.h"
#include "flexgen/kv_cache.h"
#include "flexgen/mask.h"
#include "progress.h"

namespace bench_decode {

namespace {

std::string shape(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? "," : "") + std::to_string(t.size(i));
  return s + "]";
}

double nbytes(const at::Tensor& t) { return static_cast<double>(t.numel()) * static_cast<double>(t.element_size()); }

}  // namespace

nlohmann::ordered_json KernelResult::to_json(const Limits& limits) const {
  const double gbps = us > 0 ? bytes / us / 1e3 : 0;  // bytes / (us * 1e-6) / 1e9
  return {{"name", name},
          {"us", us},
          {"bytes", bytes},
          {"gbps", gbps},
          {"frac_copy_bw", limits.copy_gbps > 0 ? gbps / limits.copy_gbps : 0},
          {"frac_read_bw", limits.read_gbps > 0 ? gbps / limits.read_gbps : 0},
          {"launches_per_step", launches_per_step},
          {"step_us", us * static_cast<double>(launches_per_step)},
          {"launches_per_replay", launches_per_replay},
          {"replays", replays},
          {"what", what}};
}

std::vector<KernelResult> measure_kernels(const flexgen::LlamaModel& model, const KernelSetup& s) {
  const flexgen::ModelConfig& c = model.config;
  const auto& layers = model.weights.layers;
  if (!model.device.is_cuda() || layers.empty() || !layers.front().qkv_proj.defined())
    throw std::invalid_argument("measure_kernels: needs a CUDA model with fused projections");
  const int64_t L = c.num_layers, hid = c.hidden_size, inter = c.intermediate_size, H = c.num_heads,
                Hkv = c.num_kv_heads, D = c.head_dim, qkv_width = (H + 2 * Hkv) * D;
  const double eps = c.rms_norm_eps, es = static_cast<double>(at::elementSize(model.dtype));
  const auto opts = at::TensorOptions().dtype(model.dtype).device(model.device);
  auto random = [&](std::vector<int64_t> sizes) { return at::empty(sizes, opts).normal_(0.0, 1.0); };

  // The activations of one decode step (R rows, one token each), random.
  const int64_t R = s.rows;
  const double r = static_cast<double>(R);
  const at::Tensor x_hidden = random({R, 1, hid}), x_attn = random({R, 1, H * D}), x_inter = random({R, 1, inter});
  const at::Tensor gate_up = random({R, 1, 2 * inter}), qkv = random({R, 1, qkv_width});
  at::Tensor h = random({R, 1, hid});
  const at::Tensor delta = random({R, 1, hid}).mul_(0.02);
  const at::Tensor cos = at::empty({R, 1, 1, D}, opts).uniform_(-1.0, 1.0);
  const at::Tensor sin = at::empty({R, 1, 1, D}, opts).uniform_(-1.0, 1.0);
  const at::Tensor q = random({R, H, 1, D});
  flexgen::KVCache cache = flexgen::make_kv_cache(model, R, s.cache_length);
  cache.k.normal_(0.0, 1.0);
  cache.v.normal_(0.0, 1.0);
  const at::Tensor first_slot = at::full({R}, s.context, at::TensorOptions().dtype(at::kLong).device(model.device));
  // The decode step's mask: causal over the cache, the query row at slot `context`.
  const flexgen::RowMask row = flexgen::make_row_mask(flexgen::causal_mask(s.cache_length), s.block_size, model.device);
  flexgen::BatchMask mask = flexgen::BatchMask::decode(std::vector<flexgen::RowMask>(static_cast<size_t>(R), row),
                                                       std::vector<int64_t>(static_cast<size_t>(R), s.context));
  mask.with_batch_invariance(s.batch_invariant);
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));

  std::vector<KernelResult> out;
  // Runs `one(layer)` for every layer in one graph (per_layer) or `one(0)` once (the LM head).
  auto measure = [&](const std::string& name, const std::string& what, double bytes, int64_t per_step,
                     bool per_layer, const std::function<at::Tensor(int64_t)>& one) {
    const int64_t launches = per_layer ? L : 1;
    progress("kernel " + name + " (" + std::to_string(launches) + " launches per graph, " + std::to_string(s.reps) +
             " replays)");
    const GraphTiming t = time_graph(
        model.device,
        [&] {
          at::Tensor last;
          for (int64_t i = 0; i < launches; ++i) last = one(i);
          return last;
        },
        launches, s.reps);
    KernelResult r;
    r.name = name;
    r.what = what;
    r.us = t.us_per_launch;
    r.bytes = bytes;
    r.launches_per_step = per_step;
    r.launches_per_replay = launches;
    r.replays = t.replays;
    out.push_back(r);
  };
  // x [R, 1, K] . w [N, K]^T -> [R, 1, N]: the weights, x and y.
  auto linear = [&](const std::string& name, const at::Tensor& x, const at::Tensor& (*weight)(const flexgen::LayerWeights&),
                    int64_t per_step) {
    const at::Tensor& w0 = weight(layers.front());
    measure(name, "linear_cuda x " + shape(x) + " . " + name + " " + shape(w0) + "^T",
            nbytes(w0) + nbytes(x) + r * static_cast<double>(w0.size(0)) * es, per_step, true,
            [&, weight](int64_t i) { return flexgen::linear_cuda(x, weight(layers[i]), {}, s.batch_invariant); });
  };

  // The input norm of layer 0; every later norm is an add_rms_norm.
  measure("rms_norm", "rms_norm_cuda x " + shape(x_hidden) + ", weight [" + std::to_string(hid) + "]",
          3 * r * hid * es, 1, true, [&](int64_t i) { return flexgen::rms_norm_cuda(x_hidden, layers[i].input_norm, eps); });
  // Decode steps fold RoPE (+ cache write) and SiLU x up into the q|k|v and gate|up projections'
  // epilogues (batch-invariant steps, FLEXGEN_CUDA_DECODE_EPILOGUE not `separate`): both ways are
  // timed, the step's way counted in the step.
  const bool fused = s.batch_invariant && flexgen::cuda_decode_epilogues_fused(R);
  const int64_t separate_per_step = fused ? 0 : L, fused_per_step = fused ? L : 0;
  const at::Tensor& qkv_w = layers.front().qkv_proj;
  measure("qkv_proj_rope",
          "linear_rope_qkv_cuda x " + shape(x_hidden) + " . qkv_proj " + shape(qkv_w) + "^T, RoPE, into the cache at slot " +
              std::to_string(s.context),
          nbytes(qkv_w) + nbytes(x_hidden) + r * ((2 * D + H * D + 2 * Hkv * D) * es + 8), fused_per_step, true,
          [&](int64_t i) {
            return flexgen::linear_rope_qkv_cuda(x_hidden, layers[i].qkv_proj, {}, cos, sin, H, Hkv, cache.k.select(0, i),
                                                 cache.v.select(0, i), first_slot);
          });
  linear("qkv_proj", x_hidden, [](const flexgen::LayerWeights& l) -> const at::Tensor& { return l.qkv_proj; },
         separate_per_step);
  measure("rope_qkv",
          "rope_qkv_cuda qkv " + shape(qkv) + ", cos/sin " + shape(cos) + ", into the cache " +
              shape(cache.k.select(0, 0)) + " at slot " + std::to_string(s.context),
          r * ((qkv_width + 2 * D + H * D + 2 * Hkv * D) * es + 8), separate_per_step, true, [&](int64_t i) {
            return flexgen::rope_qkv_cuda(qkv, cos, sin, H, Hkv, cache.k.select(0, i), cache.v.select(0, i), first_slot);
          });
  // Bytes: K and V of the keys the query may see (slots 0 .. context), q in, the output out.
  measure("attention",
          "flexgen::attention q " + shape(q) + ", k/v " + shape(cache.k.select(0, 0)) +
              ", BatchMask::decode (causal, block " + std::to_string(s.block_size) + ", batch_invariant " +
              (s.batch_invariant ? "on" : "off") + ") at position " + std::to_string(s.context),
          r * (2.0 * static_cast<double>(s.context + 1) * Hkv * D + 2.0 * H * D) * es, L, true, [&](int64_t i) {
            return flexgen::attention(q, cache.k.select(0, i), cache.v.select(0, i), mask, scale, 0, 0);
          });
  linear("o_proj", x_attn, [](const flexgen::LayerWeights& l) -> const at::Tensor& { return l.o_proj; }, L);
  // Residual add + norm: h read and written, delta, the weight, the output (per step: every layer's
  // post-attention norm, the input norms of layers 1.., the final norm).
  measure("add_rms_norm", "add_rms_norm_cuda h/delta " + shape(h) + ", weight [" + std::to_string(hid) + "]",
          5 * r * hid * es, 2 * L, true,
          [&](int64_t i) { return flexgen::add_rms_norm_cuda(h, delta, layers[i].post_norm, eps); });
  const at::Tensor& gate_up_w = layers.front().gate_up_proj;
  measure("gate_up_proj_silu", "linear_silu_mul_cuda x " + shape(x_hidden) + " . gate_up_proj " + shape(gate_up_w) + "^T",
          nbytes(gate_up_w) + nbytes(x_hidden) + r * static_cast<double>(inter) * es, fused_per_step, true,
          [&](int64_t i) { return flexgen::linear_silu_mul_cuda(x_hidden, layers[i].gate_up_proj); });
  linear("gate_up_proj", x_hidden, [](const flexgen::LayerWeights& l) -> const at::Tensor& { return l.gate_up_proj; },
         separate_per_step);
  measure("silu_mul", "silu_mul_cuda gu " + shape(gate_up), 3 * r * inter * es, separate_per_step, true,
          [&](int64_t) { return flexgen::silu_mul_cuda(gate_up); });
  linear("down_proj", x_inter, [](const flexgen::LayerWeights& l) -> const at::Tensor& { return l.down_proj; }, L);
  const at::Tensor& head = model.weights.lm_head;
  measure("lm_head", "linear_cuda x " + shape(x_hidden) + " . lm_head " + shape(head) + "^T",
          nbytes(head) + nbytes(x_hidden) + r * static_cast<double>(head.size(0)) * es, 1, false,
          [&](int64_t) { return flexgen::linear_cuda(x_hidden, head, {}, s.batch_invariant); });
  return out;
}

}  // namespace bench_decode
