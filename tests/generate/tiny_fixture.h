// Test fixtures for the generation engine: a byte-level BPE tokenizer.json and a
// tiny random LLaMA model whose vocabulary covers it, both made by the test.
#pragma once

#include <cstdint>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "flexgen/decoder.h"
#include "flexgen/llama.h"
#include "flexgen/model_loader.h"
#include "flexgen/tokenizer.h"
#include "byte_tokenizer.h"

namespace flexgen::testing {

// A random LLaMA model (GQA 2:1, llama3 RoPE) with weights scaled so greedy outputs vary.
// head_dim 64 suits the CUDA kernel (64/128); device: where the weights go.
// intermediate: the MLP's width (a wide one makes the CPU's prefill passes small).
inline LlamaModel make_tiny_model(uint64_t seed, at::ScalarType dtype = at::kFloat, int64_t vocab = kTinyVocab,
                                  int64_t head_dim = 16, at::Device device = at::kCPU, int64_t intermediate = 128) {
  ModelConfig c;
  c.vocab_size = vocab;
  c.hidden_size = 64;
  c.intermediate_size = intermediate;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = head_dim;
  c.max_position_embeddings = 4096;
  c.rms_norm_eps = 1e-5;
  c.tie_word_embeddings = false;
  c.rope_type = RopeType::Llama3;
  c.rope_theta = 500000.0;
  c.rope_factor = 32.0;
  c.rope_low_freq_factor = 1.0;
  c.rope_high_freq_factor = 4.0;
  c.rope_original_max_position_embeddings = 8192;
  c.bos_token_id = kTinyBos;
  c.eos_token_ids = {kTinyEos, kTinyEot};
  c.source = "tiny test model";
  at::manual_seed(seed);
  NamedTensors named;
  auto put = [&](const std::string& name, std::vector<int64_t> shape, double stddev) {
    named.tensors[name] = at::randn(shape, at::kFloat) * stddev;
    named.origin[name] = "memory";
  };
  const int64_t h = c.hidden_size;
  put("model.embed_tokens.weight", {vocab, h}, 1.0);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    named.tensors[p + "input_layernorm.weight"] = at::ones({h});
    named.tensors[p + "post_attention_layernorm.weight"] = at::ones({h});
    put(p + "self_attn.q_proj.weight", {c.q_dim(), h}, 0.5);
    put(p + "self_attn.k_proj.weight", {c.kv_dim(), h}, 0.5);
    put(p + "self_attn.v_proj.weight", {c.kv_dim(), h}, 0.2);
    put(p + "self_attn.o_proj.weight", {h, c.q_dim()}, 0.2);
    put(p + "mlp.gate_proj.weight", {c.intermediate_size, h}, 0.2);
    put(p + "mlp.up_proj.weight", {c.intermediate_size, h}, 0.2);
    put(p + "mlp.down_proj.weight", {h, c.intermediate_size}, 0.2);
  }
  named.tensors["model.norm.weight"] = at::ones({h});
  put("lm_head.weight", {vocab, h}, 0.5);
  for (auto& [name, t] : named.tensors) named.origin[name] = "memory";
  LoadOptions o;
  o.dtype = dtype;
  o.device = device;
  return assemble_llama(c, named, o);
}

// decode_jobs with every job's stream results kept, in job order.
inline std::vector<std::vector<StreamResult>> decode_all(const LlamaModel& model, const Tokenizer& tokenizer,
                                                         const std::vector<DecodeJob>& jobs, const DecodeConfig& cfg,
                                                         int64_t in_flight, DecodeStats* stats = nullptr) {
  std::vector<std::vector<StreamResult>> out(jobs.size());
  decode_jobs(model, tokenizer, jobs, cfg, in_flight, [&](size_t i, std::vector<StreamResult> r) { out[i] = std::move(r); },
              stats);
  return out;
}

}  // namespace flexgen::testing
