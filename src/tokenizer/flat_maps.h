// Open-addressing hash maps for the BPE hot path: byte strings -> id, and
// (left id, right id) pairs -> merge. Built once, then read-only.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace flexgen::tokenizer_detail {

inline uint64_t hash_bytes(const char* p, size_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xFF51AFD7ED558CCDull);
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    h = (h ^ v) * 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  uint64_t v = 0;
  std::memcpy(&v, p, n);
  h = (h ^ v) * 0xC4CEB9FE1A85EC53ull;
  return h ^ (h >> 32);
}

inline uint64_t hash_u64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xFF51AFD7ED558CCDull;
  x ^= x >> 33;
  return x;
}

// Byte string -> int32 id. Keys live in one arena.
class StringIdMap {
 public:
  // Returns false if `key` was already present (the map keeps the first id).
  bool insert(std::string_view key, int32_t id) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    if (find(key) >= 0) return false;
    const auto offset = static_cast<uint32_t>(arena_.size());
    arena_.append(key.data(), key.size());
    place(offset, static_cast<uint32_t>(key.size()), id);
    ++size_;
    return true;
  }
  // The id of `key`, or -1.
  int32_t find(std::string_view key) const {
    if (slots_.empty()) return -1;
    const size_t mask = slots_.size() - 1;
    const uint64_t h = hash_bytes(key.data(), key.size());
    const auto tag = static_cast<uint32_t>(h >> 32);
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.id < 0) return -1;
      if (s.tag == tag && s.len == key.size() && std::memcmp(arena_.data() + s.offset, key.data(), key.size()) == 0)
        return s.id;
    }
  }
  size_t size() const { return size_; }

 private:
  struct Slot {
    uint32_t offset = 0, len = 0;
    int32_t id = -1;
    uint32_t tag = 0;  // high half of the key's hash: most mismatches end here
  };
  void place(uint32_t offset, uint32_t len, int32_t id) {
    const size_t mask = slots_.size() - 1;
    const uint64_t h = hash_bytes(arena_.data() + offset, len);
    for (size_t k = h & mask;; k = (k + 1) & mask) {
      if (slots_[k].id < 0) {
        slots_[k] = Slot{offset, len, id, static_cast<uint32_t>(h >> 32)};
        return;
      }
    }
  }
  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.empty() ? 1024 : old.size() * 2, Slot{});
    for (const Slot& s : old)
      if (s.id >= 0) place(s.offset, s.len, s.id);
  }
  std::vector<Slot> slots_;
  std::string arena_;
  size_t size_ = 0;
};

// (left, right) id pair -> (rank, merged id).
class PairMap {
 public:
  struct Merge {
    int32_t rank, id;
  };
  void insert(int32_t left, int32_t right, Merge m) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    put(key(left, right), m);
  }
  // The merge of (left, right), or rank -1 when there is none.
  Merge find(int32_t left, int32_t right) const {
    if (slots_.empty()) return Merge{-1, -1};
    const uint64_t k = key(left, right);
    const size_t mask = slots_.size() - 1;
    for (size_t i = hash_u64(k) & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.key == k) return s.merge;
      if (s.key == kEmpty) return Merge{-1, -1};
    }
  }
  bool contains(int32_t left, int32_t right) const { return find(left, right).rank >= 0; }

 private:
  static constexpr uint64_t kEmpty = ~0ull;
  struct Slot {
    uint64_t key = kEmpty;
    Merge merge{-1, -1};
  };
  static uint64_t key(int32_t l, int32_t r) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
  }
  void put(uint64_t k, Merge m) {
    const size_t mask = slots_.size() - 1;
    for (size_t i = hash_u64(k) & mask;; i = (i + 1) & mask) {
      if (slots_[i].key == kEmpty || slots_[i].key == k) {
        if (slots_[i].key == kEmpty) ++size_;
        slots_[i] = Slot{k, m};
        return;
      }
    }
  }
  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.empty() ? 1024 : old.size() * 2, Slot{});
    size_ = 0;
    for (const Slot& s : old)
      if (s.key != kEmpty) put(s.key, s.merge);
  }
  std::vector<Slot> slots_;
  size_t size_ = 0;
};

}  // namespace flexgen::tokenizer_detail
