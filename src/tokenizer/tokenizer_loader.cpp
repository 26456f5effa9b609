// load_tokenizer(): a tokenizer.json, a tokenizer.model, or a model directory.
#include <filesystem>

#include "flexgen/tokenizer.h"
#include "spm_tokenizer.h"
#include "tokenizer_json.h"

namespace flexgen {

namespace fs = std::filesystem;

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw TokenizerError(path + ": no such file or directory");
  if (fs::is_directory(path, ec)) {
    const fs::path json = fs::path(path) / "tokenizer.json", model = fs::path(path) / "tokenizer.model";
    if (fs::exists(json, ec)) return tokenizer_detail::load_tokenizer_json(json.string());
    if (fs::exists(model, ec)) return tokenizer_detail::load_sentencepiece(model.string());
    throw TokenizerError(path + ": the directory has neither tokenizer.json nor tokenizer.model");
  }
  const std::string ext = fs::path(path).extension().string();
  if (ext == ".json") return tokenizer_detail::load_tokenizer_json(path);
  if (ext == ".model") return tokenizer_detail::load_sentencepiece(path);
  throw TokenizerError(path + ": not a tokenizer file (expected tokenizer.json, a .model file or a model directory)");
}

}  // namespace flexgen
