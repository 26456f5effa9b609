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
  // Byte trie of the token contents: walking it from a position finds the longest token there.
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> children;  // byte -> node index
    int32_t token = -1;                                       // index into tokens_ when a token ends here
  };
  int32_t child(int32_t node, unsigned char b) const;

  std::vector<AddedToken> tokens_;
  std::vector<Node> trie_{Node{}};
  std::array<bool, 256> first_byte_{};  // bytes that start some token
};

}  // namespace flexgen::tokenizer_detail
