// SentencePiece through the flexgen_spm module, against spm_encode on a model
// trained at test time with spm_train.
#include <gtest/gtest.h>

#include <fstream>

#include "flexgen/tokenizer.h"
#include "reference.h"
#include "unicode.h"
#include "flexgen/utf8.h"

namespace flexgen {
namespace {

namespace ft = flexgen::testing;

class SentencePiece : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new ft::TempDir("spm");
    dir_ = tmp_->path();
    model_ = ft::train_spm_model(dir_);
    tok_ = load_tokenizer(model_).release();
  }
  static void TearDownTestSuite() {
    delete tok_;
    delete tmp_;
  }
  static ft::TempDir* tmp_;
  static std::string dir_, model_;
  static Tokenizer* tok_;
};
std::string SentencePiece::dir_, SentencePiece::model_;
Tokenizer* SentencePiece::tok_ = nullptr;
ft::TempDir* SentencePiece::tmp_ = nullptr;

TEST_F(SentencePiece, IdsMatchSpmEncode) {
  ASSERT_EQ(tok_->kind(), TokenizerKind::SentencePiece);
  const auto texts = ft::single_line_texts();
  const auto expected = ft::spm_encode_ids(model_, texts, dir_);
  ASSERT_EQ(texts.size(), expected.size());
  ASSERT_GT(texts.size(), 50u);
  for (size_t i = 0; i < texts.size(); ++i)
    EXPECT_EQ(ft::join_ids(tok_->encode(texts[i])), ft::join_ids(expected[i])) << texts[i];
}

TEST_F(SentencePiece, DecodeRoundTripsAndStreams) {
  for (const std::string& text : ft::corpus_texts()) {
    const auto ids = tok_->encode(text);
    EXPECT_EQ(tok_->decode(ids), text) << nlohmann::json(text).dump();
    StreamDecoder stream(*tok_);
    std::string joined;
    for (int32_t id : ids) {
      const std::string piece = stream.push(id);
      EXPECT_EQ(utf8::find_invalid(piece), std::string::npos);
      joined += piece;
    }
    EXPECT_EQ(joined + stream.finish(), text) << nlohmann::json(text).dump();
  }
}

TEST_F(SentencePiece, BosEosAndSpecials) {
  ASSERT_TRUE(tok_->bos_id());
  ASSERT_TRUE(tok_->eos_id());
  EXPECT_EQ(tok_->piece(*tok_->bos_id()), "<s>");
  EXPECT_EQ(tok_->piece(*tok_->eos_id()), "</s>");
  EXPECT_EQ(tok_->token_id("<s>"), tok_->bos_id());
  EXPECT_FALSE(tok_->token_id("definitely not a piece"));
  EncodeOptions bos;
  bos.add_bos = true;
  auto ids = tok_->encode("Hello world", bos);
  EXPECT_EQ(ids.front(), *tok_->bos_id());
  ids.push_back(*tok_->eos_id());
  DecodeOptions skip;
  skip.skip_special_tokens = true;
  EXPECT_EQ(tok_->decode(ids, skip), "Hello world");
  // Not skipped, control tokens are written by name, like the BPE specials.
  EXPECT_EQ(tok_->decode(ids), "<s>Hello world</s>");
  StreamDecoder all(*tok_);
  std::string streamed;
  for (int32_t id : ids) streamed += all.push(id);
  EXPECT_EQ(streamed + all.finish(), "<s>Hello world</s>");
  EXPECT_TRUE(tok_->is_special(*tok_->eos_id()));
  EXPECT_EQ(tok_->piece(tok_->encode("Hello")[0]), "\xE2\x96\x81Hello");
  // A streamed BOS does not eat the space of the first word.
  StreamDecoder stream(*tok_, skip);
  std::string text;
  for (int32_t id : ids) text += stream.push(id);
  EXPECT_EQ(text + stream.finish(), "Hello world");
  EXPECT_THROW(tok_->piece(tok_->vocab_size()), std::out_of_range);
}

TEST_F(SentencePiece, ModelDirectoryAndBadFiles) {
  const std::string model_dir = dir_ + "/model";
  ft::run_or_throw("mkdir -p " + ft::shell_quote(model_dir) + " && cp " + ft::shell_quote(model_) + " " +
                   ft::shell_quote(model_dir + "/tokenizer.model"));
  EXPECT_EQ(load_tokenizer(model_dir)->kind(), TokenizerKind::SentencePiece);
  const std::string bad = dir_ + "/bad.model";
  std::ofstream(bad) << "this is not a protobuf";
  try {
    load_tokenizer(bad);
    FAIL() << "expected an error";
  } catch (const TokenizerError& e) {
    EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace flexgen
