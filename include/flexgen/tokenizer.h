// Tokenizers: one interface for Hugging Face byte-level BPE (tokenizer.json,
// LLaMA 3.x) and SentencePiece (tokenizer.model, LLaMA-2 family). Pure C++.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace flexgen {

// A tokenizer file that cannot be used: the message names the file and the field.
struct TokenizerError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class TokenizerKind { BytePairJson, SentencePiece };

struct EncodeOptions {
  bool add_bos = false;       // prepend the BOS id (an option of the caller, not of the file)
  // Special tokens written literally in the text become their ids (tokenizer.json;
  // SentencePiece encodes the text as is, like spm_encode).
  bool parse_special = true;
};

struct DecodeOptions {
  bool skip_special_tokens = false;  // drop special tokens (BOS, EOS, <|eot_id|>, ...)
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual TokenizerKind kind() const = 0;
  // The file it was loaded from.
  virtual const std::string& source() const = 0;
  // Token ids of `text` (UTF-8; throws std::invalid_argument on invalid UTF-8).
  virtual std::vector<int32_t> encode(std::string_view text, const EncodeOptions& options = {}) const = 0;
  // Text of `ids` (special tokens by name unless skipped); bytes that are not valid UTF-8 become U+FFFD.
  virtual std::string decode(const std::vector<int32_t>& ids, const DecodeOptions& options = {}) const = 0;
  // Raw bytes token `id` contributes to the text (a special token: its name);
  // `first` is true until the first ordinary token of a sequence (SentencePiece
  // drops its dummy-prefix space there).
  virtual std::string token_bytes(int32_t id, bool first) const = 0;
  // The token's vocabulary string (e.g. "ĠHello", "▁Hello", "<|eot_id|>").
  virtual std::string piece(int32_t id) const = 0;
  // Id of a vocabulary string or special token name, if it exists.
  virtual std::optional<int32_t> token_id(std::string_view piece) const = 0;
  virtual bool is_special(int32_t id) const = 0;
  // Number of ids (vocabulary plus added tokens); valid ids are [0, vocab_size()).
  virtual int32_t vocab_size() const = 0;
  virtual std::optional<int32_t> bos_id() const = 0;
  virtual std::optional<int32_t> eos_id() const = 0;
  // The chat template string of tokenizer_config.json, empty when absent.
  virtual const std::string& chat_template() const = 0;
};

// Loads `path`: a tokenizer.json, a tokenizer.model, or a model directory
// (tokenizer.json first, then tokenizer.model). Throws TokenizerError.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);

// Decodes a stream of ids piece by piece, never emitting half a UTF-8 character.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, DecodeOptions options = {});
  // Text made complete by `id` (possibly empty).
  std::string push(int32_t id);
  // Whatever is left at the end; an incomplete character becomes U+FFFD.
  std::string finish();

 private:
  const Tokenizer& tokenizer_;
  DecodeOptions options_;
  std::string pending_;
  bool first_ = true;
};

}  // namespace flexgen
