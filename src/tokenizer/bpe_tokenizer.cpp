// Encoding: added tokens -> pre-tokenizer -> BPE per word; decoding: token bytes joined.
#include "bpe_tokenizer.h"

#include <stdexcept>

#include "byte_level.h"
#include "nfc.h"
#include "unicode.h"
#include "flexgen/utf8.h"

namespace flexgen::tokenizer_detail {

BpeTokenizer::BpeTokenizer(BpeParts parts) : p_(std::move(parts)) {
  int32_t max_id = p_.model.max_id();
  for (const AddedToken& t : p_.added) max_id = std::max(max_id, t.id);
  vocab_size_ = max_id + 1;
  added_index_.assign(static_cast<size_t>(vocab_size_), -1);
  for (size_t i = 0; i < p_.added.size(); ++i) {
    const AddedToken& t = p_.added[i];
    added_index_[t.id] = static_cast<int32_t>(i);
    added_by_content_.emplace(t.content, t.id);
    matcher_.add(t);
  }
}

const AddedToken* BpeTokenizer::added(int32_t id) const {
  if (id < 0 || id >= vocab_size_ || added_index_[id] < 0) return nullptr;
  return &p_.added[added_index_[id]];
}

void BpeTokenizer::encode_plain(std::string_view text, std::vector<int32_t>& out) const {
  thread_local std::vector<std::string_view> words;
  words.clear();
  p_.pretokenizer->split(text, words);
  for (std::string_view w : words) p_.model.encode_word(w, out);
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  const size_t bad = utf8::find_invalid(text);
  if (bad != std::string_view::npos)
    throw std::invalid_argument("text is not valid UTF-8 (byte offset " + std::to_string(bad) + ")");
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (options.add_bos && p_.bos) out.push_back(*p_.bos);
  std::vector<TextPart> parts;
  if (matcher_.empty()) parts.push_back(TextPart{text, -1});
  else matcher_.split(text, !options.parse_special, parts);
  std::string prefixed, normalized;
  for (size_t k = 0; k < parts.size(); ++k) {
    TextPart part = parts[k];
    if (part.token < 0 && p_.nfc && !nfc_quick_yes(part.text)) {
      normalized = nfc(part.text);
      part.text = normalized;
    }
    if (part.token >= 0) {
      out.push_back(part.token);
    } else if (p_.add_prefix_space && part.text[0] != ' ') {
      prefixed = " ";
      prefixed += part.text;
      encode_plain(prefixed, out);
    } else {
      encode_plain(part.text, out);
    }
  }
  return out;
}

std::string BpeTokenizer::token_bytes(int32_t id, bool /*first*/) const {
  if (const AddedToken* t = added(id)) return t->content;
  if (id < 0 || id >= vocab_size_) throw std::out_of_range("token id " + std::to_string(id) + " is out of range");
  return p_.model.bytes_of(id);
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids, const DecodeOptions& options) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (options.skip_special_tokens && is_special(id)) continue;
    bytes += token_bytes(id, false);
  }
  return utf8::lossy(bytes);
}

std::string BpeTokenizer::piece(int32_t id) const {
  if (const AddedToken* t = added(id)) return t->content;
  if (id < 0 || id >= vocab_size_) throw std::out_of_range("token id " + std::to_string(id) + " is out of range");
  return byte_level_encode(p_.model.bytes_of(id));
}

std::optional<int32_t> BpeTokenizer::token_id(std::string_view piece) const {
  const auto it = added_by_content_.find(std::string(piece));
  if (it != added_by_content_.end()) return it->second;
  const auto bytes = byte_level_decode(piece);
  if (!bytes) return std::nullopt;
  const int32_t id = p_.model.find(*bytes);
  if (id < 0) return std::nullopt;
  return id;
}

bool BpeTokenizer::is_special(int32_t id) const {
  const AddedToken* t = added(id);
  return t && t->special;
}

}  // namespace flexgen::tokenizer_detail
