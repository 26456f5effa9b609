// The Hugging Face byte-level BPE tokenizer (tokenizer.json), assembled by the loader.
#pragma once

#include <cstdint>

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "added_tokens.h"
#include "bpe_model.h"
#include "flexgen/tokenizer.h"
#include "pretokenizer.h"

namespace flexgen::tokenizer_detail {

// What tokenizer.json (and tokenizer_config.json) describe.
struct BpeParts {
  std::string source;
  BpeModel model;
  std::unique_ptr<PreTokenizer> pretokenizer;
  bool add_prefix_space = false;  // ByteLevel pre-tokenizer: a space before text that lacks one
  bool nfc = false;               // "normalizer": {"type": "NFC"} (Qwen2): NFC on the text between added tokens
  std::vector<AddedToken> added;
  std::optional<int32_t> bos, eos;
  std::string chat_template;
};

class BpeTokenizer final : public Tokenizer {
 public:
  explicit BpeTokenizer(BpeParts parts);
  TokenizerKind kind() const override { return TokenizerKind::BytePairJson; }
  const std::string& source() const override { return p_.source; }
  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& options) const override;
  std::string decode(const std::vector<int32_t>& ids, const DecodeOptions& options) const override;
  std::string token_bytes(int32_t id, bool first) const override;
  std::string piece(int32_t id) const override;
  std::optional<int32_t> token_id(std::string_view piece) const override;
  bool is_special(int32_t id) const override;
  int32_t vocab_size() const override { return vocab_size_; }
  std::optional<int32_t> bos_id() const override { return p_.bos; }
  std::optional<int32_t> eos_id() const override { return p_.eos; }
  const std::string& chat_template() const override { return p_.chat_template; }
  // BOS/EOS ids and chat template (from tokenizer_config.json or the post-processor).
  void set_specials(std::optional<int32_t> bos, std::optional<int32_t> eos, std::string chat_template) {
    p_.bos = bos;
    p_.eos = eos;
    p_.chat_template = std::move(chat_template);
  }
  // Name of the pre-tokenizer in use (for logs and benchmarks).
  const char* pretokenizer_name() const { return p_.pretokenizer->name(); }

 private:
  const AddedToken* added(int32_t id) const;
  void encode_plain(std::string_view text, std::vector<int32_t>& out) const;

  BpeParts p_;
  AddedTokenMatcher matcher_;
  std::vector<int32_t> added_index_;  // id -> index into p_.added, or -1
  std::unordered_map<std::string, int32_t> added_by_content_;
  int32_t vocab_size_ = 0;
};

}  // namespace flexgen::tokenizer_detail
