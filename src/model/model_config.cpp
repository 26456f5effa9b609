#include "flexgen/model_config.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <sstream>
#include "json_error_text.h"

namespace flexgen {
namespace {

using json = nlohmann::json;

[[noreturn]] void fail(const std::string& source, const std::string& what) {
  throw ModelError(source + ": " + what);
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ModelError(path.string() + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int64_t get_int(const json& j, const char* key, const std::string& src, bool required,
                int64_t fallback = 0) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) fail(src, std::string("missing \"") + key + "\"");
    return fallback;
  }
  // A float counts when it is a whole number within int64 (casting one outside is undefined).
  const auto whole = [](double d) { return d >= -0x1p63 && d < 0x1p63 && d == std::trunc(d); };
  if (!it->is_number_integer() && !(it->is_number_float() && whole(it->get<double>())))
    fail(src, std::string("\"") + key + "\" must be an integer, got " + it->dump());
  return it->is_number_integer() ? it->get<int64_t>() : static_cast<int64_t>(it->get<double>());
}

double get_num(const json& j, const char* key, const std::string& src, bool required,
               double fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) fail(src, std::string("missing \"") + key + "\"");
    return fallback;
  }
  if (!it->is_number()) fail(src, std::string("\"") + key + "\" must be a number, got " + it->dump());
  return it->get<double>();
}

std::string get_str(const json& j, const char* key, const std::string& src, const std::string& fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_string()) fail(src, std::string("\"") + key + "\" must be a string, got " + it->dump());
  return it->get<std::string>();
}

bool get_bool(const json& j, const char* key, const std::string& src, bool fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) fail(src, std::string("\"") + key + "\" must be true/false, got " + it->dump());
  return it->get<bool>();
}

std::vector<int64_t> id_list(const json& v, const char* key, const std::string& src) {
  std::vector<int64_t> out;
  if (v.is_null()) return out;
  if (v.is_number_integer()) return {v.get<int64_t>()};
  if (v.is_array()) {
    for (const auto& e : v) {
      if (!e.is_number_integer()) fail(src, std::string("\"") + key + "\" holds a non-integer: " + e.dump());
      out.push_back(e.get<int64_t>());
    }
    return out;
  }
  fail(src, std::string("\"") + key + "\" must be an integer or a list of integers, got " + v.dump());
}

// RoPE fields: 5.x `rope_parameters` (theta inside) or 4.x `rope_theta` + `rope_scaling`.
void parse_rope(const json& j, const std::string& src, ModelConfig& c) {
  const json* params = nullptr;
  if (j.contains("rope_parameters") && !j["rope_parameters"].is_null()) {
    params = &j["rope_parameters"];
    if (!params->is_object()) fail(src, "\"rope_parameters\" must be an object");
    c.rope_theta = get_num(*params, "rope_theta", src, false, get_num(j, "rope_theta", src, false, 10000.0));
  } else {
    c.rope_theta = get_num(j, "rope_theta", src, false, 10000.0);
    if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
      params = &j["rope_scaling"];
      if (!params->is_object()) fail(src, "\"rope_scaling\" must be an object or null");
    }
  }
  std::string type = "default";
  if (params != nullptr) {
    // transformers accepts the legacy key "type" too.
    const char* key = params->contains("rope_type") ? "rope_type" : "type";
    if (params->contains(key)) {
      if (!(*params)[key].is_string()) fail(src, std::string("rope \"") + key + "\" must be a string");
      type = (*params)[key].get<std::string>();
    }
  }
  if (type == "default") {
    c.rope_type = RopeType::Default;
  } else if (type == "llama3") {
    c.rope_type = RopeType::Llama3;
    c.rope_factor = get_num(*params, "factor", src, true, 1.0);
    c.rope_low_freq_factor = get_num(*params, "low_freq_factor", src, true, 1.0);
    c.rope_high_freq_factor = get_num(*params, "high_freq_factor", src, true, 4.0);
    c.rope_original_max_position_embeddings =
        get_int(*params, "original_max_position_embeddings", src, true);
  } else {
    fail(src, "unsupported rope type \"" + type + "\" (supported: default, llama3)");
  }
  if (params != nullptr) {
    double partial = get_num(*params, "partial_rotary_factor", src, false,
                             get_num(j, "partial_rotary_factor", src, false, 1.0));
    if (partial != 1.0) fail(src, "partial_rotary_factor != 1 is not supported");
  }
}

}  // namespace

std::string to_string(RopeType type) { return type == RopeType::Llama3 ? "llama3" : "default"; }

void ModelConfig::validate() const {
  auto positive = [&](int64_t v, const char* name) {
    if (v <= 0) fail(source, std::string("\"") + name + "\" must be positive, got " + std::to_string(v));
  };
  positive(vocab_size, "vocab_size");
  positive(hidden_size, "hidden_size");
  positive(intermediate_size, "intermediate_size");
  positive(num_layers, "num_hidden_layers");
  positive(num_heads, "num_attention_heads");
  positive(num_kv_heads, "num_key_value_heads");
  positive(head_dim, "head_dim");
  positive(max_position_embeddings, "max_position_embeddings");  // the context check depends on it
  if (num_heads % num_kv_heads != 0)
    fail(source, "num_attention_heads (" + std::to_string(num_heads) +
                     ") is not a multiple of num_key_value_heads (" + std::to_string(num_kv_heads) + ")");
  if (head_dim % 2 != 0) fail(source, "head_dim must be even for RoPE, got " + std::to_string(head_dim));
  if (!(rms_norm_eps > 0)) fail(source, "rms_norm_eps must be positive");
  if (!(rope_theta > 0)) fail(source, "rope_theta must be positive");
  if (rope_type == RopeType::Llama3) {
    if (!(rope_factor > 0)) fail(source, "rope factor must be positive");
    if (rope_original_max_position_embeddings <= 0)
      fail(source, "rope original_max_position_embeddings must be positive");
    if (rope_high_freq_factor == rope_low_freq_factor)
      fail(source, "rope high_freq_factor equals low_freq_factor");
  }
}

namespace {

// A key whose mere presence (non-null, not false/0/empty) means a layout flexgen does not run.
bool present(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return false;
  if (it->is_boolean()) return it->get<bool>();
  if (it->is_number()) return it->get<double>() != 0;
  if (it->is_array() || it->is_object() || it->is_string()) return !it->empty();
  return true;
}

[[noreturn]] void refuse(const std::string& src, const json& j, const char* key, const std::string& why) {
  fail(src, "\"" + std::string(key) + "\": " + j[key].dump() + " is not supported: " + why +
                " (flexgen refuses the model rather than run it without it)");
}

// Refuses configs whose layout the forward pass does not implement: each message names the key.
void refuse_unsupported_layout(const json& j, const std::string& src, const ModelConfig& c) {
  for (const char* key : {"num_local_experts", "num_experts", "n_routed_experts", "num_experts_per_tok",
                          "moe_intermediate_size", "shared_expert_intermediate_size", "moe_layer_freq"})
    if (present(j, key)) refuse(src, j, key, "mixture-of-experts layers");
  for (const char* key : {"cross_attention_layers", "add_cross_attention", "is_encoder_decoder", "vision_config",
                          "text_config"})
    if (present(j, key)) refuse(src, j, key, "cross-attention / encoder-decoder or multimodal models");
  if (present(j, "quantization_config")) refuse(src, j, "quantization_config", "quantized weights");
  for (const char* key : {"attn_logit_softcapping", "final_logit_softcapping", "logits_scaling",
                          "embedding_multiplier", "residual_multiplier", "attention_multiplier", "qk_layernorm",
                          "use_qk_norm", "no_rope_layers", "mrope_section"})
    if (present(j, key)) refuse(src, j, key, "a layer feature flexgen does not implement");
  if (c.model_type == "llama") {
    // LlamaConfig has no sliding window; a converted Mistral-style config would carry one.
    if (present(j, "sliding_window")) refuse(src, j, "sliding_window", "sliding-window attention");
  }
  if (c.model_type == "qwen2") {
    // transformers' Qwen2: layers i >= max_window_layers use the window when use_sliding_window.
    if (get_bool(j, "use_sliding_window", src, false) &&
        get_int(j, "max_window_layers", src, false, c.num_layers) < c.num_layers && present(j, "sliding_window"))
      refuse(src, j, "use_sliding_window", "sliding-window attention in layers >= max_window_layers (" +
                                               std::to_string(get_int(j, "max_window_layers", src, false, 0)) + ")");
  }
  if (j.contains("layer_types") && !j["layer_types"].is_null()) {
    const json& types = j["layer_types"];
    if (!types.is_array()) fail(src, "\"layer_types\" must be a list");
    for (const auto& t : types)
      if (!t.is_string() || t.get<std::string>() != "full_attention")
        refuse(src, j, "layer_types", "layers other than \"full_attention\" (" + t.dump() + ")");
  }
  if (j.contains("rope_scaling") && j["rope_scaling"].is_object() && j["rope_scaling"].contains("mrope_section"))
    fail(src, "\"rope_scaling\": multimodal RoPE (mrope_section) is not supported");
}

}  // namespace

ModelConfig parse_model_config(const std::string& text, const std::string& src) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    fail(src, "malformed JSON: " + json_error_text(e));
  }
  if (!j.is_object()) fail(src, "config must be a JSON object");
  ModelConfig c;
  c.source = src;
  if (j.contains("model_type") && !j["model_type"].is_string())
    fail(src, "\"model_type\" must be a string, got " + j["model_type"].dump());
  c.model_type = j.value("model_type", std::string());
  // model_type -> the one architecture flexgen runs for it.
  const std::string expected_arch = c.model_type == "llama"   ? "LlamaForCausalLM"
                                    : c.model_type == "qwen2" ? "Qwen2ForCausalLM"
                                                              : "";
  if (expected_arch.empty())
    fail(src, "\"model_type\": \"" + c.model_type +
                  "\" is not supported (supported: llama = LlamaForCausalLM, qwen2 = Qwen2ForCausalLM)");
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0].is_string())
    c.architecture = j["architectures"][0].get<std::string>();
  else
    c.architecture = expected_arch;
  if (c.architecture != expected_arch || (j.contains("architectures") && j["architectures"].is_array() &&
                                          j["architectures"].size() > 1))
    fail(src, "\"architectures\": " + (j.contains("architectures") ? j["architectures"].dump() : "[]") +
                  " is not supported for model_type \"" + c.model_type + "\" (supported: " + expected_arch + ")");
  const std::string act = get_str(j, "hidden_act", src, "silu");
  if (act != "silu") fail(src, "\"hidden_act\": \"" + act + "\" is not supported (supported: silu)");
  if (get_int(j, "pretraining_tp", src, false, 1) != 1) fail(src, "\"pretraining_tp\" != 1 is not supported");

  c.vocab_size = get_int(j, "vocab_size", src, true);
  c.hidden_size = get_int(j, "hidden_size", src, true);
  c.intermediate_size = get_int(j, "intermediate_size", src, true);
  c.num_layers = get_int(j, "num_hidden_layers", src, true);
  c.num_heads = get_int(j, "num_attention_heads", src, true);
  c.num_kv_heads = get_int(j, "num_key_value_heads", src, false, c.num_heads);
  if (c.num_heads <= 0) fail(src, "\"num_attention_heads\" must be positive");
  c.head_dim = get_int(j, "head_dim", src, false, c.hidden_size / c.num_heads);
  c.max_position_embeddings = get_int(j, "max_position_embeddings", src, false, 2048);
  c.rms_norm_eps = get_num(j, "rms_norm_eps", src, false, 1e-6);
  c.tie_word_embeddings = get_bool(j, "tie_word_embeddings", src, true);
  if (c.model_type == "qwen2") {
    // Qwen2Attention: bias on q/k/v (hard-coded in transformers), none on o_proj or the MLP.
    c.qkv_bias = true;
    for (const char* key : {"attention_bias", "mlp_bias"})
      if (present(j, key)) refuse(src, j, key, "Qwen2 has bias on q/k/v only");
  } else {
    c.attention_bias = get_bool(j, "attention_bias", src, false);
    c.qkv_bias = c.attention_bias;
    c.mlp_bias = get_bool(j, "mlp_bias", src, false);
  }
  for (const char* key : {"dtype", "torch_dtype"}) {
    if (j.contains(key) && j[key].is_string()) {
      c.torch_dtype = j[key].get<std::string>();
      break;
    }
  }
  c.bos_token_id = j.contains("bos_token_id") && j["bos_token_id"].is_number_integer()
                       ? j["bos_token_id"].get<int64_t>()
                       : -1;
  if (j.contains("eos_token_id")) c.eos_token_ids = id_list(j["eos_token_id"], "eos_token_id", src);
  parse_rope(j, src, c);
  refuse_unsupported_layout(j, src, c);
  c.validate();
  return c;
}

ModelConfig load_model_config(const std::filesystem::path& path) {
  if (!std::filesystem::is_regular_file(path)) throw ModelError(path.string() + ": no such file");
  return parse_model_config(read_text(path), path.string());
}

void apply_generation_config(const std::filesystem::path& path, ModelConfig& c) {
  const std::string src = path.string();
  json j;
  try {
    j = json::parse(read_text(path));
  } catch (const json::exception& e) {
    fail(src, "malformed JSON: " + json_error_text(e));
  }
  if (!j.is_object()) fail(src, "must be a JSON object");
  if (j.contains("eos_token_id") && !j["eos_token_id"].is_null())
    c.eos_token_ids = id_list(j["eos_token_id"], "eos_token_id", src);
  if (j.contains("bos_token_id") && j["bos_token_id"].is_number_integer())
    c.bos_token_id = j["bos_token_id"].get<int64_t>();
}

}  // namespace flexgen
