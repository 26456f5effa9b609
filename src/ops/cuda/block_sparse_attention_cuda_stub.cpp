// flexgen_ops_cuda for builds whose libtorch has no CUDA: the entry points exist and fail clearly.
#include <stdexcept>

#include "flexgen/block_sparse_attention_cuda.h"

namespace flexgen {

namespace {
[[noreturn]] void no_cuda(const char* what) {
  throw std::runtime_error(std::string(what) +
                           ": flexgen was built without CUDA (libtorch has no CUDA); use the CPU kernel");
}
}  // namespace

DeviceBlockMask upload_block_mask(const BlockMask&, const AttentionMask&, const at::Device&) {
  no_cuda("upload_block_mask");
}

BlockSparseAttentionResult block_sparse_attention_cuda(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                                       const std::vector<DeviceMaskRef>&,
                                                       const BlockSparseAttentionOptions&) {
  no_cuda("block_sparse_attention_cuda");
}

bool cuda_block_sparse_attention_available() { return false; }

std::string block_sparse_attention_cuda_backend() { return "none (built without CUDA)"; }

}  // namespace flexgen
