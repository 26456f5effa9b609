// CpuLayerOps (layer_ops.h): flexgen's CPU kernels, rounding as transformers does.
#include "layer_ops.h"

#include <ATen/ATen.h>
#include <ATen/TensorIndexing.h>

#include "cpu/linear_cpu.h"
#include "cpu/pointwise_cpu.h"
#include "cpu/rope_cpu.h"

namespace flexgen {
namespace {

at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t h = x.size(-1) / 2;
  return at::cat({x.narrow(-1, h, h).neg(), x.narrow(-1, 0, h)}, -1);
}

}  // namespace

std::pair<at::Tensor, at::Tensor> CpuLayerOps::rope(const LlamaModel& m, const at::Tensor& positions) {
  return rope_tables_cpu(positions, m.inv_freq, m.dtype);
}

at::Tensor CpuLayerOps::norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  return rms_norm_cpu(x, weight, eps);
}

at::Tensor CpuLayerOps::add_norm(at::Tensor& h, const at::Tensor& delta, const at::Tensor& weight, double eps) {
  h = h + delta;
  return norm(h, weight, eps);
}

at::Tensor CpuLayerOps::attention_inputs(const LlamaModel& m, const LayerWeights& l, const at::Tensor& x,
                                         const at::Tensor& cos, const at::Tensor& sin, at::Tensor& k_cache,
                                         at::Tensor& v_cache, const CacheWrite& where, const PackedColumns& packed) {
  const ModelConfig& c = m.config;
  const int64_t B = packed.on() ? packed.B : x.size(0), L = packed.on() ? packed.L : x.size(1);
  const int64_t H = c.num_heads, Hkv = c.num_kv_heads, D = c.head_dim;
  std::vector<at::Tensor> qkv = linear_layers(x, {l.q_proj, l.k_proj, l.v_proj}, {l.q_bias, l.k_bias, l.v_bias});
  if (packed.on())
    for (int i = 0; i < 3; ++i) qkv[i] = packed.unpack(qkv[i], i);
  at::Tensor q = qkv[0].view({B, L, H, D}).transpose(1, 2);
  at::Tensor k = qkv[1].view({B, L, Hkv, D}).transpose(1, 2);
  at::Tensor v = qkv[2].view({B, L, Hkv, D}).transpose(1, 2);
  q = q * cos + rotate_half(q) * sin;
  k = k * cos + rotate_half(k) * sin;
  if (where.start >= 0) {
    k_cache.narrow(2, where.start, L).copy_(k);
    v_cache.narrow(2, where.start, L).copy_(v);
  } else {
    // One token per row: cache[r, :, first_slot[r], :] = k[r, :, 0, :].
    using at::indexing::Slice;
    k_cache.index_put_({where.rows, Slice(), where.first_slot}, k.select(2, 0));
    v_cache.index_put_({where.rows, Slice(), where.first_slot}, v.select(2, 0));
  }
  return q.contiguous();
}

at::Tensor CpuLayerOps::linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                               const CacheWrite&) {
  return linear_layer(x, weight, bias);
}

at::Tensor CpuLayerOps::mlp(const LayerWeights& l, const at::Tensor& x, const CacheWrite&) {
  std::vector<at::Tensor> gu = linear_layers(x, {l.gate_proj, l.up_proj}, {l.gate_bias, l.up_bias});
  return linear_layer(silu_mul_cpu(gu[0], gu[1]), l.down_proj, l.down_bias);
}

at::Tensor CpuLayerOps::logits(const LlamaModel& m, at::Tensor& h, const at::Tensor& delta, LogitsMode mode,
                               const CacheWrite&) {
  h = h + delta;
  const at::Tensor rows = mode == LogitsMode::Last ? h.narrow(1, h.size(1) - 1, 1) : h;
  return linear_layer(norm(rows, m.weights.final_norm, m.config.rms_norm_eps), m.weights.lm_head).to(at::kFloat);
}

}  // namespace flexgen
