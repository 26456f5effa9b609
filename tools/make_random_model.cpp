// make_random_model: writes a Hugging Face model directory (config.json,
// generation_config.json, model.safetensors) of a LLaMA-3-shaped model with
// random bf16 weights, for memory and speed measurements without downloads.
//
//   make_random_model --out DIR [--preset llama3.2-1b|llama3.2-3b] [--layers N] [--seed S]
//
// Preset llama3.2-1b: hidden 2048, 16 layers, 32 heads, 8 KV heads, head_dim 64,
// intermediate 8192, vocab 128256, tied embeddings, llama3 RoPE (factor 32,
// theta 500000): 1.236e9 parameters, 2.47 GB. Tensors are generated and written
// one at a time (the tool's memory stays at one tensor).
// Preset llama3.2-3b: hidden 3072, 28 layers, 24 heads, 8 KV heads, head_dim 128, intermediate
// 8192, otherwise the same: 3.21e9 parameters, 6.4 GB.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

namespace {

struct Spec {
  std::string name;
  std::vector<int64_t> shape;
  float scale;  // uniform in [-scale, scale] around `center`
  float center;
};

uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7FFF + ((u >> 16) & 1);  // round to nearest even
  return static_cast<uint16_t>(u >> 16);
}

int usage(const char* msg) {
  std::cerr << "make_random_model: " << msg
            << "\nusage: make_random_model --out DIR [--preset llama3.2-1b|llama3.2-3b] [--layers N] [--seed S]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string out, preset = "llama3.2-1b";
  int64_t layers = -1;
  uint64_t seed = 42;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    try {
      if (a == "--out") out = next();
      else if (a == "--preset") preset = next();
      else if (a == "--layers") layers = std::stoll(next());
      else if (a == "--seed") seed = std::stoull(next());
      else if (a == "-h" || a == "--help") return usage("random LLaMA-3 model writer"), 0;
      else return usage(("unknown argument " + a).c_str());
    } catch (const std::exception& e) {
      return usage(e.what());
    }
  }
  if (out.empty()) return usage("--out is required");
  if (preset != "llama3.2-1b" && preset != "llama3.2-3b")
    return usage(("unknown preset " + preset + " (known: llama3.2-1b, llama3.2-3b)").c_str());
  const bool big = preset == "llama3.2-3b";
  const int64_t hidden = big ? 3072 : 2048, heads = big ? 24 : 32, kv = 8, head_dim = big ? 128 : 64, inter = 8192,
                vocab = 128256;
  if (layers < 0) layers = big ? 28 : 16;

  nlohmann::json config = {
      {"architectures", {"LlamaForCausalLM"}},
      {"model_type", "llama"},
      {"attention_bias", false},
      {"attention_dropout", 0.0},
      {"bos_token_id", 128000},
      {"eos_token_id", 128001},
      {"head_dim", head_dim},
      {"hidden_act", "silu"},
      {"hidden_size", hidden},
      {"initializer_range", 0.02},
      {"intermediate_size", inter},
      {"max_position_embeddings", 131072},
      {"mlp_bias", false},
      {"num_attention_heads", heads},
      {"num_hidden_layers", layers},
      {"num_key_value_heads", kv},
      {"pretraining_tp", 1},
      {"rms_norm_eps", 1e-5},
      {"rope_scaling",
       {{"factor", 32.0}, {"high_freq_factor", 4.0}, {"low_freq_factor", 1.0},
        {"original_max_position_embeddings", 8192}, {"rope_type", "llama3"}}},
      {"rope_theta", 500000.0},
      {"tie_word_embeddings", true},
      {"torch_dtype", "bfloat16"},
      {"use_cache", true},
      {"vocab_size", vocab},
      {"_comment", "random weights written by flexgen's make_random_model (not a trained model)"}};
  nlohmann::json gen = {{"bos_token_id", 128000}, {"eos_token_id", {128001, 128008, 128009}}};

  std::vector<Spec> specs;
  specs.push_back({"model.embed_tokens.weight", {vocab, hidden}, 0.05f, 0.0f});
  for (int64_t l = 0; l < layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    specs.push_back({p + "input_layernorm.weight", {hidden}, 0.1f, 1.0f});
    specs.push_back({p + "self_attn.q_proj.weight", {heads * head_dim, hidden}, 0.035f, 0.0f});
    specs.push_back({p + "self_attn.k_proj.weight", {kv * head_dim, hidden}, 0.035f, 0.0f});
    specs.push_back({p + "self_attn.v_proj.weight", {kv * head_dim, hidden}, 0.035f, 0.0f});
    specs.push_back({p + "self_attn.o_proj.weight", {hidden, heads * head_dim}, 0.035f, 0.0f});
    specs.push_back({p + "post_attention_layernorm.weight", {hidden}, 0.1f, 1.0f});
    specs.push_back({p + "mlp.gate_proj.weight", {inter, hidden}, 0.035f, 0.0f});
    specs.push_back({p + "mlp.up_proj.weight", {inter, hidden}, 0.035f, 0.0f});
    specs.push_back({p + "mlp.down_proj.weight", {hidden, inter}, 0.02f, 0.0f});
  }
  specs.push_back({"model.norm.weight", {hidden}, 0.1f, 1.0f});

  nlohmann::json header = {{"__metadata__", {{"format", "pt"}}}};
  uint64_t offset = 0;
  for (const auto& s : specs) {
    uint64_t n = 1;
    for (int64_t d : s.shape) n *= static_cast<uint64_t>(d);
    header[s.name] = {{"dtype", "BF16"}, {"shape", s.shape}, {"data_offsets", {offset, offset + 2 * n}}};
    offset += 2 * n;
  }
  std::string h = header.dump();
  while (h.size() % 8 != 0) h.push_back(' ');

  namespace fs = std::filesystem;
  try {
    fs::create_directories(out);
    std::ofstream(fs::path(out) / "config.json") << config.dump(2) << "\n";
    std::ofstream(fs::path(out) / "generation_config.json") << gen.dump(2) << "\n";
    const fs::path st = fs::path(out) / "model.safetensors";
    std::FILE* f = std::fopen(st.c_str(), "wb");
    if (!f) throw std::runtime_error(st.string() + ": cannot write");
    const uint64_t hn = h.size();
    bool ok = std::fwrite(&hn, 8, 1, f) == 1 && std::fwrite(h.data(), 1, h.size(), f) == h.size();
    uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
    std::vector<uint16_t> buf;
    for (const auto& s : specs) {
      uint64_t n = 1;
      for (int64_t d : s.shape) n *= static_cast<uint64_t>(d);
      buf.resize(n);
      for (uint64_t i = 0; i < n; ++i) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        const float u = static_cast<float>(state >> 40) * (1.0f / 16777216.0f);  // [0, 1)
        buf[i] = to_bf16(s.center + s.scale * (2.0f * u - 1.0f));
      }
      ok = ok && std::fwrite(buf.data(), 2, n, f) == n;
    }
    ok = (std::fclose(f) == 0) && ok;
    if (!ok) throw std::runtime_error(st.string() + ": write failed (disk full?)");
    std::cout << "{\"out\": \"" << out << "\", \"tensors\": " << specs.size() << ", \"bytes\": " << offset
              << ", \"parameters\": " << offset / 2 << "}\n";
  } catch (const std::exception& e) {
    std::cerr << "make_random_model: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
