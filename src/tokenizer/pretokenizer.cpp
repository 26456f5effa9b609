// Chooses the pre-tokenizer for a split pattern.
#include "pretokenizer.h"

namespace flexgen::tokenizer_detail {

const char* const kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

std::unique_ptr<PreTokenizer> make_pretokenizer(const std::string& pattern) {
  if (pattern == kLlama3Pattern) return make_llama3_scanner(3);
  if (pattern == kQwen2Pattern) return make_llama3_scanner(1);
  return make_pcre2_pretokenizer(pattern);
}

}  // namespace flexgen::tokenizer_detail
