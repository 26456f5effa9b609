// The LLaMA-3 instruct chat format, built in C++ (no Jinja): what the --chat
// option of generate uses; raw completion prompts stay the default.
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

}  // namespace flexgen
