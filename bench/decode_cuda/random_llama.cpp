// Random-weight Llama-3.2 1B/3B models on the GPU (random_llama.h).
#include "random_llama.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <stdexcept>
#include <vector>

#include "flexgen/model_loader.h"

namespace bench_decode {

std::string shape_config_json(const std::string& shape) {
  // The hub's config.json of Llama-3.2-3B (as bench/e2e_gpu/make_model.py's BASE) ...
  nlohmann::ordered_json c = {
      {"architectures", {"LlamaForCausalLM"}},
      {"model_type", "llama"},
      {"vocab_size", 128256},
      {"hidden_size", 3072},
      {"intermediate_size", 8192},
      {"num_hidden_layers", 28},
      {"num_attention_heads", 24},
      {"num_key_value_heads", 8},
      {"head_dim", 128},
      {"rms_norm_eps", 1e-5},
      {"rope_theta", 500000.0},
      {"rope_scaling",
       {{"rope_type", "llama3"},
        {"factor", 32.0},
        {"low_freq_factor", 1.0},
        {"high_freq_factor", 4.0},
        {"original_max_position_embeddings", 8192}}},
      {"max_position_embeddings", 131072},
      {"tie_word_embeddings", true},
      {"bos_token_id", 128000},
      {"eos_token_id", {128001, 128008, 128009}},
      {"hidden_act", "silu"},
      {"attention_bias", false},
      {"mlp_bias", false},
      {"torch_dtype", "bfloat16"}};
  if (shape == "1b") {  // ... and what Llama-3.2-1B's differs in
    c["hidden_size"] = 2048;
    c["num_hidden_layers"] = 16;
    c["num_attention_heads"] = 32;
    c["head_dim"] = 64;
  } else if (shape != "3b") {
    throw std::invalid_argument("unknown shape \"" + shape + "\" (known: 1b, 3b)");
  }
  return c.dump();
}

flexgen::LlamaModel random_llama(const flexgen::ModelConfig& config, at::ScalarType dtype, const at::Device& device,
                                 uint64_t seed) {
  at::manual_seed(seed);  // the CPU generator and every CUDA device's
  const auto on_device = at::TensorOptions().dtype(dtype).device(device);
  flexgen::NamedTensors named;
  named.source = "bench_decode_cuda (random weights)";
  auto draw = [&](const std::string& name, std::vector<int64_t> shape, double mean) {
    named.tensors[name] = at::empty(shape, on_device).normal_(mean, 0.02).cpu();
  };
  const int64_t hid = config.hidden_size, inter = config.intermediate_size;
  draw("model.embed_tokens.weight", {config.vocab_size, hid}, 0.0);
  for (int64_t i = 0; i < config.num_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    draw(p + "input_layernorm.weight", {hid}, 1.0);
    draw(p + "self_attn.q_proj.weight", {config.q_dim(), hid}, 0.0);
    draw(p + "self_attn.k_proj.weight", {config.kv_dim(), hid}, 0.0);
    draw(p + "self_attn.v_proj.weight", {config.kv_dim(), hid}, 0.0);
    draw(p + "self_attn.o_proj.weight", {hid, config.q_dim()}, 0.0);
    draw(p + "post_attention_layernorm.weight", {hid}, 1.0);
    draw(p + "mlp.gate_proj.weight", {inter, hid}, 0.0);
    draw(p + "mlp.up_proj.weight", {inter, hid}, 0.0);
    draw(p + "mlp.down_proj.weight", {hid, inter}, 0.0);
  }
  draw("model.norm.weight", {hid}, 1.0);
  if (!config.tie_word_embeddings) draw("lm_head.weight", {config.vocab_size, hid}, 0.0);
  flexgen::LoadOptions options;
  options.dtype = dtype;
  options.device = device;
  return flexgen::assemble_llama(config, named, options);
}

double step_weight_bytes(const flexgen::LlamaModel& model) {
  double bytes = 0;
  auto add = [&bytes](const at::Tensor& t) {
    if (t.defined()) bytes += static_cast<double>(t.numel()) * static_cast<double>(t.element_size());
  };
  for (const flexgen::LayerWeights& l : model.weights.layers) {
    add(l.input_norm);
    add(l.post_norm);
    if (l.qkv_proj.defined()) {  // fused (CUDA): q/k/v are views of it
      add(l.qkv_proj);
      add(l.qkv_bias);
    } else {
      for (const at::Tensor* t : {&l.q_proj, &l.k_proj, &l.v_proj, &l.q_bias, &l.k_bias, &l.v_bias}) add(*t);
    }
    if (l.gate_up_proj.defined()) {
      add(l.gate_up_proj);
      add(l.gate_up_bias);
    } else {
      for (const at::Tensor* t : {&l.gate_proj, &l.up_proj, &l.gate_bias, &l.up_bias}) add(*t);
    }
    for (const at::Tensor* t : {&l.o_proj, &l.o_bias, &l.down_proj, &l.down_bias}) add(*t);
  }
  add(model.weights.final_norm);
  add(model.weights.lm_head);
  return bytes;
}

}  // namespace bench_decode
