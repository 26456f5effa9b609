// Added tokens (special tokens like <|eot_id|>): found literally in the text
// before pre-tokenization, leftmost-longest, as Hugging Face does.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace flexgen::tokenizer_detail {

struct AddedToken {
  int32_t id;
  std::string content;
  bool special = false;
  bool lstrip = false;  // absorbs whitespace on its left
  bool rstrip = false;  // absorbs whitespace on its right
};

// A part of the input: plain text to pre-tokenize, or an added token.
struct TextPart {
  std::string_view text;
  int32_t token = -1;  // id when the part is an added token
};

class AddedTokenMatcher {
 public:
  void add(const AddedToken& token);
  // Splits `text` into plain parts and added tokens; with `only_non_special`,
  // special tokens are left as plain text.
  void split(std::string_view text, bool only_non_special, std::vector<TextPart>& out) const;
  bool empty() const { return tokens_.empty(); }

 private:
  std::vector<AddedToken> tokens_;
  std::array<std::vector<uint32_t>, 256> by_first_byte_;  // indices, longest first
};

}  // namespace flexgen::tokenizer_detail
