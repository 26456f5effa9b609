// Bad inputs are rejected with one clear error naming the file and the tensor;
// config parsing in both transformers styles; model path resolution.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cstdlib>
#include <fstream>

#include "flexgen/llama.h"
#include "flexgen/model_config.h"
#include "flexgen/model_loader.h"
#include "flexgen/model_path.h"
#include "flexgen/safetensors.h"
#include "model_test_util.h"
#include "../test_tmp.h"

namespace flexgen {
namespace {
namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "flexgen_model_XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { flexgen::testing::remove_tree(path_.string()); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// [u64 header length][header][data]
std::string raw_file(const std::string& header, size_t data_bytes, uint64_t claimed = 0) {
  uint64_t n = claimed ? claimed : header.size();
  std::string out(reinterpret_cast<const char*>(&n), 8);
  return out + header + std::string(data_bytes, '\0');
}

// Expects open() to throw a ModelError whose message contains every needle.
void expect_rejected(const fs::path& p, std::initializer_list<std::string> needles) {
  try {
    SafetensorsFile::open(p);
    ADD_FAILURE() << p << " was accepted";
  } catch (const ModelError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
    for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not in: " << msg;
  }
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const ModelError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(SafetensorsReader, RoundTripAndZeroCopy) {
  TempDir t;
  const fs::path p = t.path() / "a.safetensors";
  at::Tensor a = at::arange(12, at::kFloat).view({3, 4});
  at::Tensor b = at::arange(5, at::kFloat).to(at::kBFloat16);
  write_safetensors(p, {{"a", a}, {"b", b}}, {{"format", "pt"}});
  auto f = SafetensorsFile::open(p);
  EXPECT_TRUE(at::equal(f->tensor("a"), a));
  EXPECT_TRUE(at::equal(f->tensor("b"), b));
  EXPECT_TRUE(f->is_zero_copy("a"));
  EXPECT_EQ(f->metadata().at("format"), "pt");
  at::Tensor kept = f->tensor("a");
  f.reset();  // the tensor keeps the mapping alive
  EXPECT_EQ(kept.sum().item<float>(), 66.0f);
}

TEST(SafetensorsReader, TruncatedFile) {
  TempDir t;
  const fs::path p = t.path() / "trunc.safetensors";
  write_safetensors(p, {{"w", at::ones({64}, at::kFloat)}});
  std::string bytes = read_bytes(p);
  write_bytes(p, bytes.substr(0, bytes.size() - 10));
  expect_rejected(p, {"tensor 'w'", "outside the data section"});
  write_bytes(p, bytes.substr(0, 5));
  expect_rejected(p, {"truncated"});
}

TEST(SafetensorsReader, BadHeaderLength) {
  TempDir t;
  const fs::path p = t.path() / "hdr.safetensors";
  write_bytes(p, raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8, 1ull << 40));
  expect_rejected(p, {"bad header length"});
  write_bytes(p, raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8, 20));
  expect_rejected(p, {"malformed JSON"});
}

TEST(SafetensorsReader, OffsetsOutOfRangeOverlapsAndMismatch) {
  TempDir t;
  const fs::path p = t.path() / "off.safetensors";
  write_bytes(p, raw_file(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                          R"("x":{"dtype":"F32","shape":[4],"data_offsets":[16,32]}})", 24));
  expect_rejected(p, {"tensor 'x'", "outside the data section"});
  write_bytes(p, raw_file(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                          R"("x":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})", 24));
  expect_rejected(p, {"tensor 'x'", "overlap"});
  write_bytes(p, raw_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", 16));
  expect_rejected(p, {"tensor 'w'", "needs 12"});
  write_bytes(p, raw_file(R"({"w":{"dtype":"Q4","shape":[4],"data_offsets":[0,16]}})", 16));
  expect_rejected(p, {"tensor 'w'", "unsupported dtype"});
  write_bytes(p, raw_file(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 20));
  expect_rejected(p, {"trailing bytes"});
}

// A copy of a tiny model directory whose weights `edit` changes.
fs::path edited_model(const TempDir& t, const std::function<void(std::vector<std::pair<std::string, at::Tensor>>&)>& edit) {
  const fs::path src = test::model_data_dir() / "tiny_gqa_tied";
  const fs::path dir = t.path() / "model";
  fs::create_directories(dir);
  fs::copy_file(src / "config.json", dir / "config.json");
  auto f = SafetensorsFile::open(src / "model.safetensors");
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& info : f->tensors()) tensors.emplace_back(info.name, f->tensor(info.name).clone());
  edit(tensors);
  write_safetensors(dir / "model.safetensors", tensors);
  return dir;
}

TEST(ModelLoading, WrongShapeNamesTensorAndFile) {
  TempDir t;
  const fs::path dir = edited_model(t, [](auto& ts) {
    for (auto& [name, x] : ts)
      if (name == "model.layers.1.self_attn.k_proj.weight") x = at::zeros({16, 96});
  });
  const std::string msg = error_of([&] { load_llama_from_directory(dir, {at::kFloat}); });
  EXPECT_NE(msg.find("model.layers.1.self_attn.k_proj.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find((dir / "model.safetensors").string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("[16, 96]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[32, 96]"), std::string::npos) << msg;
}

TEST(ModelLoading, MissingAndUnexpectedTensors) {
  TempDir t;
  const fs::path dir = edited_model(t, [](auto& ts) {
    ts.erase(std::remove_if(ts.begin(), ts.end(), [](auto& e) { return e.first == "model.norm.weight"; }), ts.end());
  });
  std::string msg = error_of([&] { load_llama_from_directory(dir, {at::kFloat}); });
  EXPECT_NE(msg.find("missing tensor 'model.norm.weight'"), std::string::npos) << msg;
  EXPECT_NE(msg.find(dir.string()), std::string::npos) << msg;

  TempDir t2;
  const fs::path dir2 = edited_model(t2, [](auto& ts) { ts.emplace_back("model.layers.7.extra", at::zeros({2})); });
  msg = error_of([&] { load_llama_from_directory(dir2, {at::kFloat}); });
  EXPECT_NE(msg.find("unexpected tensor 'model.layers.7.extra'"), std::string::npos) << msg;
}

// Compute dtypes by backend: fp16 on CUDA only, fp32 on the CPU only; named, never converted.
TEST(ModelLoading, DtypesEachBackendLacksAreRefused) {
  EXPECT_EQ(parse_dtype("fp16"), at::kHalf);
  EXPECT_EQ(parse_dtype("float16"), at::kHalf);
  EXPECT_EQ(dtype_name(at::kHalf), "fp16");
  EXPECT_EQ(dtype_name(at::kBFloat16), "bf16");
  EXPECT_NE(error_of([] { parse_dtype("fp8"); }).find("bf16, fp16, fp32"), std::string::npos);
  TempDir t;
  const fs::path dir = edited_model(t, [](auto&) {});
  const std::string msg = error_of([&] { load_llama_from_directory(dir, {at::kHalf}); });
  EXPECT_NE(msg.find("fp16 compute runs on CUDA only"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { load_llama_from_directory(dir, {at::kDouble}); }).find("unsupported compute dtype"),
            std::string::npos);
}

TEST(ModelLoading, ShardedDirectory) {
  TempDir t;
  const fs::path src = test::model_data_dir() / "tiny_headdim";
  const fs::path dir = t.path() / "sharded";
  fs::create_directories(dir);
  fs::copy_file(src / "config.json", dir / "config.json");
  auto f = SafetensorsFile::open(src / "model.safetensors");
  std::vector<std::pair<std::string, at::Tensor>> s1, s2;
  nlohmann::json map;
  for (const auto& info : f->tensors()) {
    const bool first = info.name.find("layers.1.") == std::string::npos;
    (first ? s1 : s2).emplace_back(info.name, f->tensor(info.name));
    map[info.name] = first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  write_safetensors(dir / "model-00001-of-00002.safetensors", s1);
  write_safetensors(dir / "model-00002-of-00002.safetensors", s2);
  write_bytes(dir / "model.safetensors.index.json", nlohmann::json({{"weight_map", map}}).dump());
  LlamaModel m = load_llama_from_directory(dir, {at::kFloat});
  EXPECT_EQ(m.files.size(), 2u);
  // A name listed in the index but absent from its shard.
  map["model.norm.weight"] = "model-00002-of-00002.safetensors";
  write_bytes(dir / "model.safetensors.index.json", nlohmann::json({{"weight_map", map}}).dump());
  const std::string msg = error_of([&] { load_llama_from_directory(dir, {at::kFloat}); });
  EXPECT_NE(msg.find("model.norm.weight"), std::string::npos) << msg;
}

TEST(ModelConfigParse, BothStyles) {
  const auto data = test::model_data_dir();
  ModelConfig v5 = load_model_config(data / "tiny_gqa_tied" / "config.json");
  EXPECT_EQ(v5.rope_type, RopeType::Llama3);
  EXPECT_DOUBLE_EQ(v5.rope_theta, 10000.0);
  EXPECT_DOUBLE_EQ(v5.rope_factor, 8.0);
  EXPECT_EQ(v5.rope_original_max_position_embeddings, 64);
  EXPECT_TRUE(v5.tie_word_embeddings);
  EXPECT_EQ(v5.num_kv_heads, 2);
  EXPECT_EQ(v5.torch_dtype, "float32");
  ModelConfig v4 = load_model_config(data / "tiny_mha_untied_bf16" / "config.json");
  EXPECT_EQ(v4.rope_type, RopeType::Llama3);
  EXPECT_DOUBLE_EQ(v4.rope_theta, 500000.0);
  EXPECT_DOUBLE_EQ(v4.rope_high_freq_factor, 4.0);
  EXPECT_EQ(v4.torch_dtype, "bfloat16");
  EXPECT_FALSE(v4.tie_word_embeddings);
  ModelConfig hd = load_model_config(data / "tiny_headdim" / "config.json");
  EXPECT_EQ(hd.head_dim, 32);
  EXPECT_EQ(hd.hidden_size / hd.num_heads, 24);
  EXPECT_EQ(hd.rope_type, RopeType::Default);
  apply_generation_config(data / "tiny_gqa_tied" / "generation_config.json", v5);
  EXPECT_EQ(v5.eos_token_ids, (std::vector<int64_t>{1, 2}));
}

TEST(ModelConfigParse, UnsupportedThingsAreClearErrors) {
  const std::string base = test::read_json(test::model_data_dir() / "tiny_gqa_tied" / "config.json").dump();
  auto with = [&](const std::function<void(nlohmann::json&)>& f) {
    nlohmann::json j = nlohmann::json::parse(base);
    f(j);
    return error_of([&] { parse_model_config(j.dump(), "cfg.json"); });
  };
  std::string msg = with([](auto& j) { j["rope_parameters"]["rope_type"] = "yarn"; });
  EXPECT_NE(msg.find("cfg.json"), std::string::npos);
  EXPECT_NE(msg.find("unsupported rope type \"yarn\""), std::string::npos) << msg;
  msg = with([](auto& j) {
    j.erase("rope_parameters");
    j["rope_theta"] = 10000.0;
    j["rope_scaling"] = {{"rope_type", "dynamic"}, {"factor", 2.0}};
  });
  EXPECT_NE(msg.find("unsupported rope type \"dynamic\""), std::string::npos) << msg;
  msg = with([](auto& j) { j["architectures"] = {"MistralForCausalLM"}; j["model_type"] = "mistral"; });
  EXPECT_NE(msg.find("\"model_type\": \"mistral\" is not supported"), std::string::npos) << msg;
  msg = with([](auto& j) { j.erase("hidden_size"); });
  EXPECT_NE(msg.find("missing \"hidden_size\""), std::string::npos) << msg;
  msg = with([](auto& j) { j["num_key_value_heads"] = 4; });
  EXPECT_NE(msg.find("not a multiple"), std::string::npos) << msg;
  msg = error_of([&] { parse_model_config("{\"model_type\": ", "cfg.json"); });
  EXPECT_NE(msg.find("malformed JSON"), std::string::npos) << msg;
}

// Issue 17: a layout flexgen cannot run is refused at load with one message naming the config key,
// never run with the feature ignored.
TEST(ModelConfigParse, UnsupportedLayoutsAreRefusedNamingTheKey) {
  const std::string base = test::read_json(test::model_data_dir() / "tiny_gqa_tied" / "config.json").dump();
  auto with = [&](const std::function<void(nlohmann::json&)>& f) {
    nlohmann::json j = nlohmann::json::parse(base);
    f(j);
    return error_of([&] { parse_model_config(j.dump(), "cfg.json"); });
  };
  struct Case {
    const char* what;
    std::function<void(nlohmann::json&)> edit;
    const char* key;  // the message names it, quoted
  };
  const std::vector<Case> cases = {
      {"unknown model_type", [](auto& j) { j["model_type"] = "gemma2"; }, "\"model_type\""},
      {"no model_type", [](auto& j) { j.erase("model_type"); }, "\"model_type\""},
      {"other head", [](auto& j) { j["architectures"] = {"LlamaForSequenceClassification"}; }, "\"architectures\""},
      {"MoE (Mixtral)", [](auto& j) { j["num_local_experts"] = 8; j["num_experts_per_tok"] = 2; }, "\"num_local_experts\""},
      {"MoE (Qwen2-MoE)", [](auto& j) { j["num_experts"] = 60; }, "\"num_experts\""},
      {"MoE (DeepSeek)", [](auto& j) { j["n_routed_experts"] = 64; }, "\"n_routed_experts\""},
      {"cross-attention (Mllama)", [](auto& j) { j["cross_attention_layers"] = {3, 8}; }, "\"cross_attention_layers\""},
      {"encoder-decoder", [](auto& j) { j["is_encoder_decoder"] = true; }, "\"is_encoder_decoder\""},
      {"quantized", [](auto& j) { j["quantization_config"] = {{"quant_method", "gptq"}}; }, "\"quantization_config\""},
      {"sliding window on LLaMA", [](auto& j) { j["sliding_window"] = 4096; }, "\"sliding_window\""},
      {"non-full layers", [](auto& j) { j["layer_types"] = {"full_attention", "sliding_attention"}; }, "\"layer_types\""},
      {"soft-capping", [](auto& j) { j["final_logit_softcapping"] = 30.0; }, "\"final_logit_softcapping\""},
      {"qk norm", [](auto& j) { j["use_qk_norm"] = true; }, "\"use_qk_norm\""},
      {"activation", [](auto& j) { j["hidden_act"] = "gelu"; }, "\"hidden_act\""},
      {"rope type", [](auto& j) { j["rope_parameters"]["rope_type"] = "yarn"; }, "yarn"},
  };
  for (const Case& c : cases) {
    const std::string msg = with(c.edit);
    EXPECT_NE(msg.find("cfg.json"), std::string::npos) << c.what << ": " << msg;
    EXPECT_NE(msg.find(c.key), std::string::npos) << c.what << ": " << msg;
  }
  // Keys that are present but switch nothing on are fine: a null window, no experts, full layers.
  EXPECT_EQ(with([](auto& j) {
              j["sliding_window"] = nullptr;
              j["num_local_experts"] = 0;
              j["layer_types"] = {"full_attention", "full_attention"};
              j["quantization_config"] = nullptr;
            }),
            "(no error)");
}

TEST(ModelConfigParse, Qwen2FieldsAndItsRefusals) {
  // A Qwen2.5-1.5B-style config (4.x style), shrunk: window fields present, window off.
  nlohmann::json q = {{"architectures", {"Qwen2ForCausalLM"}}, {"model_type", "qwen2"}, {"vocab_size", 256},
                      {"hidden_size", 64}, {"intermediate_size", 160}, {"num_hidden_layers", 2},
                      {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"hidden_act", "silu"},
                      {"max_position_embeddings", 32768}, {"rms_norm_eps", 1e-6}, {"rope_theta", 1000000.0},
                      {"rope_scaling", nullptr}, {"sliding_window", 32768}, {"use_sliding_window", false},
                      {"max_window_layers", 1}, {"tie_word_embeddings", false}, {"bos_token_id", 151643},
                      {"eos_token_id", 151645}, {"torch_dtype", "bfloat16"}};
  ModelConfig c = parse_model_config(q.dump(), "qwen.json");
  EXPECT_EQ(c.model_type, "qwen2");
  EXPECT_EQ(c.architecture, "Qwen2ForCausalLM");
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.attention_bias);  // no o_proj bias
  EXPECT_FALSE(c.mlp_bias);
  EXPECT_EQ(c.rope_type, RopeType::Default);
  EXPECT_DOUBLE_EQ(c.rope_theta, 1e6);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_FALSE(c.tie_word_embeddings);
  auto with = [&](const std::function<void(nlohmann::json&)>& f) {
    nlohmann::json j = q;
    f(j);
    return error_of([&] { parse_model_config(j.dump(), "qwen.json"); });
  };
  // The window in use (layer 1 >= max_window_layers 1) is refused naming the key.
  std::string msg = with([](auto& j) { j["use_sliding_window"] = true; });
  EXPECT_NE(msg.find("\"use_sliding_window\""), std::string::npos) << msg;
  EXPECT_NE(msg.find("qwen.json"), std::string::npos) << msg;
  // On but in no layer (max_window_layers >= layers): nothing to refuse.
  EXPECT_EQ(with([](auto& j) { j["use_sliding_window"] = true; j["max_window_layers"] = 2; }), "(no error)");
  msg = with([](auto& j) { j["architectures"] = {"LlamaForCausalLM"}; });
  EXPECT_NE(msg.find("\"architectures\""), std::string::npos) << msg;
  msg = with([](auto& j) { j["num_experts"] = 60; j["model_type"] = "qwen2_moe"; });
  EXPECT_NE(msg.find("\"model_type\": \"qwen2_moe\""), std::string::npos) << msg;
  msg = with([](auto& j) { j["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}}; });
  EXPECT_NE(msg.find("yarn"), std::string::npos) << msg;
  msg = with([](auto& j) { j["model_type"] = "qwen3"; j["architectures"] = {"Qwen3ForCausalLM"}; });
  EXPECT_NE(msg.find("\"model_type\": \"qwen3\""), std::string::npos) << msg;
}

// Unknown rope type in a model directory: the load fails before touching weights.
TEST(ModelLoading, UnknownRopeTypeInDirectory) {
  TempDir t;
  const fs::path dir = edited_model(t, [](auto&) {});
  nlohmann::json j = test::read_json(dir / "config.json");
  j["rope_parameters"]["rope_type"] = "longrope";
  write_bytes(dir / "config.json", j.dump());
  const std::string msg = error_of([&] { load_model(dir.string(), {at::kFloat}); });
  EXPECT_NE(msg.find((dir / "config.json").string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("longrope"), std::string::npos) << msg;
}

// A refused layout fails the load with the config's path, before any weight is read.
TEST(ModelLoading, RefusedLayoutInDirectory) {
  TempDir t;
  const fs::path dir = edited_model(t, [](auto&) {});
  nlohmann::json j = test::read_json(dir / "config.json");
  j["num_local_experts"] = 8;
  write_bytes(dir / "config.json", j.dump());
  const std::string msg = error_of([&] { load_model(dir.string(), {at::kFloat}); });
  EXPECT_NE(msg.find((dir / "config.json").string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("\"num_local_experts\": 8"), std::string::npos) << msg;
}

TEST(ModelPath, AliasesAndOfflineCache) {
  EXPECT_EQ(model_alias("llama3.2_3b_it").value(), "meta-llama/Llama-3.2-3B-Instruct");
  EXPECT_EQ(model_alias("llama3.2_3b").value(), "meta-llama/Llama-3.2-3B");
  EXPECT_EQ(model_alias("llama3.1_8b_it").value(), "meta-llama/Llama-3.1-8B-Instruct");
  EXPECT_EQ(model_alias("qwen2.5_1.5b_it").value(), "Qwen/Qwen2.5-1.5B-Instruct");
  EXPECT_EQ(model_alias("llama2_7b").value(), "meta-llama/Llama-2-7b-hf");
  EXPECT_FALSE(model_alias("gpt2").has_value());

  TempDir t;
  const fs::path snap = t.path() / "hub" / "models--meta-llama--Llama-3.2-1B" / "snapshots" / "abc123";
  fs::create_directories(snap);
  const fs::path src = test::model_data_dir() / "tiny_gqa_tied";
  fs::copy_file(src / "config.json", snap / "config.json");
  fs::copy_file(src / "model.safetensors", snap / "model.safetensors");
  fs::create_directories(snap.parent_path().parent_path() / "refs");
  write_bytes(snap.parent_path().parent_path() / "refs" / "main", "abc123");
  ::setenv("HF_HOME", t.path().c_str(), 1);
  ::unsetenv("HF_HUB_CACHE");
  ResolvedModel r = resolve_model_path("llama3.2_1b");
  EXPECT_EQ(r.path, snap);
  EXPECT_EQ(r.repo_id, "meta-llama/Llama-3.2-1B");
  EXPECT_EQ(resolve_model_path("meta-llama/Llama-3.2-1B").path, snap);
  LlamaModel m = load_model("llama3.2_1b", {at::kFloat});
  EXPECT_EQ(m.config.vocab_size, 256);

  const std::string msg = error_of([] { resolve_model_path("llama3.2_3b_it"); });
  EXPECT_NE(msg.find("meta-llama/Llama-3.2-3B-Instruct"), std::string::npos) << msg;
  EXPECT_NE(msg.find((t.path() / "hub" / "models--meta-llama--Llama-3.2-3B-Instruct").string()), std::string::npos)
      << msg;
  EXPECT_NE(error_of([] { resolve_model_path("no-such-model"); }).find("not found"), std::string::npos);
  ::unsetenv("HF_HOME");
}

}  // namespace
}  // namespace flexgen
