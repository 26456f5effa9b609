// KV cache: allocated once per sequence batch, filled by prefill (a whole
// prompt) and decode (one token per step).
#pragma once

#include <ATen/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>

namespace flexgen {

struct KVCache {
  // [layers, B, Hkv, max_len, head_dim] each, the model's compute dtype.
  at::Tensor k;
  at::Tensor v;
  int64_t length = 0;  // slots filled so far (shared by all batch rows)

  int64_t max_length() const { return k.defined() ? k.size(3) : 0; }
  int64_t batch() const { return k.defined() ? k.size(1) : 0; }
  void reset() { length = 0; }
};

// Allocates zero-filled K and V of the given sizes on `device`.
KVCache allocate_kv_cache(int64_t layers, int64_t batch, int64_t kv_heads, int64_t max_len,
                          int64_t head_dim, at::ScalarType dtype, const at::Device& device = at::kCPU);

// The cache of batch rows [first, first + count): views of the same memory, length 0.
KVCache kv_cache_rows(const KVCache& cache, int64_t first, int64_t count);

struct LlamaModel;
// A KV cache for this model, allocated once on its device: layers x batch x kv-heads x max_len x head_dim.
KVCache make_kv_cache(const LlamaModel& model, int64_t batch, int64_t max_len);

}  // namespace flexgen
