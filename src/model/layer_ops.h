// The per-backend operations the LLaMA forward pass (llama.cpp) is written over, private to the
// model. Each backend rounds where transformers' modules round (bf16 after every op); the CPU one
// runs flexgen's CPU kernels (ops/cpu: the same bits on every instruction-set path) and libtorch
// only for exact element-wise steps (add, multiply, copies); the CUDA one the fused kernels (ops/cuda).
// Every op takes and returns tensors on the model's device.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <utility>

#include "flexgen/llama.h"

namespace flexgen {

// Where a layer's new keys and values go in its cache.
struct CacheWrite {
  int64_t start = -1;     // >= 0: every row's L new tokens at slots start .. start+L-1 (prefill)
  at::Tensor first_slot;  // int64 [B] on the device: slot of each row's first new token
  at::Tensor rows;        // int64 [B] 0 .. B-1 (decode steps on the CPU)
  // Rows that must not share arithmetic (batch invariance), in decode steps and prefill passes
  // alike: CUDA keeps them on its row-invariant linear instead of a batched GEMM. The CPU kernels
  // always are.
  bool rows_apart = false;
};

// Packed tokens (llama_forward's `real`): the listed columns b * L + c of a [B, L] pass, on the
// model's device (undefined: not packed).
struct PackedColumns {
  at::Tensor real;
  int64_t B = 0, L = 0;
  bool on() const { return real.defined(); }
  // The rows of x [1, T, width] (one per listed column) laid out [B, L, width], zeros elsewhere,
  // in buffer `slot` (0-2; allocated on first use, then reused: every layer lists the same
  // columns, so the others stay zero). The result is valid until the slot's next unpack.
  at::Tensor unpack(const at::Tensor& x, int slot = 0) const;
  // Each column's row of the packed tokens, int64 [B * L] on real's device (-1: not listed);
  // computed on first use.
  const at::Tensor& column_rows() const;
  mutable std::array<at::Tensor, 3> into;
  mutable at::Tensor rows;
};

struct CpuLayerOps {
  // Whether the backend has layer_tail (below: CUDA's batch-1 decode steps).
  static constexpr bool kLayerTail = false;
  static void check(const LlamaModel&) {}
  // RoPE tables for position ids [B, L]: cos and sin [B, 1, L, head_dim] in the compute dtype
  // (the fp32 angles as transformers forms them; cos/sin the same on every CPU: ops/cpu/rope_cpu.h).
  static std::pair<at::Tensor, at::Tensor> rope(const LlamaModel& m, const at::Tensor& positions);
  // LlamaRMSNorm: fp32 statistics, cast back, then scale.
  static at::Tensor norm(const at::Tensor& x, const at::Tensor& weight, double eps);
  // h = h + delta (the residual, rounded like at::add), then norm(h).
  static at::Tensor add_norm(at::Tensor& h, const at::Tensor& delta, const at::Tensor& weight, double eps);
  // q|k|v projections of x [B, L, hidden] and RoPE (cos/sin [B, 1, L, D]); the new keys and values
  // written into the layer's cache [B, Hkv, T, D]. Returns q [B, H, L, D] contiguous. With `packed`
  // (llama_forward's `real`) x is [1, T, hidden], the listed columns of the [B, L] layout: the
  // projections run on them, and the other columns get zero q, k and v.
  static at::Tensor attention_inputs(const LlamaModel& m, const LayerWeights& l, const at::Tensor& x,
                                     const at::Tensor& cos, const at::Tensor& sin, at::Tensor& k_cache,
                                     at::Tensor& v_cache, const CacheWrite& where, const PackedColumns& packed);
  static at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                           const CacheWrite& where);
  // down(silu(gate(x)) * up(x)).
  static at::Tensor mlp(const LayerWeights& l, const at::Tensor& x, const CacheWrite& where);
  // The last residual add, the final norm and the LM head: fp32 logits of h's rows (only the last
  // position of each row for LogitsMode::Last). delta undefined: h holds the whole residual.
  static at::Tensor logits(const LlamaModel& m, at::Tensor& h, const at::Tensor& delta, LogitsMode mode,
                           const CacheWrite& where);
};

struct CudaLayerOps {
  static constexpr bool kLayerTail = true;
  // The CUDA kernels take bf16 or fp16 weights with q|k|v and gate|up fused (fuse_projections).
  static void check(const LlamaModel& m);
  // Whether layer i of a pass of `rows` rows runs its tail through layer_tail: batch-1 decode
  // steps of layers without o/gate|up/down biases (cuda_decode_layer_kernel).
  static bool layer_tail_fits(const LlamaModel& m, int64_t i, const CacheWrite& where, int64_t rows);
  // Layer i after its attention a, in one launch: h += o(a); h += mlp(post_norm(h)) (h holds the
  // whole residual after it). Unless i is the last layer or the next one has a q|k|v bias: the next
  // layer's attention inputs too (its k/v written into k_next/v_next, q returned); else returns an
  // undefined tensor. The same bits as the separate ops.
  static at::Tensor layer_tail(const LlamaModel& m, int64_t i, const at::Tensor& a, at::Tensor& h,
                               const at::Tensor& cos, const at::Tensor& sin, at::Tensor& k_next, at::Tensor& v_next,
                               const CacheWrite& where);
  static std::pair<at::Tensor, at::Tensor> rope(const LlamaModel& m, const at::Tensor& positions);
  static at::Tensor norm(const at::Tensor& x, const at::Tensor& weight, double eps);
  static at::Tensor add_norm(at::Tensor& h, const at::Tensor& delta, const at::Tensor& weight, double eps);
  static at::Tensor attention_inputs(const LlamaModel& m, const LayerWeights& l, const at::Tensor& x,
                                     const at::Tensor& cos, const at::Tensor& sin, at::Tensor& k_cache,
                                     at::Tensor& v_cache, const CacheWrite& where, const PackedColumns& packed);
  static at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                           const CacheWrite& where);
  static at::Tensor mlp(const LayerWeights& l, const at::Tensor& x, const CacheWrite& where);
  static at::Tensor logits(const LlamaModel& m, at::Tensor& h, const at::Tensor& delta, LogitsMode mode,
                           const CacheWrite& where);
};

}  // namespace flexgen
