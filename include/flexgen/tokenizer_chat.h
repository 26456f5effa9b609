// The instruct chat formats, built in C++ (no Jinja): LLaMA-3's header format and ChatML
// (Qwen2/Qwen2.5: <|im_start|>/<|im_end|>). What the --chat option of generate uses; raw completion
// prompts stay the default.
#pragma once

#include <cstdint>

#include <string>
#include <vector>

#include "flexgen/tokenizer.h"

namespace flexgen {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant", ...
  std::string content;
};

// The prompt text: [<|begin_of_text|>] then, per message,
// "<|start_header_id|>ROLE<|end_header_id|>\n\n" + trimmed content + "<|eot_id|>",
// then "<|start_header_id|>assistant<|end_header_id|>\n\n" when add_generation_prompt.
std::string format_llama3_chat(const std::vector<ChatMessage>& messages, bool add_generation_prompt = true,
                               bool add_bos = true);

// Token ids of the same prompt. Special tokens come from their ids, and message
// contents are encoded as plain text (a literal "<|eot_id|>" in a message stays text).
// Throws TokenizerError when the tokenizer lacks the LLaMA-3 header tokens.
std::vector<int32_t> encode_llama3_chat(const Tokenizer& tokenizer, const std::vector<ChatMessage>& messages,
                                        bool add_generation_prompt = true, bool add_bos = true);

enum class ChatFormat { Llama3, ChatML };

// The chat format a tokenizer's special tokens give: LLaMA-3 (<|start_header_id|>, ...) or ChatML
// (<|im_start|>, <|im_end|>). Throws TokenizerError naming the tokenizer when it has neither (e.g. a
// LLaMA-2 SentencePiece model).
ChatFormat chat_format_of(const Tokenizer& tokenizer);

// Text around one user message in the tokenizer's chat format, up to the assistant's turn
// (no BOS; special tokens written by name, to be encoded with parse_special):
//   LLaMA-3: "<|start_header_id|>user<|end_header_id|>\n\n" | "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
//   ChatML:  [system turn] "<|im_start|>user\n" | "<|im_end|>\n<|im_start|>assistant\n"
// The ChatML system turn is Qwen2.5's default one ("You are Qwen, created by Alibaba Cloud. You are
// a helpful assistant.") when the tokenizer's chat_template writes it for conversations without a
// system message, and none otherwise (Qwen3's template).
struct ChatWrap {
  ChatFormat format;
  std::string head, tail;
};
ChatWrap user_turn_wrap(const Tokenizer& tokenizer);

// The ChatML prompt text: per message "<|im_start|>ROLE\n" + content + "<|im_end|>\n", then
// "<|im_start|>assistant\n" when add_generation_prompt; `default_system` (if not empty) as a system
// turn first when the first message is not one.
std::string format_chatml(const std::vector<ChatMessage>& messages, bool add_generation_prompt = true,
                          const std::string& default_system = "");
// Token ids of the same prompt (contents encoded as plain text, special tokens by id); the default
// system turn as user_turn_wrap decides. Throws TokenizerError without the ChatML tokens.
std::vector<int32_t> encode_chatml(const Tokenizer& tokenizer, const std::vector<ChatMessage>& messages,
                                   bool add_generation_prompt = true);

}  // namespace flexgen
