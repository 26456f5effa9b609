// Character class lookup (a two-stage table built once from the generated ranges).
#include "unicode.h"

#include <map>
#include <vector>

#include "unicode_tables.h"

namespace flexgen::tokenizer_detail {

namespace {

constexpr uint32_t kBlockBits = 7;
constexpr uint32_t kBlockSize = 1u << kBlockBits;
constexpr uint32_t kNumBlocks = 0x110000u >> kBlockBits;

// stage1[cp >> 7] selects a 128-entry block of stage2; identical blocks are shared.
struct ClassTable {
  std::vector<uint16_t> stage1;
  std::vector<uint8_t> stage2;

  ClassTable() {
    std::vector<uint8_t> full(0x110000, 0);
    auto mark = [&](const CodepointRange* r, size_t n, uint8_t bit) {
      for (size_t i = 0; i < n; ++i)
        for (uint32_t cp = r[i].first; cp <= r[i].last; ++cp) full[cp] |= bit;
    };
    mark(kLetterRanges, kLetterRanges_size, kClassLetter);
    mark(kNumberRanges, kNumberRanges_size, kClassNumber);
    mark(kWhiteSpaceRanges, kWhiteSpaceRanges_size, kClassSpace);
    full['\r'] |= kClassNewline;
    full['\n'] |= kClassNewline;
    stage1.resize(kNumBlocks);
    std::map<std::vector<uint8_t>, uint16_t> seen;
    for (uint32_t b = 0; b < kNumBlocks; ++b) {
      std::vector<uint8_t> block(full.begin() + b * kBlockSize, full.begin() + (b + 1) * kBlockSize);
      auto [it, inserted] = seen.emplace(std::move(block), static_cast<uint16_t>(seen.size()));
      if (inserted) stage2.insert(stage2.end(), it->first.begin(), it->first.end());
      stage1[b] = it->second;
    }
  }
};

const ClassTable& class_table() {
  static const ClassTable table;
  return table;
}

}  // namespace

uint8_t char_class(uint32_t cp) {
  if (cp >= 0x110000) return 0;
  const ClassTable& t = class_table();
  return t.stage2[(static_cast<size_t>(t.stage1[cp >> kBlockBits]) << kBlockBits) | (cp & (kBlockSize - 1))];
}

}  // namespace flexgen::tokenizer_detail
