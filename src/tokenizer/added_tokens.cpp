// Leftmost-longest search for added tokens, with lstrip/rstrip.
#include "added_tokens.h"

#include <algorithm>

#include "unicode.h"

namespace flexgen::tokenizer_detail {

void AddedTokenMatcher::add(const AddedToken& token) {
  if (token.content.empty()) return;
  tokens_.push_back(token);
  auto& list = by_first_byte_[static_cast<unsigned char>(token.content[0])];
  list.push_back(static_cast<uint32_t>(tokens_.size() - 1));
  std::stable_sort(list.begin(), list.end(),
                   [&](uint32_t a, uint32_t b) { return tokens_[a].content.size() > tokens_[b].content.size(); });
}

namespace {

bool is_space_at(std::string_view s, size_t i, size_t& len) {
  size_t l;
  const uint32_t cp = decode_utf8(reinterpret_cast<const unsigned char*>(s.data()) + i, l);
  len = l;
  return (char_class(cp) & kClassSpace) != 0;
}

}  // namespace

void AddedTokenMatcher::split(std::string_view text, bool only_non_special, std::vector<TextPart>& out) const {
  size_t plain_start = 0, i = 0;
  while (i < text.size()) {
    const auto& candidates = by_first_byte_[static_cast<unsigned char>(text[i])];
    const AddedToken* hit = nullptr;
    for (uint32_t k : candidates) {
      const AddedToken& t = tokens_[k];
      if (only_non_special && t.special) continue;
      if (text.compare(i, t.content.size(), t.content) == 0) {
        hit = &t;
        break;
      }
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
