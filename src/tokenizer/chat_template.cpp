// LLaMA-3 instruct prompts, equal to the chat_template of the LLaMA-3 tokenizer_config.json:
//   bos + ('<|start_header_id|>' + role + '<|end_header_id|>\n\n' + content|trim + '<|eot_id|>')*
//   + '<|start_header_id|>assistant<|end_header_id|>\n\n' if add_generation_prompt
// and ChatML prompts (Qwen2.5 / Qwen3 templates, without tools or thinking):
//   [default system turn] ('<|im_start|>' + role + '\n' + content + '<|im_end|>\n')* + '<|im_start|>assistant\n'
#include "flexgen/tokenizer_chat.h"
#include "unicode.h"
#include "flexgen/utf8.h"

namespace flexgen {

namespace {

constexpr const char* kBos = "<|begin_of_text|>";
constexpr const char* kStartHeader = "<|start_header_id|>";
constexpr const char* kEndHeader = "<|end_header_id|>";
constexpr const char* kEot = "<|eot_id|>";
constexpr const char* kImStart = "<|im_start|>";
constexpr const char* kImEnd = "<|im_end|>";
constexpr const char* kQwenDefaultSystem = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

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

int32_t required_id(const Tokenizer& t, const char* name, const char* format = "LLaMA-3") {
  const auto id = t.token_id(name);
  if (!id) throw TokenizerError(t.source() + ": no token " + name + " (not a " + format + " chat tokenizer)");
  return *id;
}

// Qwen2.5's template writes its default system turn when the first message is not a system one.
std::string chatml_default_system(const Tokenizer& t) {
  return t.chat_template().find(kQwenDefaultSystem) != std::string::npos ? kQwenDefaultSystem : "";
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

ChatFormat chat_format_of(const Tokenizer& t) {
  if (t.token_id(kStartHeader) && t.token_id(kEndHeader) && t.token_id(kEot)) return ChatFormat::Llama3;
  if (t.token_id(kImStart) && t.token_id(kImEnd)) return ChatFormat::ChatML;
  throw TokenizerError(t.source() +
                       ": no chat format known for this tokenizer (--chat needs LLaMA-3's <|start_header_id|> "
                       "tokens or ChatML's <|im_start|>/<|im_end|>)");
}

ChatWrap user_turn_wrap(const Tokenizer& t) {
  const ChatFormat f = chat_format_of(t);
  if (f == ChatFormat::Llama3)
    return {f, std::string(kStartHeader) + "user" + kEndHeader + "\n\n",
            std::string(kEot) + kStartHeader + "assistant" + kEndHeader + "\n\n"};
  const std::string system = chatml_default_system(t);
  std::string head = system.empty() ? "" : std::string(kImStart) + "system\n" + system + kImEnd + "\n";
  head += std::string(kImStart) + "user\n";
  return {f, head, std::string(kImEnd) + "\n" + kImStart + "assistant\n"};
}

std::string format_chatml(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                          const std::string& default_system) {
  std::string out;
  if (!default_system.empty() && (messages.empty() || messages.front().role != "system"))
    out += std::string(kImStart) + "system\n" + default_system + kImEnd + "\n";
  for (const ChatMessage& m : messages) out += std::string(kImStart) + m.role + "\n" + m.content + kImEnd + "\n";
  if (add_generation_prompt) out += std::string(kImStart) + "assistant\n";
  return out;
}

std::vector<int32_t> encode_chatml(const Tokenizer& tokenizer, const std::vector<ChatMessage>& messages,
                                   bool add_generation_prompt) {
  const int32_t start = required_id(tokenizer, kImStart, "ChatML"), end = required_id(tokenizer, kImEnd, "ChatML");
  EncodeOptions plain;
  plain.parse_special = false;
  std::vector<int32_t> out;
  auto append = [&](const std::string& text) {
    const auto ids = tokenizer.encode(text, plain);
    out.insert(out.end(), ids.begin(), ids.end());
  };
  auto turn = [&](const std::string& role, const std::string& content) {
    out.push_back(start);
    append(role + "\n" + content);
    out.push_back(end);
    append("\n");
  };
  const std::string system = chatml_default_system(tokenizer);
  if (!system.empty() && (messages.empty() || messages.front().role != "system")) turn("system", system);
  for (const ChatMessage& m : messages) turn(m.role, m.content);
  if (add_generation_prompt) {
    out.push_back(start);
    append("assistant\n");
  }
  return out;
}

}  // namespace flexgen
