// Hand-written scanner equal to the LLaMA-3 split regex
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// Each alternative is tried in order at the current position, as the regex engine does.
#include <array>

#include "pretokenizer.h"
#include "unicode.h"
#include "flexgen/utf8.h"

namespace flexgen::tokenizer_detail {

namespace {

constexpr std::array<uint8_t, 128> make_ascii_classes() {
  std::array<uint8_t, 128> t{};
  for (int c = 'a'; c <= 'z'; ++c) t[c] = kClassLetter;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = kClassLetter;
  for (int c = '0'; c <= '9'; ++c) t[c] = kClassNumber;
  for (int c : {'\t', '\n', '\v', '\f', '\r', ' '}) t[c] = kClassSpace;
  t['\r'] |= kClassNewline;
  t['\n'] |= kClassNewline;
  return t;
}
constexpr std::array<uint8_t, 128> kAscii = make_ascii_classes();

class Llama3Scanner final : public PreTokenizer {
 public:
  explicit Llama3Scanner(int max_digits) : max_digits_(max_digits) {}
  const char* name() const override { return max_digits_ == 3 ? "llama3-scanner" : "qwen2-scanner"; }

  void split(std::string_view text, std::vector<std::string_view>& out) const override {
    Cursor c{reinterpret_cast<const unsigned char*>(text.data()), text.size()};
    size_t i = 0;
    while (i < c.n) {
      const size_t end = match_at(c, i);
      out.emplace_back(text.data() + i, end - i);
      i = end;
    }
  }

 private:
  struct Cursor {
    const unsigned char* s;
    size_t n;
    // Class bits and byte length of the code point at i (i < n).
    uint8_t at(size_t i, size_t& len) const {
      const unsigned char b = s[i];
      if (b < 0x80) {
        len = 1;
        return kAscii[b];
      }
      return char_class(utf8::decode_valid(s + i, len));
    }
    uint32_t cp(size_t i, size_t& len) const { return utf8::decode_valid(s + i, len); }
  };

  // Lower-cased ASCII letter of the code point at i (with U+017F LONG S folding to 's'), or 0.
  static char folded(const Cursor& c, size_t i, size_t& len) {
    const uint32_t cp = c.cp(i, len);
    if (cp < 0x80) return static_cast<char>(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
    if (cp == 0x17F) return 's';
    return 0;
  }

  // Length of a contraction ('s 't 're 've 'm 'll 'd, any case) at i, or 0.
  static size_t contraction(const Cursor& c, size_t i) {
    if (c.s[i] != '\'' || i + 1 >= c.n) return 0;
    size_t l1;
    const char a = folded(c, i + 1, l1);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 1 + l1;
    if (a == 'r' || a == 'v' || a == 'l') {
      if (i + 1 + l1 >= c.n) return 0;
      size_t l2;
      const char b = folded(c, i + 1 + l1, l2);
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 1 + l1 + l2;
    }
    return 0;
  }

  // End of the match at i (the pattern always matches at least one code point).
  size_t match_at(const Cursor& c, size_t i) const {
    // 1. contractions
    if (c.s[i] == '\'') {
      const size_t k = contraction(c, i);
      if (k) return i + k;
    }
    size_t len;
    const uint8_t cls = c.at(i, len);
    // 2. [^\r\n\p{L}\p{N}]?\p{L}+
    if (cls & kClassLetter) return letters_from(c, i + len);
    if (!(cls & (kClassNewline | kClassNumber)) && i + len < c.n) {
      size_t l2;
      if (c.at(i + len, l2) & kClassLetter) return letters_from(c, i + len + l2);
    }
    // 3. \p{N}{1,max}
    if (cls & kClassNumber) {
      size_t j = i + len;
      for (int d = 1; d < max_digits_ && j < c.n; ++d) {
        size_t l;
        if (!(c.at(j, l) & kClassNumber)) break;
        j += l;
      }
      return j;
    }
    // 4. ' ?[^\s\p{L}\p{N}]+[\r\n]*'
    {
      size_t j = i;
      if (c.s[i] == ' ' && i + 1 < c.n) {
        size_t l;
        if (!(c.at(i + 1, l) & (kClassSpace | kClassLetter | kClassNumber))) j = i + 1;
      }
      size_t k = j;
      while (k < c.n) {
        size_t l;
        if (c.at(k, l) & (kClassSpace | kClassLetter | kClassNumber)) break;
        k += l;
      }
      if (k > j) {
        while (k < c.n && (c.s[k] == '\r' || c.s[k] == '\n')) ++k;
        return k;
      }
    }
    // Only whitespace is left: cls has kClassSpace. Find the whitespace run [i, j).
    size_t j = i, last_newline_end = 0;
    while (j < c.n) {
      size_t l;
      const uint8_t k = c.at(j, l);
      if (!(k & kClassSpace)) break;
      j += l;
      if (k & kClassNewline) last_newline_end = j;
    }
    // 5. \s*[\r\n]+
    if (last_newline_end) return last_newline_end;
    // 6. \s+(?!\S): the whole run at the end of the text, else all but its last code point.
    if (j == c.n) return j;
    size_t last = j - 1;
    while ((c.s[last] & 0xC0) == 0x80) --last;
    if (last > i) return last;
    // 7. \s+
    return j;
  }

  static size_t letters_from(const Cursor& c, size_t j) {
    while (j < c.n) {
      size_t l;
      if (!(c.at(j, l) & kClassLetter)) break;
      j += l;
    }
    return j;
  }

  int max_digits_;
};

}  // namespace

std::unique_ptr<PreTokenizer> make_llama3_scanner(int max_digits) {
  return std::make_unique<Llama3Scanner>(max_digits);
}

}  // namespace flexgen::tokenizer_detail
