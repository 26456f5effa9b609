// Byte-pair-encoding model: vocabulary of byte strings and rank-ordered merges.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "flat_maps.h"

namespace flexgen::tokenizer_detail {

class BpeModel {
 public:
  BpeModel();
  // Adds vocabulary entry `bytes` with `id`; false if the bytes are already present.
  bool add_token(std::string_view bytes, int32_t id);
  // Adds the merge of rank `rank`: (left, right) -> merged. False if the pair is already present.
  bool add_merge(int32_t left, int32_t right, int32_t merged, int32_t rank);
  // Byte value whose single-byte token is missing, or -1 when all 256 are present.
  int missing_byte() const;
  // When set, a word that is a vocabulary entry is taken whole (tokenizer.json "ignore_merges").
  void set_ignore_merges(bool v) { ignore_merges_ = v; }

  // Per-thread cache of merged words (like Hugging Face's: words under 256 bytes,
  // up to 10,000 per thread); on by default.
  void set_cache(bool on) { cache_ = on; }

  // Appends the ids of one pre-tokenized word (raw bytes).
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  int32_t find(std::string_view bytes) const { return vocab_.find(bytes); }
  // Raw bytes of token `id` (empty for ids that are not in the vocabulary).
  const std::string& bytes_of(int32_t id) const;
  int32_t size() const { return static_cast<int32_t>(vocab_.size()); }
  int32_t max_id() const { return static_cast<int32_t>(id_bytes_.size()) - 1; }

 private:
  void merge_small(std::vector<int32_t>& ids) const;
  void merge_large(std::vector<int32_t>& ids) const;

  StringIdMap vocab_;
  PairMap merges_;
  std::vector<std::string> id_bytes_;
  std::array<int32_t, 256> byte_ids_{};
  bool ignore_merges_ = false;
  bool byte_ids_set_ = false;
  bool cache_ = true;
  uint64_t uid_;  // identifies this model's entries in the per-thread cache
};

}  // namespace flexgen::tokenizer_detail
