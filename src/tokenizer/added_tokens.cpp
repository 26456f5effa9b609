// Leftmost-longest search for added tokens, with lstrip/rstrip.
#include "added_tokens.h"


#include "unicode.h"
#include "flexgen/utf8.h"

namespace flexgen::tokenizer_detail {

int32_t AddedTokenMatcher::child(int32_t node, unsigned char b) const {
  for (const auto& [byte, next] : trie_[node].children)
    if (byte == b) return next;
  return -1;
}

void AddedTokenMatcher::add(const AddedToken& token) {
  if (token.content.empty()) return;
  int32_t node = 0;
  for (unsigned char b : token.content) {
    int32_t next = child(node, b);
    if (next < 0) {
      next = static_cast<int32_t>(trie_.size());
      trie_[node].children.emplace_back(b, next);
      trie_.emplace_back();
    }
    node = next;
  }
  if (trie_[node].token >= 0) return;  // the same content twice: the first one wins
  tokens_.push_back(token);
  trie_[node].token = static_cast<int32_t>(tokens_.size() - 1);
  first_byte_[static_cast<unsigned char>(token.content[0])] = true;
}

namespace {

bool is_space_at(std::string_view s, size_t i, size_t& len) {
  size_t l;
  const uint32_t cp = utf8::decode_valid(reinterpret_cast<const unsigned char*>(s.data()) + i, l);
  len = l;
  return (char_class(cp) & kClassSpace) != 0;
}

}  // namespace

void AddedTokenMatcher::split(std::string_view text, bool only_non_special, std::vector<TextPart>& out) const {
  size_t plain_start = 0, i = 0;
  while (i < text.size()) {
    if (!first_byte_[static_cast<unsigned char>(text[i])]) {
      ++i;
      continue;
    }
    // Longest token starting at i.
    const AddedToken* hit = nullptr;
    for (int32_t node = 0, k = 0; i + k < text.size(); ++k) {
      node = child(node, static_cast<unsigned char>(text[i + k]));
      if (node < 0) break;
      const int32_t t = trie_[node].token;
      if (t >= 0 && !(only_non_special && tokens_[t].special)) hit = &tokens_[t];
    }
    if (!hit) {
      ++i;
      continue;
    }
    size_t left = i, right = i + hit->content.size();
    if (hit->lstrip) {
      // Whitespace code points just before the token belong to it.
      while (left > plain_start) {
        size_t p = left - 1;
        while (p > plain_start && (static_cast<unsigned char>(text[p]) & 0xC0) == 0x80) --p;
        size_t l;
        if (!is_space_at(text, p, l)) break;
        left = p;
      }
    }
    if (hit->rstrip) {
      size_t l;
      while (right < text.size() && is_space_at(text, right, l)) right += l;
    }
    if (left > plain_start) out.push_back(TextPart{text.substr(plain_start, left - plain_start), -1});
    out.push_back(TextPart{text.substr(i, hit->content.size()), hit->id});
    i = plain_start = right;
  }
  if (plain_start < text.size()) out.push_back(TextPart{text.substr(plain_start), -1});
}

}  // namespace flexgen::tokenizer_detail
