// LLaMA-family decoder (LLaMA 3.x): weights, loading from a Hugging Face
// directory or a TorchScript archive, and the forward pass over a KV cache.
// Matches transformers' LlamaForCausalLM (RMSNorm in fp32, llama3 RoPE
// scaling, GQA, SwiGLU, tied or untied LM head).
#pragma once

#include <cstdint>

#include <ATen/Tensor.h>

#include <filesystem>
#include <map>
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
  // CUDA (fuse_projections): q|k|v and gate|up as one matrix each (one GEMM); the separate
  // projections above are then views into these.
  at::Tensor qkv_proj, qkv_bias, gate_up_proj, gate_up_bias;
};

struct LlamaWeights {
  at::Tensor embed;       // [vocab, hidden]
  at::Tensor final_norm;  // [hidden]
  at::Tensor lm_head;     // [vocab, hidden]; the same tensor as embed when tied
  std::vector<LayerWeights> layers;
};

// Tensors by Hugging Face name, with where each came from (for messages).
struct NamedTensors {
  std::string source;  // the directory or archive (for messages)
  std::map<std::string, at::Tensor> tensors;
  std::map<std::string, std::string> origin;  // name -> file
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
  // Keep the mapped files (and anything else the weights alias) alive.
  std::vector<std::shared_ptr<SafetensorsFile>> files;
};

// Concatenates each layer's q/k/v and gate/up weights into one matrix (the separate ones become
// views of it): what the CUDA forward pass uses. Done by assemble_llama for CUDA models.
void fuse_projections(LlamaModel& model);

// RoPE inverse frequencies exactly as transformers computes them (fp32).
at::Tensor rope_inv_freq(const ModelConfig& config);

// Checks names and shapes against the config and assembles the model; unknown,
// missing or misshapen tensors throw ModelError naming the tensor and its file.
LlamaModel assemble_llama(const ModelConfig& config, const NamedTensors& named,
                          const LoadOptions& options);

// Hugging Face directory: config.json, model.safetensors or the shards of
// model.safetensors.index.json, generation_config.json when present.
LlamaModel load_llama_from_directory(const std::filesystem::path& dir,
                                     const LoadOptions& options = {});

// Tensors of a directory's safetensors files (validated, zero-copy), by name.
NamedTensors read_safetensors_directory(const std::filesystem::path& dir,
                                        std::vector<std::shared_ptr<SafetensorsFile>>* files);

// What the forward pass should return.
enum class LogitsMode { All, Last };

// One forward step over the cache.
//   tokens    [B, L] int64; positions [B, L] int64 (RoPE position ids, arbitrary)
//   the new tokens occupy cache slots cache.length .. cache.length+L-1 and
//   attend to slots 0 .. cache.length+L-1 under `mask` (absolute slot indices;
//   see attention.h). cache.length advances by L.
// tokens and positions may be CPU tensors (they are moved to the model's device).
// Returns logits fp32 [B, L, vocab] (All) or [B, 1, vocab] (Last), on the model's device.
at::Tensor llama_forward(const LlamaModel& model, KVCache& cache, const at::Tensor& tokens,
                         const at::Tensor& positions, const AttentionMaskRef& mask,
                         LogitsMode logits = LogitsMode::All);

// One decode step of rows that stand at different positions (continuous batching): row b's
// token goes to cache slot slots[b] and attends to the cache under the row's causal mask
// (mask.row_q_offsets == slots on the CPU; mask.device_table on CUDA). cache.length is not used.
// Every tensor on the model's device. No host synchronisation: CUDA graphs can capture it.
struct StepInputs {
  at::Tensor tokens;     // [R, 1] int64
  at::Tensor positions;  // [R, 1] int64 RoPE position ids
  at::Tensor slots;      // [R] int64 cache slot of each row's new token
  at::Tensor rows;       // [R] int64: 0 .. R-1
};
// Returns logits fp32 [R, vocab].
at::Tensor llama_step(const LlamaModel& model, KVCache& cache, const StepInputs& in, const AttentionMaskRef& mask);

// Whole-sequence forward without a persistent cache (allocates one of length L).
at::Tensor llama_forward_full(const LlamaModel& model, const at::Tensor& tokens,
                              const at::Tensor& positions, const AttentionMaskRef& mask);

// A KV cache for this model, allocated once: layers x batch x kv-heads x max_len x head_dim.
KVCache make_kv_cache(const LlamaModel& model, int64_t batch, int64_t max_len);

// The model's linear layer: y = x W^T + b. Few bf16 rows on the CPU (decode; up to 8) go
// through an AVX512-BF16 GEMV kernel when the CPU has one (fp32 accumulation,
// bf16 result like at::linear); everything else through at::linear.
at::Tensor linear_layer(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias = {});
// Several linears of the same input (q/k/v, gate/up): one parallel region for all.
std::vector<at::Tensor> linear_layers(const at::Tensor& x, const std::vector<at::Tensor>& weights,
                                      const std::vector<at::Tensor>& biases);
bool bf16_gemv_kernel_available();
// Turns the GEMV kernel off (at::linear everywhere) or on again; for A/B measurements.
void set_bf16_gemv_enabled(bool enabled);
// The kernel itself: x [..., K] bf16, weight [N, K] bf16 contiguous -> [..., N] bf16.
// Throws when the CPU lacks AVX512-BF16.
at::Tensor bf16_gemv(const at::Tensor& x, const at::Tensor& weight);
std::vector<at::Tensor> bf16_gemv_multi(const at::Tensor& x, const std::vector<at::Tensor>& weights);

// Intra-op threads for libtorch (it starts with 1 here). n <= 0 leaves it.
void set_num_threads(int n);

at::ScalarType parse_dtype(const std::string& name);  // "bf16"/"bfloat16"/"fp32"/"float32"

}  // namespace flexgen
