// CudaLayerOps (layer_ops.h): the fused CUDA kernels of ops/cuda (stubs that throw in CPU builds).
#include "layer_ops.h"

#include <ATen/ATen.h>

#include <stdexcept>

#include "cuda/fused_ops_cuda.h"

namespace flexgen {

namespace {
// A batch-invariant decode step: its linears run on the row-invariant decode kernel, whose
// epilogues take the step's RoPE and SiLU.
bool decode_step(const CacheWrite& where) { return where.rows_apart && where.start < 0; }
}  // namespace

void CudaLayerOps::check(const LlamaModel& m) {
  if ((m.dtype != at::kBFloat16 && m.dtype != at::kHalf) || m.weights.layers.empty() ||
      !m.weights.layers.front().qkv_proj.defined())
    throw std::invalid_argument(
        "llama_forward: a CUDA model must be bf16 or fp16 with fused projections (fuse_projections)");
}

// RoPE tables on the device, in fp32 like transformers.
std::pair<at::Tensor, at::Tensor> CudaLayerOps::rope(const LlamaModel& m, const at::Tensor& positions) {
  return rope_tables_cuda(positions, m.inv_freq, m.dtype);
}

at::Tensor CudaLayerOps::norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  return rms_norm_cuda(x, weight, eps);
}

at::Tensor CudaLayerOps::add_norm(at::Tensor& h, const at::Tensor& delta, const at::Tensor& weight, double eps) {
  return add_rms_norm_cuda(h, delta, weight, eps);
}

at::Tensor CudaLayerOps::attention_inputs(const LlamaModel& m, const LayerWeights& l, const at::Tensor& x,
                                          const at::Tensor& cos, const at::Tensor& sin, at::Tensor& k_cache,
                                          at::Tensor& v_cache, const CacheWrite& where, const PackedColumns& packed) {
  // Decode steps (rows apart): RoPE and the cache write in the projection's epilogue, same bits.
  if (decode_step(where))
    return linear_rope_qkv_cuda(x, l.qkv_proj, l.qkv_bias, cos, sin, m.config.num_heads, m.config.num_kv_heads,
                                k_cache, v_cache, where.first_slot);
  const at::Tensor qkv = linear(x, l.qkv_proj, l.qkv_bias, where);
  // Packed tokens: RoPE reads each token's row in place (zeros at the padding, as unpacked).
  if (packed.on())
    return rope_qkv_packed_cuda(qkv, packed.column_rows(), packed.B, packed.L, cos, sin, m.config.num_heads,
                                m.config.num_kv_heads, k_cache, v_cache, where.first_slot);
  return rope_qkv_cuda(qkv, cos, sin, m.config.num_heads, m.config.num_kv_heads, k_cache, v_cache, where.first_slot);
}

at::Tensor CudaLayerOps::linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                                const CacheWrite& where) {
  // Rows kept apart: the row-invariant kernel of prefill passes (start >= 0) or of decode steps.
  return linear_cuda(x, weight, bias, where.rows_apart, where.start >= 0);
}

at::Tensor CudaLayerOps::mlp(const LayerWeights& l, const at::Tensor& x, const CacheWrite& where) {
  // Decode steps and prefill passes with rows apart: the SiLU in the projection's epilogue, same bits.
  const at::Tensor act = decode_step(where) ? linear_silu_mul_cuda(x, l.gate_up_proj, l.gate_up_bias)
                         : where.rows_apart ? prefill_linear_silu_mul_cuda(x, l.gate_up_proj, l.gate_up_bias)
                                            : silu_mul_cuda(linear(x, l.gate_up_proj, l.gate_up_bias, where));
  return linear(act, l.down_proj, l.down_bias, where);
}

bool CudaLayerOps::layer_tail_fits(const LlamaModel& m, int64_t i, const CacheWrite& where, int64_t rows) {
  const LayerWeights& l = m.weights.layers[static_cast<size_t>(i)];
  return decode_step(where) && cuda_decode_layer_kernel(rows) && !l.o_bias.defined() && !l.gate_up_bias.defined() &&
         !l.down_bias.defined() && l.gate_up_proj.defined() && m.config.hidden_size <= 8192 &&
         m.config.hidden_size % 8 == 0 && m.config.intermediate_size <= 16384 && m.config.intermediate_size % 8 == 0 &&
         m.config.num_heads * m.config.head_dim % 8 == 0;
}

at::Tensor CudaLayerOps::layer_tail(const LlamaModel& m, int64_t i, const at::Tensor& a, at::Tensor& h,
                                    const at::Tensor& cos, const at::Tensor& sin, at::Tensor& k_next,
                                    at::Tensor& v_next, const CacheWrite& where) {
  const auto& layers = m.weights.layers;
  const LayerWeights& l = layers[static_cast<size_t>(i)];
  const DecodeLayerTail tail{l.o_proj, l.post_norm, l.gate_up_proj, l.down_proj, m.config.rms_norm_eps, i};
  const bool next = i + 1 < static_cast<int64_t>(layers.size()) && !layers[static_cast<size_t>(i) + 1].qkv_bias.defined() &&
                    m.config.head_dim % 16 == 0;
  if (!next) return decode_layer_tail_cuda(h, a, tail);
  const LayerWeights& n = layers[static_cast<size_t>(i) + 1];
  const NextLayerQkv qkv{n.input_norm, n.qkv_proj, cos, sin, k_next, v_next, where.first_slot,
                         m.config.num_heads, m.config.num_kv_heads};
  return decode_layer_tail_cuda(h, a, tail, &qkv);
}

at::Tensor CudaLayerOps::logits(const LlamaModel& m, at::Tensor& h, const at::Tensor& delta, LogitsMode mode,
                                const CacheWrite& where) {
  const double eps = m.config.rms_norm_eps;
  at::Tensor x = delta.defined() ? add_rms_norm_cuda(h, delta, m.weights.final_norm, eps)
                                 : rms_norm_cuda(h, m.weights.final_norm, eps);
  if (mode == LogitsMode::Last) x = x.narrow(1, x.size(1) - 1, 1).contiguous();
  return linear(x, m.weights.lm_head, {}, where).to(at::kFloat);
}

}  // namespace flexgen
