// NFC normalization (nfc.h) over the generated tables of nfc_tables.cpp.
#include "nfc.h"

#include <algorithm>
#include <vector>

#include "flexgen/utf8.h"
#include "nfc_tables.h"

namespace flexgen::tokenizer_detail {
namespace {

using namespace nfc_tables;

constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

uint8_t combining_class(uint32_t cp) {
  if (cp < 0x300) return 0;
  const CombiningClass* end = kCombiningClass + kCombiningClassCount;
  const CombiningClass* it =
      std::lower_bound(kCombiningClass, end, cp, [](const CombiningClass& e, uint32_t v) { return e.cp < v; });
  return it != end && it->cp == cp ? it->ccc : 0;
}

void decompose(uint32_t cp, std::vector<uint32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const uint32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  if (cp >= 0xC0) {
    const Decomposition* end = kDecomposition + kDecompositionCount;
    const Decomposition* it =
        std::lower_bound(kDecomposition, end, cp, [](const Decomposition& e, uint32_t v) { return e.cp < v; });
    if (it != end && it->cp == cp) {
      out.insert(out.end(), kDecompositionData + it->offset, kDecompositionData + it->offset + it->length);
      return;
    }
  }
  out.push_back(cp);
}

// The primary composite of (a, b), or 0.
uint32_t compose(uint32_t a, uint32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
    return a + (b - kTBase);
  const uint64_t key = (static_cast<uint64_t>(a) << 21) | b;
  const Composition* end = kComposition + kCompositionCount;
  const Composition* it =
      std::lower_bound(kComposition, end, key, [](const Composition& e, uint64_t v) { return e.pair < v; });
  return it != end && it->pair == key ? it->composite : 0;
}

}  // namespace

bool nfc_quick_yes(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  for (size_t i = 0; i < text.size(); ++i) {
    // Code points below U+0300 are one or two bytes with a lead byte below 0xCC.
    if (p[i] >= 0xCC) return false;
  }
  return true;
}

std::string nfc(std::string_view text) {
  if (nfc_quick_yes(text)) return std::string(text);
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  std::vector<uint32_t> cps;
  cps.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    size_t len;
    decompose(utf8::decode_valid(p + i, len), cps);
    i += len;
  }
  // Canonical ordering: a stable sort of each run of non-starters by combining class.
  for (size_t i = 0; i < cps.size();) {
    if (combining_class(cps[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < cps.size() && combining_class(cps[j]) != 0) ++j;
    std::stable_sort(cps.begin() + static_cast<std::ptrdiff_t>(i), cps.begin() + static_cast<std::ptrdiff_t>(j),
                     [](uint32_t a, uint32_t b) { return combining_class(a) < combining_class(b); });
    i = j;
  }
  // Canonical composition.
  std::vector<uint32_t> out;
  out.reserve(cps.size());
  size_t starter = SIZE_MAX;  // index in `out` of the last starter
  int last_ccc = -1;          // class of the last character appended after that starter (-1: none)
  for (uint32_t cp : cps) {
    const int ccc = combining_class(cp);
    if (starter != SIZE_MAX) {
      // Not blocked: nothing between the starter and cp, or the last one in between has a lower,
      // non-zero class (a starter in between blocks).
      const bool blocked = last_ccc != -1 && (last_ccc == 0 || last_ccc >= ccc);
      if (!blocked) {
        const uint32_t c = compose(out[starter], cp);
        if (c != 0) {
          out[starter] = c;
          continue;
        }
      }
    }
    if (ccc == 0) {
      starter = out.size();
      last_ccc = -1;
    } else {
      last_ccc = ccc;
    }
    out.push_back(cp);
  }
  std::string s;
  s.reserve(text.size());
  for (uint32_t cp : out) utf8::append(s, cp);
  return s;
}

}  // namespace flexgen::tokenizer_detail
