// tokenizer.json loading: a small synthetic BPE (merge order, both merge forms,
// added tokens), and one clear error naming the file and field for bad files.
#include <gtest/gtest.h>

#include <fstream>
#include <memory>

#include "byte_level.h"
#include "flexgen/tokenizer.h"
#include "reference.h"

namespace flexgen {
namespace {

namespace ft = flexgen::testing;
using nlohmann::json;

// 256 byte tokens (ids 0..255 in byte order) plus the given merges' results.
json synthetic(const std::vector<std::pair<std::string, std::string>>& merges, bool pair_form) {
  json vocab = json::object();
  int32_t next = 0;
  for (int b = 0; b < 256; ++b) vocab[tokenizer_detail::byte_level_encode(std::string(1, static_cast<char>(b)))] = next++;
  json m = json::array();
  for (const auto& [l, r] : merges) {
    const std::string a = tokenizer_detail::byte_level_encode(l), b = tokenizer_detail::byte_level_encode(r);
    if (!vocab.contains(a + b)) vocab[a + b] = next++;
    if (pair_form) m.push_back(json::array({a, b}));
    else m.push_back(a + " " + b);
  }
  return json{{"version", "1.0"},
              {"added_tokens",
               json::array({json{{"id", 1000}, {"content", "<|end|>"}, {"special", true}},
                            json{{"id", 1001}, {"content", "[X]"}, {"special", false}, {"lstrip", true}}})},
              {"normalizer", nullptr},
              {"pre_tokenizer", json{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
              {"decoder", json{{"type", "ByteLevel"}}},
              {"model", json{{"type", "BPE"}, {"vocab", vocab}, {"merges", m}}}};
}

std::string write(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

class TokenizerJson : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = std::make_unique<ft::TempDir>(::testing::UnitTest::GetInstance()->current_test_info()->name());
    dir_ = tmp_->path();
  }
  void TearDown() override { tmp_.reset(); }
  std::unique_ptr<ft::TempDir> tmp_;
  std::string dir_;
};

TEST_F(TokenizerJson, MergesApplyInRankOrder) {
  // "b c" ranks before "a b": "abc" -> "a" + "bc"; "ab" alone -> "ab".
  for (bool pairs : {false, true}) {
    const std::string path = write(dir_, "tokenizer.json", synthetic({{"b", "c"}, {"a", "b"}, {"a", "bc"}}, pairs).dump());
    const auto tok = load_tokenizer(path);
    const int32_t bc = *tok->token_id("bc"), ab = *tok->token_id("ab"), abc = *tok->token_id("abc");
    EXPECT_EQ(tok->encode("abc"), std::vector<int32_t>{abc});
    EXPECT_EQ(tok->encode("ab"), std::vector<int32_t>{ab});
    EXPECT_EQ(tok->encode("xbc"), (std::vector<int32_t>{'x', bc}));
    EXPECT_EQ(tok->decode(tok->encode("abc abd")), "abc abd");
  }
}

TEST_F(TokenizerJson, LeftmostMergeWinsTies) {
  const auto tok = load_tokenizer(write(dir_, "tokenizer.json", synthetic({{"a", "a"}}, false).dump()));
  const int32_t aa = *tok->token_id("aa");
  EXPECT_EQ(tok->encode("aaa"), (std::vector<int32_t>{aa, 'a'}));
  // Long words take the priority-queue path; the result must be the same rule.
  std::vector<int32_t> expected(50, aa);
  expected.push_back('a');
  EXPECT_EQ(tok->encode(std::string(101, 'a')), expected);
}

TEST_F(TokenizerJson, AddedTokensWithLstrip) {
  const auto tok = load_tokenizer(write(dir_, "tokenizer.json", synthetic({}, false).dump()));
  EXPECT_EQ(tok->encode("a<|end|>b"), (std::vector<int32_t>{'a', 1000, 'b'}));
  // "[X]" absorbs the spaces on its left.
  EXPECT_EQ(tok->encode("a  [X]b"), (std::vector<int32_t>{'a', 1001, 'b'}));
  EXPECT_TRUE(tok->is_special(1000));
  EXPECT_FALSE(tok->is_special(1001));
  EXPECT_FALSE(tok->bos_id());  // no tokenizer_config.json, no post-processor
}

TEST_F(TokenizerJson, LongestAddedTokenWinsAtTheLeftmostPosition) {
  json j = synthetic({}, false);
  j["added_tokens"].push_back(json{{"id", 1002}, {"content", "<|end|>!"}, {"special", true}});
  j["added_tokens"].push_back(json{{"id", 1003}, {"content", "d|>"}, {"special", true}});
  const auto tok = load_tokenizer(write(dir_, "tokenizer.json", j.dump()));
  EXPECT_EQ(tok->encode("<|end|>!?"), (std::vector<int32_t>{1002, '?'}));
  EXPECT_EQ(tok->encode("<|end|>?"), (std::vector<int32_t>{1000, '?'}));
  EXPECT_EQ(tok->encode("<|en"), (std::vector<int32_t>{'<', '|', 'e', 'n'}));
  // With special tokens off, only non-special added tokens are matched.
  EncodeOptions literal;
  literal.parse_special = false;
  EXPECT_EQ(tok->encode("<|end|>[X]", literal), (std::vector<int32_t>{'<', '|', 'e', 'n', 'd', '|', '>', 1001}));
}

TEST_F(TokenizerJson, ConfigGivesBosEosAndTemplate) {
  write(dir_, "tokenizer.json", synthetic({}, false).dump());
  write(dir_, "tokenizer_config.json",
        json{{"bos_token", json{{"content", "<|end|>"}}}, {"eos_token", "[X]"}, {"chat_template", "T"}}.dump());
  const auto tok = load_tokenizer(dir_);  // a model directory
  EXPECT_EQ(tok->bos_id(), 1000);
  EXPECT_EQ(tok->eos_id(), 1001);
  EXPECT_EQ(tok->chat_template(), "T");
  write(dir_, "tokenizer_config.json", json{{"bos_token", "<nope>"}}.dump());
  try {
    load_tokenizer(dir_);
    FAIL() << "expected an error";
  } catch (const TokenizerError& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer_config.json: bos_token"), std::string::npos) << e.what();
  }
}

// The error names the file and the field.
void expect_error(const std::string& path, const std::string& field) {
  try {
    load_tokenizer(path);
    FAIL() << "expected an error mentioning " << field;
  } catch (const TokenizerError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(field), std::string::npos) << msg;
  }
}

TEST_F(TokenizerJson, BadFilesAreRejectedWithFileAndField) {
  const json good = synthetic({{"a", "b"}}, false);
  expect_error(write(dir_, "t1.json", "{\"model\": {"), "not valid JSON");
  json j = good;
  j["model"]["type"] = "WordPiece";
  expect_error(write(dir_, "t2.json", j.dump()), "model.type");
  j = good;
  j["model"].erase("vocab");
  expect_error(write(dir_, "t3.json", j.dump()), "model.vocab");
  j = good;
  j["model"]["merges"] = json::array({"a zz"});
  expect_error(write(dir_, "t4.json", j.dump()), "model.merges[0]");
  j = good;
  j["model"]["merges"] = json::array({"abc"});
  expect_error(write(dir_, "t5.json", j.dump()), "model.merges[0]");
  j = good;
  j["normalizer"] = json{{"type", "NFKC"}};  // NFC is read (Qwen2); other normalizers are refused
  expect_error(write(dir_, "t6.json", j.dump()), "normalizer");
  j = good;
  j["added_tokens"][0].erase("content");
  expect_error(write(dir_, "t7.json", j.dump()), "added_tokens[0].content");
  j = good;
  j["model"]["byte_fallback"] = true;
  expect_error(write(dir_, "t8.json", j.dump()), "model.byte_fallback");
  j = good;
  j["pre_tokenizer"] = json{{"type", "Whitespace"}};
  expect_error(write(dir_, "t9.json", j.dump()), "pre_tokenizer.type");
  j = good;
  j["model"]["vocab"].erase(tokenizer_detail::byte_level_encode("\n"));
  expect_error(write(dir_, "t10.json", j.dump()), "model.vocab");
  j = good;
  j["pre_tokenizer"] = json{{"type", "Sequence"},
                            {"pretokenizers", json::array({json{{"type", "Split"}, {"pattern", {{"Regex", "(("}}}},
                                                           json{{"type", "ByteLevel"}, {"use_regex", false}}})}};
  expect_error(write(dir_, "t11.json", j.dump()), "pre_tokenizer.pretokenizers[0].pattern.Regex");
  expect_error(dir_ + "/missing.json", "no such file");
  expect_error(write(dir_, "notes.txt", "x"), "not a tokenizer file");
}

TEST_F(TokenizerJson, EmptyModelDirectory) {
  expect_error(dir_, "neither tokenizer.json nor tokenizer.model");
}

TEST_F(TokenizerJson, RealFileWithPairMerges) {
  // The LLaMA-3 file rewritten with [a, b] merges gives the same ids as with "a b" strings.
  json j = json::parse(std::ifstream(ft::llama3_tokenizer_json()));
  json pairs = json::array();
  for (const auto& m : j["model"]["merges"]) {
    const std::string s = m.get<std::string>();
    pairs.push_back(json::array({s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1)}));
  }
  j["model"]["merges"] = pairs;
  const auto a = load_tokenizer(write(dir_, "tokenizer.json", j.dump()));
  const auto b = load_tokenizer(ft::llama3_tokenizer_json());
  for (const std::string& text : ft::corpus_texts()) EXPECT_EQ(a->encode(text), b->encode(text)) << text;
}

}  // namespace
}  // namespace flexgen
