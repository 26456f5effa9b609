// Parity with Hugging Face transformers on the committed tiny models
// (tests/data/model, made by tools/reference/make_tiny_models.py).
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <iostream>

#include "flexgen/llama.h"
#include "flexgen/model_loader.h"
#include "flexgen/torchscript_loader.h"
#include "model_test_util.h"

namespace flexgen {
namespace {

using test::max_abs_diff;

constexpr double kTol = 1e-4;

struct Case {
  const char* name;
};

class Parity : public ::testing::TestWithParam<Case> {
 protected:
  std::filesystem::path dir() const { return test::model_data_dir() / GetParam().name; }
  nlohmann::json golden() const { return test::read_json(dir() / "golden.json"); }
  std::shared_ptr<SafetensorsFile> golden_tensors() const {
    return SafetensorsFile::open(dir() / "golden.safetensors");
  }
};

TEST_P(Parity, PromptLogitsFp32) {
  LlamaModel m = load_llama_from_directory(dir(), {at::kFloat});
  const auto g = golden();
  at::Tensor ids = test::ids_tensor(g["prompt_ids"]);
  at::Tensor logits = llama_forward_full(m, ids, test::sequential_positions(ids.size(0), ids.size(1)),
                                         BatchMask::causal());
  at::Tensor ref = golden_tensors()->tensor("prompt_logits");
  ASSERT_EQ(logits.sizes(), ref.sizes());
  const double d = max_abs_diff(logits, ref);
  std::cout << "[parity] " << GetParam().name << " prompt logits fp32 max abs diff " << d << "\n";
  RecordProperty("prompt_max_abs_diff", std::to_string(d));
  EXPECT_LT(d, kTol);
}

TEST_P(Parity, MaskedLogitsWithCustomPositions) {
  LlamaModel m = load_llama_from_directory(dir(), {at::kFloat});
  const auto g = golden();
  at::Tensor ids = test::ids_tensor(g["mask_ids"]);
  const std::vector<AttentionMask> masks = test::golden_masks(g["mask_rows"]);
  at::Tensor logits = llama_forward_full(m, ids, test::golden_positions(g["mask_rows"]),
                                         BatchMask::rows(masks));
  const double d = max_abs_diff(logits, golden_tensors()->tensor("mask_logits"));
  std::cout << "[parity] " << GetParam().name << " masked logits fp32 max abs diff " << d << "\n";
  EXPECT_LT(d, kTol);
}

// Prefill a part, decode the rest one token at a time: same logits as the whole
// sequence at once, plain causal and under the ensemble mask.
TEST_P(Parity, KvCachedDecodeMatchesFullRecompute) {
  LlamaModel m = load_llama_from_directory(dir(), {at::kFloat});
  const auto g = golden();
  at::Tensor ref_plain = golden_tensors()->tensor("prompt_logits");
  at::Tensor ref_mask = golden_tensors()->tensor("mask_logits");
  for (bool masked : {false, true}) {
    at::Tensor ids = test::ids_tensor(masked ? g["mask_ids"] : g["prompt_ids"]);
    const int64_t B = ids.size(0), L = ids.size(1), P = masked ? 13 : 6;  // 13 = generation start
    at::Tensor pos = masked ? test::golden_positions(g["mask_rows"]) : test::sequential_positions(B, L);
    const std::vector<AttentionMask> masks = test::golden_masks(g["mask_rows"]);
    const BatchMask mask = masked ? BatchMask::rows(masks) : BatchMask::causal();
    at::Tensor full = llama_forward_full(m, ids, pos, mask);
    KVCache cache = make_kv_cache(m, B, L + 3);
    at::Tensor pre = llama_forward(m, cache, ids.narrow(1, 0, P), pos.narrow(1, 0, P), mask);
    EXPECT_LT(max_abs_diff(pre, full.narrow(1, 0, P)), kTol);
    double worst = 0;
    for (int64_t t = P; t < L; ++t) {
      at::Tensor step = llama_forward(m, cache, ids.narrow(1, t, 1), pos.narrow(1, t, 1), mask, LogitsMode::Last);
      worst = std::max(worst, max_abs_diff(step, full.narrow(1, t, 1)));
      worst = std::max(worst, max_abs_diff(step, (masked ? ref_mask : ref_plain).narrow(1, t, 1)));
    }
    EXPECT_EQ(cache.length, L);
    std::cout << "[parity] " << GetParam().name << (masked ? " masked" : " causal")
              << " KV decode vs full/transformers max abs diff " << worst << "\n";
    EXPECT_LT(worst, kTol);
  }
}

// Greedy continuation with the KV cache, teacher-forced on the reference ids:
// every step whose reference top-1/top-2 margin exceeds 0.05 picks the same id.
TEST_P(Parity, GreedyIdsMatch) {
  LlamaModel m = load_llama_from_directory(dir(), {at::kFloat});
  const auto g = golden();
  const auto prompt = g["greedy_prompt"].get<std::vector<int64_t>>();
  const auto ref_ids = g["greedy_ids"].get<std::vector<int64_t>>();
  const auto margins = g["greedy_margins"].get<std::vector<double>>();
  const int64_t P = static_cast<int64_t>(prompt.size());
  KVCache cache = make_kv_cache(m, 1, P + static_cast<int64_t>(ref_ids.size()));
  at::Tensor logits = llama_forward(m, cache, at::tensor(prompt, at::kLong).view({1, P}),
                                    test::sequential_positions(1, P), BatchMask::causal(), LogitsMode::Last);
  int checked = 0;
  for (size_t s = 0; s < ref_ids.size(); ++s) {
    const int64_t got = logits.view({-1}).argmax().item<int64_t>();
    if (margins[s] > 0.05) {
      EXPECT_EQ(got, ref_ids[s]) << "step " << s << " margin " << margins[s];
      ++checked;
    }
    const int64_t p = P + static_cast<int64_t>(s);
    logits = llama_forward(m, cache, at::full({1, 1}, ref_ids[s], at::kLong), at::full({1, 1}, p, at::kLong),
                           BatchMask::causal(), LogitsMode::Last);
  }
  EXPECT_GE(checked, 12);
}

INSTANTIATE_TEST_SUITE_P(TinyModels, Parity,
                         ::testing::Values(Case{"tiny_gqa_tied"}, Case{"tiny_mha_untied_bf16"}, Case{"tiny_headdim"},
                                           // issue 17: Qwen2 (q/k/v bias, theta 1e6, untied and tied),
                                           // LLaMA with attention_bias + mlp_bias, LLaMA-2 style (fp16 file)
                                           Case{"tiny_qwen2"}, Case{"tiny_qwen2_tied_bf16"},
                                           Case{"tiny_llama_bias"}, Case{"tiny_llama2"},
                                           // Qwen2 with the special tokens' rows (vocab 259; chat golden)
                                           Case{"tiny_qwen2_chat"}),
                         [](const auto& info) { return std::string(info.param.name); });

class ParityBf16 : public ::testing::TestWithParam<Case> {};

TEST_P(ParityBf16, Bf16ComputeCloseToTransformersBf16) {
  const auto dir = test::model_data_dir() / GetParam().name;
  LlamaModel m = load_llama_from_directory(dir, {at::kBFloat16});
  EXPECT_EQ(m.weights.embed.scalar_type(), at::kBFloat16);
  const auto g = test::read_json(dir / "golden.json");
  at::Tensor ids = test::ids_tensor(g["prompt_ids"]);
  at::Tensor logits = llama_forward_full(m, ids, test::sequential_positions(ids.size(0), ids.size(1)),
                                         BatchMask::causal());
  auto gt = SafetensorsFile::open(dir / "golden.safetensors");
  at::Tensor ref16 = gt->tensor("prompt_logits_bf16");
  at::Tensor ref32 = gt->tensor("prompt_logits");
  const double d16 = max_abs_diff(logits, ref16);
  const double d32 = max_abs_diff(logits, ref32);
  const double agree = logits.argmax(-1).eq(ref16.argmax(-1)).to(at::kFloat).mean().item<double>();
  std::cout << "[parity] bf16 compute: max abs diff vs transformers bf16 " << d16 << ", vs fp32 " << d32
            << ", argmax agreement " << agree << "\n";
  EXPECT_LT(d16, 0.5);
  EXPECT_GE(agree, 0.9);
}

INSTANTIATE_TEST_SUITE_P(TinyModels, ParityBf16,
                         ::testing::Values(Case{"tiny_mha_untied_bf16"}, Case{"tiny_qwen2_tied_bf16"}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Qwen2, BiasOnQkvOnlyAndEosFromGenerationConfig) {
  LlamaModel m = load_llama_from_directory(test::model_data_dir() / "tiny_qwen2", {at::kFloat});
  EXPECT_EQ(m.config.model_type, "qwen2");
  const LayerWeights& l = m.weights.layers.at(0);
  EXPECT_TRUE(l.q_bias.defined() && l.k_bias.defined() && l.v_bias.defined());
  EXPECT_FALSE(l.o_bias.defined());
  EXPECT_FALSE(l.gate_bias.defined());
  EXPECT_EQ(m.config.eos_token_ids, (std::vector<int64_t>{2, 1}));
  LlamaModel tied = load_llama_from_directory(test::model_data_dir() / "tiny_qwen2_tied_bf16", {at::kFloat});
  EXPECT_TRUE(tied.weights.lm_head.is_same(tied.weights.embed));
}

TEST(TorchScript, NestedParametersWithConfigBeside) {
  const auto data = test::model_data_dir();
  LlamaModel m = load_model((data / "ts_nested" / "model.pt").string(), {at::kFloat});
  const auto g = test::read_json(data / "tiny_gqa_tied" / "golden.json");
  at::Tensor ids = test::ids_tensor(g["prompt_ids"]);
  at::Tensor logits = llama_forward_full(m, ids, test::sequential_positions(ids.size(0), ids.size(1)),
                                         BatchMask::causal());
  const double d = max_abs_diff(logits, SafetensorsFile::open(data / "tiny_gqa_tied" / "golden.safetensors")
                                             ->tensor("prompt_logits"));
  std::cout << "[parity] torchscript nested max abs diff " << d << "\n";
  EXPECT_LT(d, kTol);
}

TEST(TorchScript, DictAttributeWithExplicitConfig) {
  const auto data = test::model_data_dir();
  EXPECT_THROW(load_model((data / "ts_dict" / "model.pt").string(), {at::kFloat}), ModelError);  // no config beside
  LlamaModel m = load_model((data / "ts_dict" / "model.pt").string(), {at::kFloat},
                            data / "tiny_headdim" / "config.json");
  const auto g = test::read_json(data / "tiny_headdim" / "golden.json");
  at::Tensor ids = test::ids_tensor(g["prompt_ids"]);
  at::Tensor logits = llama_forward_full(m, ids, test::sequential_positions(ids.size(0), ids.size(1)),
                                         BatchMask::causal());
  const double d = max_abs_diff(logits, SafetensorsFile::open(data / "tiny_headdim" / "golden.safetensors")
                                             ->tensor("prompt_logits"));
  std::cout << "[parity] torchscript dict max abs diff " << d << "\n";
  EXPECT_LT(d, kTol);
}

TEST(Loading, ZeroCopyWhenDtypeMatches) {
  const auto dir = test::model_data_dir() / "tiny_mha_untied_bf16";
  LlamaModel m = load_llama_from_directory(dir, {at::kBFloat16});
  ASSERT_EQ(m.files.size(), 1u);
  auto f = m.files[0];
  EXPECT_TRUE(f->is_zero_copy("model.embed_tokens.weight"));
  const auto* base = f->tensor("model.embed_tokens.weight").data_ptr();
  EXPECT_EQ(m.weights.embed.data_ptr(), base);  // the mapping itself, not a copy
  EXPECT_EQ(m.config.eos_token_ids, std::vector<int64_t>{2});
  // fp32 compute converts every weight: the mapping is released.
  LlamaModel m32 = load_llama_from_directory(dir, {at::kFloat});
  EXPECT_TRUE(m32.files.empty());
  EXPECT_EQ(m32.weights.embed.scalar_type(), at::kFloat);
}

}  // namespace
}  // namespace flexgen
