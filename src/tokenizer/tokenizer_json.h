// Loading of Hugging Face tokenizer.json (+ tokenizer_config.json next to it).
#pragma once

#include <memory>
#include <string>

#include "flexgen/tokenizer.h"

namespace flexgen::tokenizer_detail {

struct JsonLoadOptions {
  bool force_pcre2 = false;  // run the split regex with PCRE2 even when the scanner implements it (benchmarks)
  bool word_cache = true;    // the per-thread cache of merged words
};

// Loads a byte-level BPE tokenizer.json; reads tokenizer_config.json from the
// same folder when present. Throws TokenizerError naming the file and field.
std::unique_ptr<Tokenizer> load_tokenizer_json(const std::string& path, const JsonLoadOptions& options = {});

}  // namespace flexgen::tokenizer_detail
