// The run-level KV store of the decode scheduler (private to generate): the K/V of reusable
// prefixes, keyed by content (token ids, position ids, the cache's block size: a plain causal
// prefix at cache slot 0 sees nothing else), bounded in bytes, least recently used out.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <list>
#include <string>
#include <unordered_map>
#include <utility>

#include "flexgen/decode_plan.h"

namespace flexgen {

class KVStore {
 public:
  struct Entry {
    at::Tensor k, v;  // [layers, kv_heads, length, head_dim]
  };
  explicit KVStore(int64_t capacity) : capacity_(capacity) {}

  // The key of `row`'s first `length` slots under `block_size`.
  static std::string key(const RowPlan& row, int64_t length, int64_t block_size);
  // The entry of `key` (now the most recently used), or null.
  const Entry* find(const std::string& key);
  // Stores `e` under `key`, dropping the least recently used entries to stay within the bound;
  // false when the entry alone is over it (nothing stored).
  bool insert(const std::string& key, Entry e);
  int64_t peak_bytes() const { return peak_; }

 private:
  static int64_t bytes_of(const Entry& e);
  int64_t capacity_, bytes_ = 0, peak_ = 0;
  std::list<std::string> lru_;
  std::unordered_map<std::string, std::pair<Entry, std::list<std::string>::iterator>> map_;
};

}  // namespace flexgen
