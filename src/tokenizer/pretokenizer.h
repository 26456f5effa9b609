// Pre-tokenizers: split text into the words that BPE encodes one by one
// (the "Split" regex of tokenizer.json, behaviour "Isolated").
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace flexgen::tokenizer_detail {

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Appends the pieces of `text` (valid UTF-8) to `out`; they cover the text in order.
  virtual void split(std::string_view text, std::vector<std::string_view>& out) const = 0;
  virtual const char* name() const = 0;
};

// The LLaMA-3 split pattern (digit runs of up to 3) as it appears in tokenizer.json.
extern const char* const kLlama3Pattern;
// The same pattern with single digits (Qwen2 family).
extern const char* const kQwen2Pattern;

// Hand-written scanner for the LLaMA-3 pattern family; max_digits is 3 (LLaMA-3) or 1 (Qwen2).
std::unique_ptr<PreTokenizer> make_llama3_scanner(int max_digits);
// Any regex, run by PCRE2 (UTF + UCP, JIT when available). Throws std::invalid_argument on a bad pattern.
std::unique_ptr<PreTokenizer> make_pcre2_pretokenizer(const std::string& pattern);
// The scanner when `pattern` is one it implements exactly, PCRE2 otherwise.
std::unique_ptr<PreTokenizer> make_pretokenizer(const std::string& pattern);

}  // namespace flexgen::tokenizer_detail
