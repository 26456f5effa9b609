// Tables of NFC normalization (generated: gen_nfc_tables.py -> nfc_tables.cpp), sorted by key.
#pragma once

#include <cstddef>
#include <cstdint>

namespace flexgen::tokenizer_detail::nfc_tables {

struct CombiningClass {
  uint32_t cp;
  uint8_t ccc;
};
struct Decomposition {
  uint32_t cp;
  uint32_t offset;  // into kDecompositionData
  uint32_t length;
};
struct Composition {
  uint64_t pair;  // first << 21 | second
  uint32_t composite;
};

extern const uint32_t kUnicodeVersionMajor;
extern const CombiningClass kCombiningClass[];
extern const size_t kCombiningClassCount;
extern const uint32_t kDecompositionData[];
extern const Decomposition kDecomposition[];
extern const size_t kDecompositionCount;
extern const Composition kComposition[];
extern const size_t kCompositionCount;

}  // namespace flexgen::tokenizer_detail::nfc_tables
