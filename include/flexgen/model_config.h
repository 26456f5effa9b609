// LLaMA-family model configuration read from a Hugging Face `config.json` (model_type llama or
// qwen2; anything whose layout the forward pass does not implement is refused naming the key)
// (transformers 4.x and 5.x styles) and `generation_config.json`.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace flexgen {

// Every failure of the model layer (bad files, bad configs, shape mismatches).
// The message names the file and, where there is one, the tensor.
class ModelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class RopeType { Default, Llama3 };

struct ModelConfig {
  std::string architecture = "LlamaForCausalLM";
  std::string model_type = "llama";
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;  // config's `head_dim`, else hidden_size / num_heads
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-5;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // bias on q/k/v/o projections (LLaMA's attention_bias)
  bool qkv_bias = false;        // bias on q/k/v (attention_bias, or Qwen2 always); o_bias needs attention_bias
  bool mlp_bias = false;        // bias on gate/up/down projections
  std::string torch_dtype;      // "bfloat16", "float16", "float32" or empty

  // RoPE. Llama3 scaling as in transformers' _compute_llama3_parameters.
  RopeType rope_type = RopeType::Default;
  double rope_theta = 10000.0;
  double rope_factor = 1.0;
  double rope_low_freq_factor = 1.0;
  double rope_high_freq_factor = 4.0;
  int64_t rope_original_max_position_embeddings = 0;

  // Special tokens (config.json, overridden by generation_config.json when present).
  int64_t bos_token_id = -1;
  std::vector<int64_t> eos_token_ids;

  std::string source;  // where the config was read from (for messages)

  int64_t q_dim() const { return num_heads * head_dim; }
  int64_t kv_dim() const { return num_kv_heads * head_dim; }
  // Checks the values fit together; throws ModelError naming `source`.
  void validate() const;
};

// Parses config.json text; `source` names the file in error messages.
// Throws ModelError on malformed JSON, missing fields, unsupported model_type/architecture,
// activation or rope type, and on layouts flexgen does not run (mixture of experts, cross-attention,
// quantization, sliding windows in use, ...): the message names the config key.
ModelConfig parse_model_config(const std::string& json_text, const std::string& source);
ModelConfig load_model_config(const std::filesystem::path& config_json);
// Reads eos/bos ids from generation_config.json into `config` (eos may be a list).
void apply_generation_config(const std::filesystem::path& generation_config_json,
                             ModelConfig& config);

std::string to_string(RopeType type);

}  // namespace flexgen
