// Test fixtures for the generation engine: a byte-level BPE tokenizer.json and a
// tiny random LLaMA model whose vocabulary covers it, both made by the test.
#pragma once

#include <cstdint>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "flexgen/llama.h"
#include "flexgen/model_loader.h"
#include "flexgen/tokenizer.h"

namespace flexgen::testing {

// GPT-2 byte-to-unicode alphabet: printable bytes map to themselves, the rest to U+0100.. .
inline std::string byte_char(int b) {
  auto printable = [](int c) { return (c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255); };
  int cp = b;
  if (!printable(b)) {
    int n = 0;
    for (int c = 0; c < b; ++c) n += printable(c) ? 0 : 1;
    cp = 256 + n;
  }
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

constexpr int32_t kTinyBos = 300, kTinyEos = 301, kTinyEot = 302, kTinyVocab = 303;

// 256 byte tokens, merges for " t"/"th"/"he"/"\n\n", and LLaMA-3 style special tokens.
inline std::string write_byte_tokenizer(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_char(b)] = b;
  const std::vector<std::pair<std::string, std::string>> merges = {
      {byte_char(' '), "t"}, {"t", "h"}, {"h", "e"}, {byte_char('\n'), byte_char('\n')}};
  nlohmann::json merge_list = nlohmann::json::array();
  int next = 256;
  for (const auto& [a, b] : merges) {
    vocab[a + b] = next++;
    merge_list.push_back(a + " " + b);
  }
  nlohmann::json added = nlohmann::json::array();
  const std::vector<std::pair<std::string, int>> specials = {
      {"<|begin_of_text|>", kTinyBos}, {"<|end_of_text|>", kTinyEos}, {"<|eot_id|>", kTinyEot}};
  for (const auto& [content, id] : specials)
    added.push_back({{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  nlohmann::json tok = {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"},
           {"pattern",
            {{"Regex",
              "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
              "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}}},
           {"behavior", "Isolated"},
           {"invert", false}},
          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}}}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"ignore_merges", true},
        {"vocab", vocab},
        {"merges", merge_list}}}};
  const std::string path = (dir / "tokenizer.json").string();
  std::ofstream(path) << tok.dump();
  return path;
}

// A random LLaMA model (GQA 2:1, llama3 RoPE) with weights scaled so greedy outputs vary.
// head_dim 64 suits the CUDA kernel (64/128); device: where the weights go.
inline LlamaModel make_tiny_model(uint64_t seed, at::ScalarType dtype = at::kFloat, int64_t vocab = kTinyVocab,
                                  int64_t head_dim = 16, at::Device device = at::kCPU) {
  ModelConfig c;
  c.vocab_size = vocab;
  c.hidden_size = 64;
  c.intermediate_size = 128;
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

}  // namespace flexgen::testing
