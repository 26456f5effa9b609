// Lowercasing and classes from the generated tables (see unicode_text.h).
#include "unicode_text.h"

#include <algorithm>
#include <vector>

#include "unicode_text_tables.h"
#include "flexgen/utf8.h"

namespace flexgen::unicode {

namespace {

using unicode_tables::CodeRange;

bool in_ranges(const CodeRange* ranges, size_t count, uint32_t cp) {
  const CodeRange* end = ranges + count;
  const CodeRange* it = std::upper_bound(ranges, end, cp, [](uint32_t v, const CodeRange& r) { return v < r.first; });
  return it != ranges && cp <= (it - 1)->last;
}

bool is_cased(uint32_t cp) { return in_ranges(unicode_tables::kCased, unicode_tables::kCasedCount, cp); }
bool is_case_ignorable(uint32_t cp) {
  return in_ranges(unicode_tables::kCaseIgnorable, unicode_tables::kCaseIgnorableCount, cp);
}

// Unicode's Final_Sigma condition: a cased letter before (skipping case-ignorables), none after.
bool final_sigma(const std::vector<uint32_t>& cps, size_t at) {
  size_t i = at;
  bool before = false;
  while (i > 0) {
    --i;
    if (is_case_ignorable(cps[i])) continue;
    before = is_cased(cps[i]);
    break;
  }
  if (!before) return false;
  for (size_t j = at + 1; j < cps.size(); ++j) {
    if (is_case_ignorable(cps[j])) continue;
    return !is_cased(cps[j]);
  }
  return true;
}

}  // namespace

uint32_t to_lower(uint32_t cp) {
  if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
  const auto* begin = unicode_tables::kLower;
  const auto* end = begin + unicode_tables::kLowerCount;
  const auto* it = std::upper_bound(begin, end, cp,
                                    [](uint32_t v, const unicode_tables::LowerRange& r) { return v < r.first; });
  if (it == begin) return cp;
  --it;
  if (cp > it->last || (cp - it->first) % static_cast<uint32_t>(it->stride) != 0) return cp;
  return static_cast<uint32_t>(static_cast<int64_t>(cp) + it->delta);
}

bool is_word(uint32_t cp) {
  if (cp < 0x80) return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9') || cp == '_';
  return in_ranges(unicode_tables::kWord, unicode_tables::kWordCount, cp);
}

bool is_space(uint32_t cp) {
  if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F);
  return in_ranges(unicode_tables::kSpace, unicode_tables::kSpaceCount, cp);
}

std::string lowercase(const std::string& text) {
  bool ascii = true;
  for (char c : text) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
  if (ascii) {
    std::string out = text;
    for (char& c : out) c = static_cast<char>(to_lower(static_cast<unsigned char>(c)));
    return out;
  }
  const std::vector<uint32_t> cps = utf8::decode(text);
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < cps.size(); ++i) {
    const uint32_t cp = cps[i];
    if (cp == 0x130) {  // LATIN CAPITAL LETTER I WITH DOT ABOVE: full mapping "i" + COMBINING DOT ABOVE
      out += 'i';
      utf8::append(out, 0x307);
    } else if (cp == 0x3A3) {
      utf8::append(out, final_sigma(cps, i) ? 0x3C2 : 0x3C3);
    } else {
      utf8::append(out, to_lower(cp));
    }
  }
  return out;
}

std::string strip(const std::string& text) {
  const std::vector<uint32_t> cps = utf8::decode(text);
  size_t a = 0, b = cps.size();
  while (a < b && is_space(cps[a])) ++a;
  while (b > a && is_space(cps[b - 1])) --b;
  if (a == 0 && b == cps.size()) return text;
  return utf8::encode(std::vector<uint32_t>(cps.begin() + a, cps.begin() + b));
}

}  // namespace flexgen::unicode
