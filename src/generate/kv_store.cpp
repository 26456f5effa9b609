// KVStore (kv_store.h).
#include "kv_store.h"

#include <algorithm>

namespace flexgen {

std::string KVStore::key(const RowPlan& row, int64_t length, int64_t block_size) {
  std::string key;
  auto put = [&key](const void* p, size_t n) { key.append(static_cast<const char*>(p), n); };
  put(&length, sizeof length);
  put(&block_size, sizeof block_size);
  put(row.tokens.data(), static_cast<size_t>(length) * sizeof(int32_t));
  put(row.position_ids.data(), static_cast<size_t>(length) * sizeof(int64_t));
  return key;
}

const KVStore::Entry* KVStore::find(const std::string& key) {
  auto it = map_.find(key);
  if (it == map_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second.second);
  return &it->second.first;
}

bool KVStore::insert(const std::string& key, Entry e) {
  if (map_.count(key)) return true;
  const int64_t bytes = bytes_of(e);
  if (bytes > capacity_) return false;
  while (bytes_ + bytes > capacity_) {
    auto last = map_.find(lru_.back());
    bytes_ -= bytes_of(last->second.first);
    map_.erase(last);
    lru_.pop_back();
  }
  lru_.push_front(key);
  map_.emplace(key, std::make_pair(std::move(e), lru_.begin()));
  bytes_ += bytes;
  peak_ = std::max(peak_, bytes_);
  return true;
}

int64_t KVStore::bytes_of(const Entry& e) { return static_cast<int64_t>(e.k.nbytes() + e.v.nbytes()); }

}  // namespace flexgen
