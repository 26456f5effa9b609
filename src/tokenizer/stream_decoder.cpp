// Streaming decode: token bytes accumulate until they end on a character boundary.
#include "flexgen/tokenizer.h"
#include "unicode.h"
#include "flexgen/utf8.h"

namespace flexgen {

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, DecodeOptions options)
    : tokenizer_(tokenizer), options_(options) {}

std::string StreamDecoder::push(int32_t id) {
  if (options_.skip_special_tokens && tokenizer_.is_special(id)) return {};
  const std::string bytes = tokenizer_.token_bytes(id, first_);
  // "first" means: no ordinary token yet (a leading BOS does not count).
  if (!tokenizer_.is_special(id)) first_ = false;
  pending_ += bytes;
  const size_t complete = utf8::complete_prefix(pending_);
  std::string out = utf8::lossy(std::string_view(pending_).substr(0, complete));
  pending_.erase(0, complete);
  return out;
}

std::string StreamDecoder::finish() {
  std::string out = utf8::lossy(pending_);
  pending_.clear();
  return out;
}

}  // namespace flexgen
