// LLaMA-family decoder (LLaMA 3.x): its weights and the forward pass over a KV cache (loading:
// model_loader.h). Matches transformers' LlamaForCausalLM (RMSNorm in fp32, llama3 RoPE scaling,
// GQA, SwiGLU, tied or untied LM head). The forward pass is written once over per-backend layer
// operations; the model's device (LoadOptions) picks the backend.
#pragma once

#include <cstdint>

#include <ATen/Tensor.h>

#include <memory>
#include <string>
#include <vector>

#include "flexgen/attention.h"
#include "flexgen/kv_cache.h"
#include "flexgen/model_config.h"
#include "flexgen/safetensors.h"

namespace flexgen {

struct LayerWeights {
  at::Tensor input_norm;          // [hidden]
  at::Tensor q_proj, k_proj, v_proj, o_proj;  // [out, in]
  at::Tensor q_bias, k_bias, v_bias, o_bias;  // undefined unless attention_bias
  at::Tensor post_norm;           // [hidden]
  at::Tensor gate_proj, up_proj, down_proj;
  at::Tensor gate_bias, up_bias, down_bias;   // undefined unless mlp_bias
  // CUDA (fuse_projections, model_loader.h): q|k|v and gate|up as one matrix each (one GEMM); the separate
  // projections above are then views into these.
  at::Tensor qkv_proj, qkv_bias, gate_up_proj, gate_up_bias;
};

struct LlamaWeights {
  at::Tensor embed;       // [vocab, hidden]
  at::Tensor final_norm;  // [hidden]
  at::Tensor lm_head;     // [vocab, hidden]; the same tensor as embed when tied
  std::vector<LayerWeights> layers;
};

struct LoadOptions {
  // Compute dtype: at::kFloat or at::kBFloat16. Weights already in this dtype
  // are used in place (zero-copy from the mapping); others are converted.
  at::ScalarType dtype = at::kBFloat16;
  // Where the weights live and the forward pass runs: CPU (zero-copy) or a CUDA device.
  at::Device device = at::kCPU;
};

struct LlamaModel {
  ModelConfig config;
  LlamaWeights weights;
  at::ScalarType dtype = at::kBFloat16;
  at::Device device = at::kCPU;
  at::Tensor inv_freq;  // [head_dim / 2] fp32, llama3-scaled when configured
  // What identifies the weights for a record of a run: md5 over config.json (and
  // generation_config.json) and the safetensors headers (names, dtypes, shapes, offsets), or a
  // TorchScript archive's size and first MiB. Set by load_model; empty otherwise.
  std::string fingerprint;
  // CUDA: the kernels load_model loaded onto the device (preload_device_kernels; -1: the driver
  // loads them at their first launch).
  int kernels_preloaded = 0;
  // Keep the mapped files (and anything else the weights alias) alive.
  std::vector<std::shared_ptr<SafetensorsFile>> files;
};

// RoPE inverse frequencies exactly as transformers computes them (fp32).
at::Tensor rope_inv_freq(const ModelConfig& config);

// What the forward pass should return.
enum class LogitsMode { All, Last };

// K/V copies between cache slots of a pass's rows (llama_forward's `copies`), one entry per slot.
struct KvSlotCopies {
  std::vector<int64_t> rows, src, dst;
};

// One forward step over the cache.
//   tokens    [B, L] int64; positions [B, L] int64 (RoPE position ids, arbitrary)
//   the new tokens occupy cache slots cache.length .. cache.length+L-1 and
//   attend to slots 0 .. cache.length+L-1 under `mask` (absolute slot indices;
//   see attention.h). cache.length advances by L.
// tokens and positions may be CPU tensors (they are moved to the model's device).
// Returns logits fp32 [B, L, vocab] (All) or [B, 1, vocab] (Last), on the model's device.
// Last: row b's logits at column last[b] (int64 [B], any device; undefined: column L - 1), bitwise
// those of All at that column (the final norm and LM head are per row).
// mask.batch_invariant(): each row computed as alone (CUDA: CacheWrite::rows_apart).
// real (int64 [T], any device; undefined: every column): the columns b * L + c that hold tokens,
// ascending. The others are padding that no query attends to or that is overwritten before it is
// read: they get zero keys and values in the cache and the norms, linears and MLP run on the
// listed tokens only, packed, so padding costs only the attention. A listed column gets the bits
// it gets without `real` where the kernels are row-invariant (the CPU's; CUDA's prefill linear
// under batch invariance). Last logits must be at listed columns; All logits at unlisted ones are
// unspecified.
// copies: at every layer, once the pass has written its new K/V and before it attends, the K/V
// of cache slot src[i] of row rows[i] are copied to slot dst[i] (dst in the pass's slots, src
// before start + L, never itself a destination). For spans whose K/V equal an earlier span's
// (span_copy.h): their columns may be left out of `real`.
at::Tensor llama_forward(const LlamaModel& model, KVCache& cache, const at::Tensor& tokens,
                         const at::Tensor& positions, const BatchMask& mask,
                         LogitsMode logits = LogitsMode::All, const at::Tensor& last = {},
                         const at::Tensor& real = {}, const KvSlotCopies& copies = {});

// One decode step of rows that stand at different positions (continuous batching): row b's
// token goes to cache slot slots[b] and attends to the cache under the row's causal mask
// (BatchMask::decode with positions == slots, or BatchMask::decode_table). cache.length is not used.
// Every tensor on the model's device. No host synchronisation: CUDA graphs can capture it.
struct StepInputs {
  at::Tensor tokens;     // [R, 1] int64
  at::Tensor positions;  // [R, 1] int64 RoPE position ids
  at::Tensor slots;      // [R] int64 cache slot of each row's new token
  at::Tensor rows;       // [R] int64: 0 .. R-1
  // Each row computed as alone, so a row's logits do not depend on the others (CUDA: the
  // row-invariant tensor-core linear for every projection; the CPU kernels always are).
  bool batch_invariant = false;
};
// Returns logits fp32 [R, vocab].
at::Tensor llama_step(const LlamaModel& model, KVCache& cache, const StepInputs& in, const BatchMask& mask);

// Whole-sequence forward without a persistent cache (allocates one of length L).
at::Tensor llama_forward_full(const LlamaModel& model, const at::Tensor& tokens,
                              const at::Tensor& positions, const BatchMask& mask);

}  // namespace flexgen
