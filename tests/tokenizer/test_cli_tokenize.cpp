// `flexgen tokenize` end to end (the binary links libtorch; SentencePiece runs there too).
#include <gtest/gtest.h>

#include <fstream>
#include <memory>

#include "flexgen/tokenizer.h"
#include "reference.h"
#include "run_command.h"

namespace flexgen {
namespace {

namespace ft = flexgen::testing;

class CliTokenize : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = std::make_unique<ft::TempDir>(std::string("cli-") +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    dir_ = tmp_->path();
  }
  void TearDown() override { tmp_.reset(); }
  ft::CommandResult run(const std::string& args) { return ft::run_flexgen(args, dir_ + "/run"); }
  std::string tok() { return ft::shell_quote(ft::llama3_tokenizer_json()); }
  std::string file(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  std::unique_ptr<ft::TempDir> tmp_;
  std::string dir_;
};

TEST_F(CliTokenize, IdsThenPieces) {
  const auto r = run("tokenize --tokenizer " + tok() + " 'Hello world'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "9906 1917\nHello \xC4\xA0world\n");
}

TEST_F(CliTokenize, StandardInputAndBos) {
  const std::string in = file("in.txt", " Hello world<|eot_id|>\n\n");
  const auto r = run("tokenize --bos --tokenizer " + tok() + " < " + ft::shell_quote(in));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "128000 22691 1917 128009 271\n<|begin_of_text|> \xC4\xA0Hello \xC4\xA0world <|eot_id|> \xC4\x8A\xC4\x8A\n");
}

TEST_F(CliTokenize, ModelDirectory) {
  const std::string model_dir = dir_ + "/model";
  ft::run_or_throw("mkdir -p " + ft::shell_quote(model_dir) + " && cp " + tok() + " " +
                   ft::shell_quote(model_dir + "/tokenizer.json"));
  const auto r = run("tokenize --tokenizer " + ft::shell_quote(model_dir) + " 'Hello world'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')), "9906 1917");
}

TEST_F(CliTokenize, JsonLinesInOrderWithBadLinesReported) {
  const std::string in = file("in.jsonl",
                              "{\"text\": \"Hello world\"}\n"
                              "not json\n"
                              "{\"text\": 5}\n"
                              "{\"text\": \"\\n\\n\", \"id\": 7}\n"
                              "{\"txt\": \"x\"}\n"
                              "{\"text\": \"日本語 <|eot_id|>\"}\n");
  const auto r = run("tokenize --jsonl --tokenizer " + tok() + " < " + ft::shell_quote(in));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("line 2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("line 3"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("line 5"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("line 4"), std::string::npos) << r.err;
  const auto lib = load_tokenizer(ft::llama3_tokenizer_json());
  std::vector<nlohmann::json> lines;
  std::istringstream out(r.out);
  std::string line;
  while (std::getline(out, line)) lines.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(lines.size(), 3u) << r.out;
  const std::vector<std::string> texts{"Hello world", "\n\n", "日本語 <|eot_id|>"};
  for (size_t i = 0; i < texts.size(); ++i) {
    EXPECT_EQ(lines[i]["text"], texts[i]);
    EXPECT_EQ(lines[i]["ids"].get<std::vector<int32_t>>(), lib->encode(texts[i]));
  }
}

TEST_F(CliTokenize, BadPathsExitOneNamingTheFile) {
  auto r = run("tokenize --tokenizer " + ft::shell_quote(dir_ + "/nowhere.json") + " x");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(dir_ + "/nowhere.json"), std::string::npos) << r.err;
  const std::string broken = file("tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"merges\": []}}");
  r = run("tokenize --tokenizer " + ft::shell_quote(broken) + " x");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(broken + ": model.vocab"), std::string::npos) << r.err;
  r = run("tokenize --tokenizer " + tok() + " < " + ft::shell_quote(file("bad.txt", "a\xFF")));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("UTF-8"), std::string::npos) << r.err;
}

TEST_F(CliTokenize, UsageErrorsExitTwo) {
  EXPECT_EQ(run("tokenize 'Hello'").exit_code, 2);
  EXPECT_EQ(run("tokenize --jsonl --tokenizer " + tok() + " 'Hello'").exit_code, 2);
}

#ifndef FLEXGEN_NO_SPM_MODULE
TEST_F(CliTokenize, SentencePieceInsideTheLibtorchBinary) {
#ifdef FLEXGEN_SPM_NO_DEEPBIND
  GTEST_SKIP() << "sanitizer build: the SentencePiece module is loaded without RTLD_DEEPBIND, so libtorch's protobuf clashes with it";
#endif
  // The binary links libtorch (and its protobuf); SentencePiece is loaded as a module.
  EXPECT_NE(ft::run_or_throw(std::string("ldd '") + FLEXGEN_BINARY + "'").find("libtorch"), std::string::npos);
  const std::string model = ft::train_spm_model(dir_);
  const std::vector<std::string> texts{"Hello world", "what currency does japan use?", "日本の通貨は円です。"};
  const auto expected = ft::spm_encode_ids(model, texts, dir_);
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto r = run("tokenize --tokenizer " + ft::shell_quote(model) + " " + ft::shell_quote(texts[i]));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.substr(0, r.out.find('\n')), ft::join_ids(expected[i]));
  }
}

TEST_F(CliTokenize, MissingSentencePieceModuleIsAClearError) {
#ifdef FLEXGEN_SPM_NO_DEEPBIND
  GTEST_SKIP() << "sanitizer build: the SentencePiece module is loaded without RTLD_DEEPBIND, so libtorch's protobuf clashes with it";
#endif
  const std::string model = ft::train_spm_model(dir_);
  const auto r = ft::run_flexgen("tokenize --tokenizer " + ft::shell_quote(model) + " x", dir_ + "/run");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string cmd = "FLEXGEN_SPM_MODULE=" + ft::shell_quote(dir_ + "/none/libflexgen_spm.so") + " '" +
                          FLEXGEN_BINARY + "' tokenize --tokenizer " + ft::shell_quote(model) + " x 2>" +
                          ft::shell_quote(dir_ + "/err.txt");
  EXPECT_NE(std::system(cmd.c_str()), 0);
  const std::string err = ft::slurp(dir_ + "/err.txt");
  EXPECT_NE(err.find("libflexgen_spm.so"), std::string::npos) << err;
}
#endif

}  // namespace
}  // namespace flexgen
