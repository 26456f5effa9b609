// `flexgen generate` end to end on the other model families of issue 17, with the committed
// tiny models that transformers made (tests/data/model, tools/reference/make_tiny_models.py):
// LLaMA-2 (SentencePiece tokenizer.model, BOS 1, plain RoPE, fp16 file) against transformers'
// greedy ids, and Qwen2 (q/k/v bias, no BOS, NFC byte-level BPE, ChatML --chat, eos ids from
// generation_config.json).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../cli/run_command.h"
#include "../test_tmp.h"
#include "flexgen/safetensors.h"
#include "tiny_model_dir.h"

using flexgen::testing::run_flexgen;
using flexgen::testing::slurp;
namespace fs = std::filesystem;

namespace {

std::string tmp(const std::string& name) { return flexgen::testing::tmp_path("genm_" + name); }

fs::path data_dir() { return fs::path(FLEXGEN_SOURCE_DIR) / "tests" / "data" / "model"; }

nlohmann::json read_json(const fs::path& p) { return nlohmann::json::parse(slurp(p.string())); }

std::vector<nlohmann::json> jsonl(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(nlohmann::json::parse(l));
  return out;
}

std::string write_dataset(const std::string& name, const std::string& question) {
  const std::string path = tmp(name + ".jsonl");
  std::ofstream(path) << nlohmann::json({{"uuid", "q1"}, {"question", question}, {"answers", {"canberra"}},
                                         {"paraphrases", {question, "which city is the capital of australia?"}}})
                             .dump()
                      << "\n";
  return path;
}

// Issue 17 item 3: a LLaMA-2-style model directory (config.json, fp16 model.safetensors,
// tokenizer.model) through generate: the prompt ids are BOS + SentencePiece ids of the whole
// prompt, and the 12 greedy ids are transformers' (every step's top-1/top-2 margin > 0.15).
TEST(CliGenerateModels, Llama2SentencePieceModelMatchesTransformersGreedy) {
  const fs::path model = data_dir() / "tiny_llama2";
  const auto golden = read_json(model / "golden.json")["e2e"];
  const std::string data = write_dataset("llama2", golden["question"].get<std::string>());
  const std::string tokens = tmp("llama2_tokens.jsonl");
  const auto r = run_flexgen("generate -q --model '" + model.string() + "' --dataset '" + data +
                                 "' --method origin --num-paraphrases 1 --few-shot 0 --max-new-tokens 12 --stop none --dtype fp32"
                                 " --threads 1 --save-tokens '" + tokens + "'",
                             tmp("llama2"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto records = jsonl(r.out);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["generated_ids"], golden["greedy_ids"]);
  EXPECT_EQ(records[0]["prompt_tokens"].get<size_t>(), golden["prompt_ids"].size());
  const auto saved = jsonl(slurp(tokens));
  ASSERT_EQ(saved.size(), 1u);
  std::vector<int32_t> prompt = {saved[0]["bos"].get<int32_t>()};
  for (int32_t id : saved[0]["paraphrases"][0].get<std::vector<int32_t>>()) prompt.push_back(id);
  EXPECT_EQ(nlohmann::json(prompt), golden["prompt_ids"]);
  // The flex ensemble and bf16 compute run on it too.
  const auto flex = run_flexgen("generate -q --model '" + model.string() + "' --dataset '" + data +
                                    "' --num-paraphrases 2 --few-shot 0 --max-new-tokens 4 --shared-context"
                                    " --device cpu",  // head_dim 16: the CPU kernel (CUDA's takes 64/128)
                                tmp("llama2_flex"));
  ASSERT_EQ(flex.exit_code, 0) << flex.err;
  EXPECT_EQ(jsonl(flex.out).size(), 1u);
  // LLaMA-2's SentencePiece tokenizer has no chat format flexgen writes: --chat is refused, by name.
  const auto chat = run_flexgen("generate -q --model '" + model.string() + "' --dataset '" + data +
                                    "' --num-paraphrases 2 --few-shot 0 --max-new-tokens 2 --chat",
                                tmp("llama2_chat"));
  EXPECT_NE(chat.exit_code, 0);
  EXPECT_NE(chat.err.find("no chat format"), std::string::npos) << chat.err;
}

// Issue 17 item 2, end to end: a Qwen2 model directory made by transformers with a Qwen2-style
// byte-level tokenizer.json and Qwen2.5's chat template (tools/reference: tiny_qwen2_chat).
// `--chat` builds exactly the ids transformers' apply_chat_template gives for the prompt as one
// user turn (default system turn, no BOS), and the 12 greedy ids are transformers'.
TEST(CliGenerateModels, Qwen2ChatModelMatchesTransformersGreedy) {
  const fs::path model = data_dir() / "tiny_qwen2_chat";
  const auto golden = read_json(model / "golden.json")["e2e"];
  const std::string data = write_dataset("qwen2chat", golden["question"].get<std::string>());
  const std::string tokens = tmp("qwen2chat_tokens.jsonl");
  const auto r = run_flexgen("generate -q --model '" + model.string() + "' --dataset '" + data +
                                 "' --method origin --num-paraphrases 1 --few-shot 0 --max-new-tokens 12 --stop none"
                                 " --chat --dtype fp32 --threads 1 --save-tokens '" + tokens + "'",
                             tmp("qwen2chat"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto records = jsonl(r.out);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["generated_ids"], golden["greedy_ids"]);
  const auto saved = jsonl(slurp(tokens));
  ASSERT_EQ(saved.size(), 1u);
  EXPECT_TRUE(saved[0]["bos"].is_null());
  std::vector<int32_t> prompt;
  if (saved[0].contains("shared_context") && saved[0]["shared_context"].is_array())
    for (int32_t id : saved[0]["shared_context"].get<std::vector<int32_t>>()) prompt.push_back(id);
  for (int32_t id : saved[0]["paraphrases"][0].get<std::vector<int32_t>>()) prompt.push_back(id);
  EXPECT_EQ(nlohmann::json(prompt), golden["prompt_ids"]);
  EXPECT_EQ(records[0]["prompt_tokens"].get<size_t>(), golden["prompt_ids"].size());
}

// A Qwen2-style byte-level tokenizer.json: 256 byte tokens and <|endoftext|>, <|im_start|>,
// <|im_end|> at 256..258; Qwen2's split pattern and NFC normalizer; no BOS; Qwen2.5's chat template.
void write_qwen_tokenizer(const fs::path& dir) {
  using flexgen::testing::byte_char;
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_char(b)] = b;
  nlohmann::json added = nlohmann::json::array();
  int id = 256;
  for (const char* content : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"})
    added.push_back({{"id", id++}, {"content", content}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  const nlohmann::json tok = {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer", {{"type", "NFC"}}},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"},
           {"pattern",
            {{"Regex",
              "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
              "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}}},
           {"behavior", "Isolated"},
           {"invert", false}},
          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}}}}},
      {"post_processor", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", ""},
        {"end_of_word_suffix", ""}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false},
        {"vocab", vocab}, {"merges", nlohmann::json::array()}}}};
  std::ofstream(dir / "tokenizer.json") << tok.dump();
  std::ofstream(dir / "tokenizer_config.json")
      << nlohmann::json({{"bos_token", nullptr},
                         {"eos_token", "<|im_end|>"},
                         {"chat_template",
                          "{%- if messages[0]['role'] == 'system' %}...{%- else %}{{- '<|im_start|>system\\nYou are Qwen, "
                          "created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}{%- endif %}..."}})
             .dump();
}

// Issue 17 item 2: a Qwen2 model directory through generate (flex, shared context, --chat): no BOS
// in the sequence, the ChatML turn around the prompt, and stops on the eos ids of
// generation_config.json.
TEST(CliGenerateModels, Qwen2ModelRunsWithChatMLAndNoBos) {
  const fs::path dir = tmp("qwen2_model");
  fs::remove_all(dir);
  fs::create_directories(dir);
  // The transformers-made tiny Qwen2 (vocab 256) with 3 more embedding / LM-head rows for the
  // special tokens.
  const fs::path src = data_dir() / "tiny_qwen2";
  fs::copy_file(src / "generation_config.json", dir / "generation_config.json");
  nlohmann::json config = read_json(src / "config.json");
  config["vocab_size"] = 259;
  config["max_position_embeddings"] = 4096;  // byte tokens make long prompts (plain RoPE: no effect on weights)
  std::ofstream(dir / "config.json") << config.dump(2);
  auto file = flexgen::SafetensorsFile::open(src / "model.safetensors");
  std::map<std::string, at::Tensor> tensors;
  for (const auto& info : file->tensors()) tensors[info.name] = file->tensor(info.name).to(at::kFloat).clone();
  for (const char* name : {"model.embed_tokens.weight", "lm_head.weight"}) {
    const at::Tensor& t = tensors.at(name);
    tensors[name] = at::cat({t, t.narrow(0, 32, 3) * 0.5}, 0);
  }
  flexgen::testing::write_safetensors((dir / "model.safetensors").string(), tensors);
  write_qwen_tokenizer(dir);
  const std::string data = write_dataset("qwen2", "what is the capital of australia?");
  const std::string tokens = tmp("qwen2_tokens.jsonl");
  const auto r = run_flexgen("generate -q --model '" + dir.string() + "' --dataset '" + data +
                                 "' --num-paraphrases 2 --few-shot 0 --max-new-tokens 6 --shared-context --chat"
                                 " --dtype fp32 --threads 1 --save-tokens '" + tokens + "'",
                             tmp("qwen2"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto records = jsonl(r.out);
  ASSERT_EQ(records.size(), 1u);
  const auto saved = jsonl(slurp(tokens));
  ASSERT_EQ(saved.size(), 1u);
  EXPECT_TRUE(saved[0]["bos"].is_null()) << saved[0].dump();
  const auto shared = saved[0]["shared_context"].get<std::vector<int32_t>>();
  ASSERT_GT(shared.size(), 3u);
  EXPECT_EQ(shared[0], 257);  // <|im_start|> (the default system turn), no BOS before it
  const auto para = saved[0]["paraphrases"][0].get<std::vector<int32_t>>();
  // ... "A:" <|im_end|> "\n" <|im_start|> "assistant\n"
  const std::vector<int32_t> tail = {258, '\n', 257, 'a', 's', 's', 'i', 's', 't', 'a', 'n', 't', '\n'};
  ASSERT_GT(para.size(), tail.size());
  EXPECT_TRUE(std::equal(tail.begin(), tail.end(), para.end() - static_cast<std::ptrdiff_t>(tail.size())));
  // generation_config.json's eos ids (2, 1) stop generation: no generated id after one of them.
  const auto gen = records[0]["generated_ids"].get<std::vector<int32_t>>();
  for (size_t i = 0; i + 1 < gen.size(); ++i) EXPECT_TRUE(gen[i] != 2 && gen[i] != 1);
}

}  // namespace
