// The tokenizer.json loader (byte-level BPE) with an optional tokenizer_config.json.
// Input: tokenizer.json, optionally followed by a NUL byte and tokenizer_config.json.
//   Any input gives a tokenizer or a TokenizerError naming the file (never another exception,
//   never a crash). A tokenizer that loads encodes sample texts (and the input's valid UTF-8
//   prefix) to ids in [0, vocab_size); decoding them never throws, and decoding piece by piece
//   (StreamDecoder) gives the same text.
#include <filesystem>
#include <string>
#include <vector>

#include "flexgen/tokenizer.h"
#include "flexgen/utf8.h"
#include "fuzz_target.h"

FLEXGEN_FUZZ_TARGET(tokenizer_json) {
  using namespace flexgen;
  namespace fs = std::filesystem;
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const fs::path dir = scratch_dir() / "tokenizer";
  fs::create_directories(dir);
  const std::string path = write_scratch("tokenizer/tokenizer.json", input.substr(0, nul));
  std::error_code ec;
  fs::remove(dir / "tokenizer_config.json", ec);
  if (nul != std::string::npos) write_scratch("tokenizer/tokenizer_config.json", input.substr(nul + 1));

  std::unique_ptr<Tokenizer> tok;
  if (!EXPECT_ONLY(TokenizerError, dir.string(), { tok = load_tokenizer(path); })) return 0;
  const int32_t vocab = tok->vocab_size();
  FUZZ_CHECK(vocab > 0, "a tokenizer without ids");
  std::string prefix = input.substr(0, std::min<size_t>(input.size(), 200));
  prefix.resize(utf8::complete_prefix(prefix));
  if (utf8::find_invalid(prefix) != std::string::npos) prefix.clear();
  for (const std::string& text :
       {std::string("Hello world! The answer is 42.\n\n[SEP]\n\n"), std::string("<|begin_of_text|>x<|eot_id|> \t\r\n  y"),
        std::string("caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80's"), prefix}) {
    for (bool special : {true, false}) {
      EncodeOptions options;
      options.parse_special = special;
      const std::vector<int32_t> ids = tok->encode(text, options);
      for (int32_t id : ids) FUZZ_CHECK(id >= 0 && id < vocab, "id " + std::to_string(id) + " outside the vocabulary");
      const std::string decoded = tok->decode(ids);
      StreamDecoder stream(*tok);
      std::string streamed;
      for (int32_t id : ids) streamed += stream.push(id);
      streamed += stream.finish();
      FUZZ_CHECK(streamed == decoded, "StreamDecoder gives '" + streamed + "', decode '" + decoded + "'");
    }
  }
  return 0;
}
