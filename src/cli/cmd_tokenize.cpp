// `flexgen tokenize`: token ids and pieces of a text (or of JSON lines), for debugging.
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <sstream>

#include "commands.h"
#include "flexgen/tokenizer.h"

namespace flexgen::cli {

namespace {

struct TokenizeArgs {
  std::string tokenizer;
  std::optional<std::string> text;
  bool bos = false;
  bool jsonl = false;
};

int tokenize_text(const Tokenizer& tok, const std::string& text, const EncodeOptions& options) {
  std::vector<int32_t> ids;
  try {
    ids = tok.encode(text, options);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(std::string("the input text: ") + e.what());
  }
  std::string line;
  for (size_t i = 0; i < ids.size(); ++i) line += (i ? " " : "") + std::to_string(ids[i]);
  std::cout << line << '\n';
  line.clear();
  for (size_t i = 0; i < ids.size(); ++i) line += (i ? " " : "") + tok.piece(ids[i]);
  std::cout << line << '\n' << std::flush;
  return 0;
}

// One {"text": ...} per line in, {"text": ..., "ids": [...]} per line out, in order.
int tokenize_jsonl(const Tokenizer& tok, const EncodeOptions& options) {
  std::string line;
  int64_t number = 0, bad = 0;
  while (std::getline(std::cin, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      nlohmann::json rec;
      try {
        rec = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception& e) {
        std::string m = e.what();  // without nlohmann's "[json.exception.parse_error.101] " prefix
        if (const size_t b = m.find("] "); b != std::string::npos) m = m.substr(b + 2);
        throw std::invalid_argument("not valid JSON: " + m);
      }
      if (!rec.is_object() || !rec.contains("text")) throw std::invalid_argument("expected an object with \"text\"");
      if (!rec["text"].is_string()) throw std::invalid_argument("\"text\" is not a string");
      const std::string text = rec["text"].get<std::string>();
      nlohmann::json out = {{"text", text}, {"ids", tok.encode(text, options)}};
      std::cout << out.dump() << '\n' << std::flush;
    } catch (const std::invalid_argument& e) {
      ++bad;
      spdlog::error("standard input line {}: {}", number, e.what());
    }
  }
  if (bad > 0) {
    spdlog::error("{} of {} input lines were bad", bad, number);
    return 1;
  }
  return 0;
}

int run_tokenize(const TokenizeArgs& a) {
  if (a.jsonl && a.text) throw UsageError("--jsonl reads JSON lines from standard input; give no TEXT");
  const std::unique_ptr<Tokenizer> tok = load_tokenizer(a.tokenizer);
  EncodeOptions options;
  options.add_bos = a.bos;
  if (a.bos && !tok->bos_id()) spdlog::warn("{}: the tokenizer has no BOS token; --bos adds nothing", tok->source());
  if (a.jsonl) return tokenize_jsonl(*tok, options);
  std::string text;
  if (a.text) {
    text = *a.text;
  } else {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  return tokenize_text(*tok, text, options);
}

}  // namespace

Command add_tokenize_command(CLI::App& parent) {
  auto args = std::make_shared<TokenizeArgs>();
  CLI::App* app = parent.add_subcommand(
      "tokenize",
      "Print the token ids (first line) and pieces (second line) of TEXT, or of standard input");
  app->add_option("--tokenizer", args->tokenizer,
                  "A tokenizer.json, a SentencePiece tokenizer.model, or a model directory")
      ->required();
  app->add_option("text", args->text, "Text to tokenize (default: all of standard input, byte for byte)");
  app->add_flag("--bos", args->bos, "Prepend the BOS token");
  app->add_flag("--jsonl", args->jsonl,
                "Read {\"text\": ...} lines from standard input; write {\"text\": ..., \"ids\": [...]} lines");
  return Command{app, [args] { return run_tokenize(*args); }};
}

}  // namespace flexgen::cli
