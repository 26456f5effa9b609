// BPE word encoding: start from one token per byte and apply the lowest-ranked
// merge (leftmost on ties) until none applies, as Hugging Face's Word::merge_all.
#include "bpe_model.h"

#include <algorithm>
#include <atomic>
#include <unordered_map>

namespace flexgen::tokenizer_detail {

namespace {

constexpr size_t kMaxCachedWordBytes = 256;
constexpr size_t kCacheCapacity = 10000;

std::atomic<uint64_t> next_uid{1};

// Merge results of the words this thread saw, for one model at a time.
struct WordCache {
  uint64_t owner = 0;
  std::unordered_map<std::string, std::vector<int32_t>> words;
};

WordCache& thread_cache(uint64_t owner) {
  thread_local WordCache cache;
  if (cache.owner != owner) {
    cache.words.clear();
    cache.owner = owner;
  }
  return cache;
}

}  // namespace

BpeModel::BpeModel() : uid_(next_uid++) {}

bool BpeModel::add_token(std::string_view bytes, int32_t id) {
  if (!byte_ids_set_) {
    byte_ids_.fill(-1);
    byte_ids_set_ = true;
  }
  if (!vocab_.insert(bytes, id)) return false;
  if (id >= static_cast<int32_t>(id_bytes_.size())) id_bytes_.resize(static_cast<size_t>(id) + 1);
  id_bytes_[id] = std::string(bytes);
  if (bytes.size() == 1) byte_ids_[static_cast<unsigned char>(bytes[0])] = id;
  return true;
}

bool BpeModel::add_merge(int32_t left, int32_t right, int32_t merged, int32_t rank) {
  if (merges_.contains(left, right)) return false;
  merges_.insert(left, right, PairMap::Merge{rank, merged});
  return true;
}

int BpeModel::missing_byte() const {
  for (int b = 0; b < 256; ++b)
    if (!byte_ids_set_ || byte_ids_[b] < 0) return b;
  return -1;
}

const std::string& BpeModel::bytes_of(int32_t id) const {
  static const std::string empty;
  if (id < 0 || id >= static_cast<int32_t>(id_bytes_.size())) return empty;
  return id_bytes_[id];
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_ || word.size() == 1) {
    const int32_t id = vocab_.find(word);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  WordCache* cache = nullptr;
  if (cache_ && word.size() < kMaxCachedWordBytes) {
    cache = &thread_cache(uid_);
    const auto it = cache->words.find(std::string(word));
    if (it != cache->words.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  thread_local std::vector<int32_t> ids;
  ids.clear();
  for (unsigned char b : word) ids.push_back(byte_ids_[b]);
  if (ids.size() <= 32) merge_small(ids);
  else merge_large(ids);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cache && cache->words.size() < kCacheCapacity) cache->words.emplace(std::string(word), ids);
}

// Quadratic but allocation-free: fine for short words.
void BpeModel::merge_small(std::vector<int32_t>& ids) const {
  while (ids.size() > 1) {
    int32_t best_rank = -1, best_id = -1;
    size_t best_pos = 0;
    for (size_t i = 0; i + 1 < ids.size(); ++i) {
      const PairMap::Merge m = merges_.find(ids[i], ids[i + 1]);
      if (m.rank >= 0 && (best_rank < 0 || m.rank < best_rank)) {
        best_rank = m.rank;
        best_id = m.id;
        best_pos = i;
      }
    }
    if (best_rank < 0) break;
    ids[best_pos] = best_id;
    ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(best_pos) + 1);
  }
}

// Priority queue of candidate merges over a linked list of symbols: O(n log n).
// Scratch buffers are per thread, so long words allocate nothing once warm.
void BpeModel::merge_large(std::vector<int32_t>& ids) const {
  struct Cand {
    int32_t rank;
    int pos;
    int32_t left, right, merged;
    // Heap order: the lowest rank on top, then the leftmost position.
    bool operator<(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  thread_local std::vector<int> prev, next;
  thread_local std::vector<char> alive;
  thread_local std::vector<Cand> heap;
  thread_local std::vector<int32_t> result;
  const int n = static_cast<int>(ids.size());
  prev.resize(n);
  next.resize(n);
  alive.assign(n, 1);
  heap.clear();
  for (int i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  auto consider = [&](int pos) {
    if (pos < 0 || next[pos] < 0) return;
    const PairMap::Merge m = merges_.find(ids[pos], ids[next[pos]]);
    if (m.rank < 0) return;
    heap.push_back(Cand{m.rank, pos, ids[pos], ids[next[pos]], m.id});
    std::push_heap(heap.begin(), heap.end());
  };
  for (int i = 0; i + 1 < n; ++i) consider(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const Cand c = heap.back();
    heap.pop_back();
    // Skip candidates made stale by earlier merges.
    if (!alive[c.pos] || next[c.pos] < 0 || ids[c.pos] != c.left || ids[next[c.pos]] != c.right) continue;
    const int r = next[c.pos];
    ids[c.pos] = c.merged;
    alive[r] = 0;
    next[c.pos] = next[r];
    if (next[r] >= 0) prev[next[r]] = c.pos;
    consider(prev[c.pos]);
    consider(c.pos);
  }
  result.clear();
  for (int i = 0; i >= 0; i = next[i]) result.push_back(ids[i]);
  ids.assign(result.begin(), result.end());
}

}  // namespace flexgen::tokenizer_detail
