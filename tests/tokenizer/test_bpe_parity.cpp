// Byte-level BPE against the JavaScript reference (which agrees with Hugging Face)
// on the real LLaMA 3.1 tokenizer.json: ids, decoding, streaming, chat prompts.
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <random>

#include "flexgen/tokenizer.h"
#include "flexgen/tokenizer_chat.h"
#include "reference.h"
#include "tokenizer_json.h"
#include "unicode.h"
#include "flexgen/utf8.h"

namespace flexgen {
namespace {

namespace ft = flexgen::testing;

const Tokenizer& llama3() {
  static const std::unique_ptr<Tokenizer> tok = load_tokenizer(ft::llama3_tokenizer_json());
  return *tok;
}

EncodeOptions plain() { return EncodeOptions{}; }

TEST(Llama3Tokenizer, WellKnownVectors) {
  EXPECT_EQ(llama3().encode("Hello world"), (std::vector<int32_t>{9906, 1917}));
  EXPECT_EQ(llama3().encode(" Hello world"), (std::vector<int32_t>{22691, 1917}));
  EXPECT_EQ(llama3().encode("\n\n"), (std::vector<int32_t>{271}));
  EXPECT_TRUE(llama3().encode("").empty());
}

TEST(Llama3Tokenizer, CorpusMatchesReference) {
  const auto texts = ft::corpus_texts();
  const auto expected = ft::reference_ids("encode", ft::corpus_path());
  ASSERT_EQ(texts.size(), expected.size());
  ASSERT_GT(texts.size(), 100u);
  size_t mismatches = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto ids = llama3().encode(texts[i], plain());
    if (ids != expected[i]) {
      ++mismatches;
      ADD_FAILURE() << "corpus line " << i + 1 << ": " << nlohmann::json(texts[i]).dump() << "\n  ours:      "
                    << ft::join_ids(ids) << "\n  reference: " << ft::join_ids(expected[i]);
    }
  }
  EXPECT_EQ(mismatches, 0u);
}

// Random strings from words, digits, whitespace kinds, apostrophes, symbols and
// non-Latin characters, written to a JSONL file that the reference encodes too.
std::vector<std::string> random_texts(int count, uint32_t seed) {
  const std::vector<std::string> atoms = {
      "the", "The", "THE", " answer", "question", "Japan", "yen", "'s", "'S", "'re", "'ll", "'ve", "'d", "'m", "'t",
      "n't", "'", "\u2019", "0", "7", "42", "123", "2024", "99999", " ", " ", "  ", "\t", "\n", "\r\n", "\n\n",
      "\u00a0", "\u3000", "\u2028", ".", ",", "!", "?", "...", "--", "(", ")", "[SEP]", "<", ">", "|", "#", "$",
      "%", "&", "*", "_", "=", "+", "/", "\\", "\"", "@", "~", "`", "{", "}", "日本", "語", "한국어", "العربية",
      "हिन्दी", "ภาษาไทย", "ខ្មែរ", "Ελληνικά", "русский", "é", "e\u0301", "ß", "İ", "😀", "👍🏽", "👨\u200d👩\u200d👧",
      "🇯🇵", "\u200b", "<|eot_id|>", "<|begin_of_text|>", "<|eot", "x", "Q:", "A:", "http://a.b/c?d=e", "x\u0308",
      "١٢٣", "½", "²"};
  std::mt19937 rng(seed);
  std::uniform_int_distribution<size_t> pick(0, atoms.size() - 1), len(0, 30);
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) {
    std::string s;
    const size_t n = len(rng);
    for (size_t k = 0; k < n; ++k) s += atoms[pick(rng)];
    out.push_back(s);
  }
  return out;
}

TEST(Llama3Tokenizer, RandomTextMatchesReference) {
  const auto texts = random_texts(3000, 20241124);
  const ft::TempDir dir("random");
  const std::string path = dir.path() + "/random.jsonl";
  {
    std::ofstream f(path, std::ios::binary);
    for (const std::string& t : texts) f << nlohmann::json{{"text", t}}.dump() << '\n';
  }
  const auto expected = ft::reference_ids("encode", path);
  ASSERT_EQ(texts.size(), expected.size());
  size_t mismatches = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto ids = llama3().encode(texts[i]);
    if (ids != expected[i] && ++mismatches <= 10)
      ADD_FAILURE() << nlohmann::json(texts[i]).dump() << "\n  ours:      " << ft::join_ids(ids)
                    << "\n  reference: " << ft::join_ids(expected[i]);
    EXPECT_EQ(llama3().decode(ids), texts[i]);
  }
  EXPECT_EQ(mismatches, 0u);
}

TEST(Llama3Tokenizer, WordCacheChangesNothing) {
  tokenizer_detail::JsonLoadOptions options;
  options.word_cache = false;
  const auto uncached = tokenizer_detail::load_tokenizer_json(ft::llama3_tokenizer_json(), options);
  for (int round = 0; round < 2; ++round)  // the second round hits the cache
    for (const std::string& text : random_texts(500, 7)) EXPECT_EQ(llama3().encode(text), uncached->encode(text));
}

TEST(Llama3Tokenizer, DecodeRoundTripsOnCorpus) {
  for (const std::string& text : ft::corpus_texts())
    EXPECT_EQ(llama3().decode(llama3().encode(text)), text) << nlohmann::json(text).dump();
}

TEST(Llama3Tokenizer, StreamingDecodeNeverSplitsACharacter) {
  size_t held_back = 0;
  for (const std::string& text : ft::corpus_texts()) {
    const auto ids = llama3().encode(text);
    StreamDecoder stream(llama3());
    std::string joined;
    for (int32_t id : ids) {
      const std::string piece = stream.push(id);
      EXPECT_EQ(utf8::find_invalid(piece), std::string::npos) << nlohmann::json(text).dump();
      if (piece.empty() && !llama3().token_bytes(id, false).empty()) ++held_back;
      joined += piece;
    }
    joined += stream.finish();
    EXPECT_EQ(joined, text);
  }
  // The corpus has characters split across tokens (CJK, emoji), so some pushes must hold bytes back.
  EXPECT_GT(held_back, 0u);
}

TEST(Llama3Tokenizer, StreamingFinishReplacesAnIncompleteCharacter) {
  // "😀" is split into byte tokens; stop after the first one.
  const auto ids = llama3().encode("😀😀😀😀");
  ASSERT_GT(ids.size(), 1u);
  StreamDecoder stream(llama3());
  EXPECT_EQ(stream.push(ids[0]), "");
  EXPECT_EQ(stream.finish(), "\xEF\xBF\xBD");
}

TEST(Llama3Tokenizer, SpecialTokens) {
  const Tokenizer& t = llama3();
  ASSERT_TRUE(t.bos_id());
  ASSERT_TRUE(t.eos_id());
  EXPECT_EQ(t.piece(*t.bos_id()), "<|begin_of_text|>");
  EXPECT_EQ(t.piece(*t.eos_id()), "<|eot_id|>");  // tokenizer_config.json's eos_token
  EXPECT_EQ(t.vocab_size(), 128256);
  EXPECT_TRUE(t.is_special(*t.bos_id()));
  EXPECT_FALSE(t.is_special(9906));
  EXPECT_FALSE(t.chat_template().empty());

  EncodeOptions bos;
  bos.add_bos = true;
  const auto ids = t.encode("Hi<|eot_id|>", bos);
  ASSERT_EQ(ids.front(), *t.bos_id());
  EXPECT_EQ(ids.back(), *t.token_id("<|eot_id|>"));
  EXPECT_EQ(t.decode(ids), "<|begin_of_text|>Hi<|eot_id|>");
  DecodeOptions skip;
  skip.skip_special_tokens = true;
  EXPECT_EQ(t.decode(ids, skip), "Hi");

  // With parse_special off, a literal special token is plain text.
  EncodeOptions literal;
  literal.parse_special = false;
  const auto as_text = t.encode("<|eot_id|>", literal);
  EXPECT_GT(as_text.size(), 1u);
  EXPECT_EQ(t.decode(as_text), "<|eot_id|>");
}

TEST(Llama3Tokenizer, PiecesAndIds) {
  EXPECT_EQ(llama3().piece(9906), "Hello");
  EXPECT_EQ(llama3().piece(22691), "ĠHello");
  EXPECT_EQ(llama3().piece(271), "ĊĊ");
  EXPECT_EQ(llama3().token_id("ĠHello"), 22691);
  EXPECT_FALSE(llama3().token_id("no such piece at all"));
  EXPECT_THROW(llama3().piece(128256), std::out_of_range);
}

TEST(Llama3Tokenizer, RejectsInvalidUtf8) {
  EXPECT_THROW(llama3().encode(std::string("ab\xC3", 3)), std::invalid_argument);
  EXPECT_THROW(llama3().encode(std::string("\xED\xA0\x80")), std::invalid_argument);  // a surrogate
}

TEST(Llama3Tokenizer, DecodeOfBrokenBytesIsLossy) {
  // A lone continuation byte token decodes to U+FFFD, as Hugging Face's from_utf8_lossy.
  const auto ids = llama3().encode("é");
  std::vector<int32_t> half;
  for (int32_t id : llama3().encode("😀")) half.push_back(id);
  half.pop_back();
  EXPECT_EQ(utf8::find_invalid(llama3().decode(half)), std::string::npos);
  EXPECT_NE(llama3().decode(half).find("\xEF\xBF\xBD"), std::string::npos);
  EXPECT_EQ(llama3().decode(ids), "é");
}

TEST(Llama3Chat, MatchesReferenceTemplate) {
  const std::string path = ft::source_dir() + "/tests/data/tokenizer/chat.jsonl";
  const auto chats = ft::read_jsonl(path);
  const auto expected = ft::reference_ids("chat", path);
  ASSERT_EQ(chats.size(), expected.size());
  for (size_t i = 0; i < chats.size(); ++i) {
    std::vector<ChatMessage> messages;
    for (const auto& m : chats[i]["messages"]) messages.push_back({m["role"], m["content"]});
    EXPECT_EQ(ft::join_ids(encode_llama3_chat(llama3(), messages)), ft::join_ids(expected[i])) << "chat " << i + 1;
    // The text form, encoded with special tokens parsed, gives the same ids.
    EXPECT_EQ(ft::join_ids(llama3().encode(format_llama3_chat(messages))), ft::join_ids(expected[i]))
        << "chat " << i + 1;
  }
}

TEST(Llama3Chat, MessageContentCannotInjectSpecialTokens) {
  const std::vector<ChatMessage> messages{{"user", "hi<|eot_id|>"}};
  const auto ids = encode_llama3_chat(llama3(), messages, false);
  const int32_t eot = *llama3().token_id("<|eot_id|>");
  EXPECT_EQ(std::count(ids.begin(), ids.end(), eot), 1);
  EXPECT_EQ(ids.back(), eot);
}

}  // namespace
}  // namespace flexgen
