// The hand-written LLaMA-3 scanner against PCRE2 running the same regex, on the
// corpus and on random strings built from the characters that matter to the pattern.
#include <gtest/gtest.h>

#include <random>

#include "pretokenizer.h"
#include "reference.h"
#include "unicode.h"
#include "flexgen/utf8.h"

namespace flexgen::tokenizer_detail {
namespace {

std::vector<std::string> split(const PreTokenizer& p, const std::string& text) {
  std::vector<std::string_view> views;
  p.split(text, views);
  return std::vector<std::string>(views.begin(), views.end());
}

std::string show(const std::vector<std::string>& pieces) {
  nlohmann::json j = pieces;
  return j.dump();
}

// Random strings over letters, digits, whitespace kinds, apostrophes and symbols.
std::vector<std::string> random_texts(int count, uint32_t seed) {
  const std::vector<uint32_t> alphabet = {
      'a', 'b', 'Z', 's', 'S', 't', 'r', 'e', 'v', 'm', 'l', 'L', 'd', 'D', '0', '7', '9', ' ', ' ', ' ', '\t',
      '\n', '\r', '\'', '\'', '!', '.', ',', '-', '_', '<', '|', 0xA0, 0x3000, 0x2028, 0x85, 0x0B, 0x0C, 0x65E5,
      0xE9, 0x301, 0x1F600, 0x1F3FD, 0x200D, 0x663, 0x2460, 0xBD, 0x17F, 0x2019, 0x915, 0x94D, 0x0E01, 0xFFFD};
  std::mt19937 rng(seed);
  std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1), len(0, 24);
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) {
    std::string s;
    const size_t n = len(rng);
    for (size_t k = 0; k < n; ++k) utf8::append(s, alphabet[pick(rng)]);
    out.push_back(s);
  }
  return out;
}

void expect_same(const PreTokenizer& a, const PreTokenizer& b, const std::vector<std::string>& texts) {
  size_t bad = 0;
  for (const std::string& t : texts) {
    const auto x = split(a, t), y = split(b, t);
    if (x != y && ++bad <= 10)
      ADD_FAILURE() << nlohmann::json(t).dump() << "\n  " << a.name() << ": " << show(x) << "\n  " << b.name()
                    << ": " << show(y);
  }
  EXPECT_EQ(bad, 0u);
}

TEST(PreTokenizer, FactoryPicksTheScannerForKnownPatterns) {
  EXPECT_STREQ(make_pretokenizer(kLlama3Pattern)->name(), "llama3-scanner");
  EXPECT_STREQ(make_pretokenizer(kQwen2Pattern)->name(), "qwen2-scanner");
#ifdef FLEXGEN_HAVE_PCRE2
  EXPECT_NE(std::string(make_pretokenizer(R"(\p{L}+|\s+)")->name()).find("pcre2"), std::string::npos);
#else
  EXPECT_THROW(make_pretokenizer(R"(\p{L}+|\s+)"), std::invalid_argument);
#endif
  EXPECT_THROW(make_pretokenizer("(unclosed"), std::invalid_argument);
}

TEST(PreTokenizer, KnownSplits) {
  const auto scanner = make_llama3_scanner(3);
  EXPECT_EQ(split(*scanner, "Hello world"), (std::vector<std::string>{"Hello", " world"}));
  EXPECT_EQ(split(*scanner, "I'm 12345 ok!!\n\n  x"),
            (std::vector<std::string>{"I", "'m", " ", "123", "45", " ok", "!!\n\n", " ", " x"}));
  EXPECT_EQ(split(*scanner, "a  \n"), (std::vector<std::string>{"a", "  \n"}));
  EXPECT_EQ(split(*scanner, "a   "), (std::vector<std::string>{"a", "   "}));
}

TEST(PreTokenizer, Llama3ScannerEqualsPcre2OnCorpus) {
#ifndef FLEXGEN_HAVE_PCRE2
  GTEST_SKIP() << "built without PCRE2";
#endif
  expect_same(*make_llama3_scanner(3), *make_pcre2_pretokenizer(kLlama3Pattern), flexgen::testing::corpus_texts());
}

TEST(PreTokenizer, Llama3ScannerEqualsPcre2OnRandomText) {
#ifndef FLEXGEN_HAVE_PCRE2
  GTEST_SKIP() << "built without PCRE2";
#endif
  expect_same(*make_llama3_scanner(3), *make_pcre2_pretokenizer(kLlama3Pattern), random_texts(20000, 1234));
}

TEST(PreTokenizer, Qwen2ScannerEqualsPcre2OnRandomText) {
#ifndef FLEXGEN_HAVE_PCRE2
  GTEST_SKIP() << "built without PCRE2";
#endif
  expect_same(*make_llama3_scanner(1), *make_pcre2_pretokenizer(kQwen2Pattern), random_texts(5000, 99));
}

TEST(PreTokenizer, Pcre2KeepsTheTextBetweenMatches) {
#ifndef FLEXGEN_HAVE_PCRE2
  GTEST_SKIP() << "built without PCRE2";
#endif
  const auto p = make_pcre2_pretokenizer(R"(\p{L}+)");
  EXPECT_EQ(split(*p, "ab, cd!"), (std::vector<std::string>{"ab", ", ", "cd", "!"}));
}

}  // namespace
}  // namespace flexgen::tokenizer_detail
