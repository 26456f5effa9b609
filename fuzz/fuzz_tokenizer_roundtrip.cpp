// The byte-level BPE encoder: decode(encode(x)) == x.
// The tokenizer is the byte-level tokenizer.json the tests make (tests/generate/byte_tokenizer.h:
// 256 byte tokens, a few merges, LLaMA-3 special tokens), or the file FLEXGEN_FUZZ_TOKENIZER
// names (e.g. the real LLaMA-3 tokenizer.json the tokenizer tests fetch).
//   Text that is not valid UTF-8 is refused with std::invalid_argument; valid text encodes (with
//   and without special tokens parsed) to ids in [0, vocab_size) that decode to the text, the
//   tokens' bytes concatenate to it, StreamDecoder gives it piece by piece, and add_bos only
//   prepends the BOS id.
#include <cstdlib>
#include <string>
#include <vector>

#include "byte_tokenizer.h"
#include "flexgen/tokenizer.h"
#include "flexgen/utf8.h"
#include "fuzz_target.h"

namespace {

const flexgen::Tokenizer& tokenizer() {
  static const std::unique_ptr<flexgen::Tokenizer> tok = [] {
    const char* file = std::getenv("FLEXGEN_FUZZ_TOKENIZER");
    std::string path;
    if (file && *file) {
      path = file;
    } else {
      path = flexgen::fuzz::write_scratch("tokenizer.json", flexgen::testing::byte_tokenizer_json().dump());
    }
    return flexgen::load_tokenizer(path);
  }();
  return *tok;
}

std::string show(const std::vector<int32_t>& ids) {
  std::string out;
  for (int32_t id : ids) out += std::to_string(id) + " ";
  return out;
}

}  // namespace

FLEXGEN_FUZZ_TARGET(tokenizer_roundtrip) {
  using namespace flexgen;
  const Tokenizer& tok = tokenizer();
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (utf8::find_invalid(text) != std::string::npos) {
    bool refused = false;
    try {
      (void)tok.encode(text);
    } catch (const std::invalid_argument&) {
      refused = true;
    }
    FUZZ_CHECK(refused, "encode accepted text that is not valid UTF-8");
    return 0;
  }
  for (bool special : {true, false}) {
    EncodeOptions options;
    options.parse_special = special;
    const std::vector<int32_t> ids = tok.encode(text, options);
    std::string bytes;
    bool first = true;
    for (int32_t id : ids) {
      FUZZ_CHECK(id >= 0 && id < tok.vocab_size(), "id " + std::to_string(id) + " outside the vocabulary");
      if (!special) FUZZ_CHECK(!tok.is_special(id), "a special token from text encoded without parse_special");
      bytes += tok.token_bytes(id, first);
      if (!tok.is_special(id)) first = false;
    }
    const std::string decoded = tok.decode(ids);
    FUZZ_CHECK(decoded == text, "decode(encode(x)) != x: ids " + show(ids) + "decode to '" + decoded + "'");
    FUZZ_CHECK(bytes == text, "the tokens' bytes are not the text: ids " + show(ids));
    StreamDecoder stream(tok);
    std::string streamed;
    for (int32_t id : ids) streamed += stream.push(id);
    streamed += stream.finish();
    FUZZ_CHECK(streamed == text, "StreamDecoder gives '" + streamed + "' for ids " + show(ids));
    if (tok.bos_id()) {
      options.add_bos = true;
      std::vector<int32_t> with_bos = tok.encode(text, options);
      FUZZ_CHECK(!with_bos.empty() && with_bos.front() == *tok.bos_id(), "add_bos does not start with BOS");
      with_bos.erase(with_bos.begin());
      FUZZ_CHECK(with_bos == ids, "add_bos changes the other ids");
    }
  }
  return 0;
}
