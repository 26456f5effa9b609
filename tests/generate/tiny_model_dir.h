// Writes a tiny random LLaMA model as a Hugging Face directory (config.json,
// generation_config.json, model.safetensors in f32) with the byte-level test
// tokenizer beside it, so CLI tests can run `flexgen generate` on it.
#pragma once

#include <cstdint>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "tiny_fixture.h"

namespace flexgen::testing {

inline void write_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  size_t offset = 0;
  for (const auto& [name, t] : tensors) {
    const size_t bytes = static_cast<size_t>(t.numel()) * sizeof(float);
    header[name] = {{"dtype", "F32"}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  while (text.size() % 8 != 0) text += ' ';
  std::ofstream f(path, std::ios::binary);
  const uint64_t n = text.size();
  f.write(reinterpret_cast<const char*>(&n), 8);
  f << text;
  for (const auto& [name, t] : tensors) {
    const at::Tensor c = t.to(at::kFloat).contiguous();
    f.write(reinterpret_cast<const char*>(c.data_ptr<float>()), static_cast<std::streamsize>(c.numel() * sizeof(float)));
  }
}

// The directory of make_tiny_model(seed) (same weights), with tokenizer.json.
inline std::string write_tiny_model_dir(const std::filesystem::path& dir, uint64_t seed = 7) {
  std::filesystem::create_directories(dir);
  write_byte_tokenizer(dir);
  const LlamaModel m = make_tiny_model(seed);
  const ModelConfig& c = m.config;
  std::map<std::string, at::Tensor> t;
  t["model.embed_tokens.weight"] = m.weights.embed;
  t["model.norm.weight"] = m.weights.final_norm;
  t["lm_head.weight"] = m.weights.lm_head;
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    const LayerWeights& l = m.weights.layers[i];
    t[p + "input_layernorm.weight"] = l.input_norm;
    t[p + "post_attention_layernorm.weight"] = l.post_norm;
    t[p + "self_attn.q_proj.weight"] = l.q_proj;
    t[p + "self_attn.k_proj.weight"] = l.k_proj;
    t[p + "self_attn.v_proj.weight"] = l.v_proj;
    t[p + "self_attn.o_proj.weight"] = l.o_proj;
    t[p + "mlp.gate_proj.weight"] = l.gate_proj;
    t[p + "mlp.up_proj.weight"] = l.up_proj;
    t[p + "mlp.down_proj.weight"] = l.down_proj;
  }
  write_safetensors((dir / "model.safetensors").string(), t);
  nlohmann::json config = {{"architectures", {"LlamaForCausalLM"}},
                           {"model_type", "llama"},
                           {"vocab_size", c.vocab_size},
                           {"hidden_size", c.hidden_size},
                           {"intermediate_size", c.intermediate_size},
                           {"num_hidden_layers", c.num_layers},
                           {"num_attention_heads", c.num_heads},
                           {"num_key_value_heads", c.num_kv_heads},
                           {"head_dim", c.head_dim},
                           {"hidden_act", "silu"},
                           {"max_position_embeddings", c.max_position_embeddings},
                           {"rms_norm_eps", c.rms_norm_eps},
                           {"tie_word_embeddings", false},
                           {"attention_bias", false},
                           {"mlp_bias", false},
                           {"bos_token_id", kTinyBos},
                           {"eos_token_id", {kTinyEos, kTinyEot}},
                           {"dtype", "float32"},
                           {"rope_parameters",
                            {{"rope_type", "llama3"},
                             {"rope_theta", c.rope_theta},
                             {"factor", c.rope_factor},
                             {"low_freq_factor", c.rope_low_freq_factor},
                             {"high_freq_factor", c.rope_high_freq_factor},
                             {"original_max_position_embeddings", c.rope_original_max_position_embeddings}}}};
  std::ofstream(dir / "config.json") << config.dump(2);
  std::ofstream(dir / "generation_config.json") << nlohmann::json({{"bos_token_id", kTinyBos},
                                                                   {"eos_token_id", {kTinyEos, kTinyEot}}})
                                                       .dump();
  nlohmann::json tok_config = {{"bos_token", "<|begin_of_text|>"}, {"eos_token", "<|eot_id|>"}};
  std::ofstream(dir / "tokenizer_config.json") << tok_config.dump();
  return dir.string();
}

}  // namespace flexgen::testing
