// KV cache allocation (kv_cache.h).
#include "flexgen/kv_cache.h"

#include <ATen/ATen.h>

#include "flexgen/llama.h"

namespace flexgen {

KVCache allocate_kv_cache(int64_t layers, int64_t batch, int64_t kv_heads, int64_t max_len, int64_t head_dim,
                          at::ScalarType dtype, const at::Device& device) {
  KVCache c;
  c.k = at::zeros({layers, batch, kv_heads, max_len, head_dim}, at::TensorOptions().dtype(dtype).device(device));
  c.v = at::zeros_like(c.k);
  c.length = 0;
  return c;
}

KVCache make_kv_cache(const LlamaModel& model, int64_t batch, int64_t max_len) {
  return allocate_kv_cache(model.config.num_layers, batch, model.config.num_kv_heads, max_len,
                           model.config.head_dim, model.dtype, model.device);
}

KVCache kv_cache_rows(const KVCache& cache, int64_t first, int64_t count) {
  KVCache c;
  c.k = cache.k.narrow(1, first, count);
  c.v = cache.v.narrow(1, first, count);
  c.length = 0;
  return c;
}

}  // namespace flexgen
