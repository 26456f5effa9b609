// LLaMA-3 instruct prompts, equal to the chat_template of the LLaMA-3 tokenizer_config.json:
//   bos + ('<|start_header_id|>' + role + '<|end_header_id|>\n\n' + content|trim + '<|eot_id|>')*
//   + '<|start_header_id|>assistant<|end_header_id|>\n\n' if add_generation_prompt
#include "flexgen/tokenizer_chat.h"
#include "unicode.h"
#include "flexgen/utf8.h"

namespace flexgen {

namespace {

constexpr const char* kBos = "<|begin_of_text|>";
constexpr const char* kStartHeader = "<|start_header_id|>";
constexpr const char* kEndHeader = "<|end_header_id|>";
constexpr const char* kEot = "<|eot_id|>";

bool is_trim_space(uint32_t cp) {
  // Python's str.strip(): White_Space plus the separators U+001C..U+001F.
  return (tokenizer_detail::char_class(cp) & tokenizer_detail::kClassSpace) || (cp >= 0x1C && cp <= 0x1F);
}

// Jinja's |trim (Python str.strip()) on UTF-8 text.
std::string trim(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t begin = 0, end = s.size();
  while (begin < end) {
    size_t len;
    if (!is_trim_space(utf8::decode_valid(p + begin, len))) break;
    begin += len;
  }
  while (end > begin) {
    size_t start = end - 1;
    while (start > begin && (p[start] & 0xC0) == 0x80) --start;
    size_t len;
    if (!is_trim_space(utf8::decode_valid(p + start, len))) break;
    end = start;
  }
  return s.substr(begin, end - begin);
}

int32_t required_id(const Tokenizer& t, const char* name) {
  const auto id = t.token_id(name);
  if (!id) throw TokenizerError(t.source() + ": no token " + name + " (not a LLaMA-3 chat tokenizer)");
  return *id;
}

}  // namespace

std::string format_llama3_chat(const std::vector<ChatMessage>& messages, bool add_generation_prompt, bool add_bos) {
  std::string out = add_bos ? kBos : "";
  for (const ChatMessage& m : messages)
    out += std::string(kStartHeader) + m.role + kEndHeader + "\n\n" + trim(m.content) + kEot;
  if (add_generation_prompt) out += std::string(kStartHeader) + "assistant" + kEndHeader + "\n\n";
  return out;
}

std::vector<int32_t> encode_llama3_chat(const Tokenizer& tokenizer, const std::vector<ChatMessage>& messages,
                                        bool add_generation_prompt, bool add_bos) {
  const int32_t start = required_id(tokenizer, kStartHeader), end = required_id(tokenizer, kEndHeader),
                eot = required_id(tokenizer, kEot);
  EncodeOptions plain;
  plain.parse_special = false;
  std::vector<int32_t> out;
  if (add_bos) out.push_back(required_id(tokenizer, kBos));
  auto append = [&](const std::string& text) {
    const auto ids = tokenizer.encode(text, plain);
    out.insert(out.end(), ids.begin(), ids.end());
  };
  auto header = [&](const std::string& role) {
    out.push_back(start);
    append(role);
    out.push_back(end);
  };
  for (const ChatMessage& m : messages) {
    header(m.role);
    append("\n\n" + trim(m.content));
    out.push_back(eot);
  }
  if (add_generation_prompt) {
    header("assistant");
    append("\n\n");
  }
  return out;
}

}  // namespace flexgen
