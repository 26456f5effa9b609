// Builds without CUDA: the CUDA entry points exist and fail with a clear error.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <stdexcept>

#include "flexgen/block_sparse_attention_cuda.h"

using namespace flexgen;

TEST(BlockSparseAttentionCudaStub, ReportsNoCuda) {
  EXPECT_FALSE(cuda_block_sparse_attention_available());
  EXPECT_NE(block_sparse_attention_cuda_backend().find("without CUDA"), std::string::npos);
  const SequenceLayout layout = layout_from_lengths({4, 4}, true, 0, 0, 0);
  const MaskSpec spec = default_mask_spec(layout);
  const BlockMask bm = build_block_mask(layout, spec, 16);
  const AttentionMask mask = make_attention_mask(layout, spec);
  try {
    (void)upload_block_mask(bm, mask, at::Device(at::kCPU));
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("built without CUDA"), std::string::npos) << e.what();
  }
  at::Tensor q = at::zeros({1, 1, 9, 64}, at::kBFloat16);
  EXPECT_THROW(block_sparse_attention_cuda(q, q, q, {DeviceMaskRef{}}), std::runtime_error);
}
